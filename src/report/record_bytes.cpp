#include "flowrank/report/record_bytes.hpp"

#include <bit>
#include <cstring>
#include <limits>

#include "flowrank/common/bytes.hpp"
#include "flowrank/common/error.hpp"

namespace flowrank::report {

namespace {

constexpr char kMagic[4] = {'F', 'R', 'R', 'B'};

// Smallest encoded size of each record (empty strings): the bound used by ByteReader::count.
constexpr size_t kMinPhaseBytes = 4 + 4 + 8 + 8;
constexpr size_t kMinStepBytes = 4 * 3 + 4 + 4 * 3 + 8 * 5 + 4 + 4 + 4;
constexpr size_t kMinWorkflowBytes = 4 + 4 + 8 + 8 + 4;
constexpr size_t kMinOutputBytes = 4 + 4 + 4;

std::string serialize(const std::vector<PhaseRecord>& phases, const std::vector<StepRecord>& steps,
                      const std::vector<WorkflowRecord>& workflows,
                      const std::map<std::pair<int32_t, int32_t>, std::string>& outputs) {
  ByteWriter w("record bytes");
  w.raw(kMagic, sizeof kMagic);
  w.u8(kRecordBytesVersion);
  w.count(phases.size());
  for (const PhaseRecord& p : phases) {
    w.i32(p.rank);
    w.str(p.phase);
    w.f64(p.start_s);
    w.f64(p.duration_s);
  }
  w.count(steps.size());
  for (const StepRecord& s : steps) {
    w.i32(s.rank);
    w.i32(s.workflow);
    w.i32(s.step);
    w.str(s.name);
    w.i32(s.prompt_tokens);
    w.i32(s.cached_tokens);
    w.i32(s.decode_tokens);
    w.f64(s.queued_ms);
    w.f64(s.ttft_ms);
    w.f64(s.latency_ms);
    w.f64(s.start_s);
    w.f64(s.end_s);
    w.str(s.finish);
    w.str(s.output_sha256_8);
    w.str(s.prompt_sha256_8);
  }
  w.count(workflows.size());
  for (const WorkflowRecord& r : workflows) {
    w.i32(r.rank);
    w.i32(r.workflow);
    w.f64(r.start_s);
    w.f64(r.end_s);
    w.i32(r.steps);
  }
  w.count(outputs.size());
  for (const auto& [key, text] : outputs) {
    w.i32(key.first);
    w.i32(key.second);
    w.str(text);
  }
  return w.take();
}

}  // namespace

std::string serialize_records(const RecordBatch& batch) {
  return serialize(batch.phases, batch.steps, batch.workflows, batch.outputs);
}

std::string serialize_records(const RunReport& report) {
  return serialize(report.phases, report.steps, report.workflows, report.outputs);
}

RecordBatch deserialize_records(std::string_view bytes) {
  ByteReader r(bytes, "record bytes");
  if (r.take(sizeof kMagic) != std::string_view(kMagic, sizeof kMagic)) r.fail("bad magic");
  const uint8_t version = r.u8();
  if (version != kRecordBytesVersion)
    r.fail("version " + std::to_string(version) + " not supported (expected " +
           std::to_string(kRecordBytesVersion) + ")");
  RecordBatch b;
  b.phases.resize(r.count(kMinPhaseBytes));
  for (PhaseRecord& p : b.phases) {
    p.rank = r.i32();
    p.phase = r.str();
    p.start_s = r.f64();
    p.duration_s = r.f64();
  }
  b.steps.resize(r.count(kMinStepBytes));
  for (StepRecord& s : b.steps) {
    s.rank = r.i32();
    s.workflow = r.i32();
    s.step = r.i32();
    s.name = r.str();
    s.prompt_tokens = r.i32();
    s.cached_tokens = r.i32();
    s.decode_tokens = r.i32();
    s.queued_ms = r.f64();
    s.ttft_ms = r.f64();
    s.latency_ms = r.f64();
    s.start_s = r.f64();
    s.end_s = r.f64();
    s.finish = r.str();
    s.output_sha256_8 = r.str();
    s.prompt_sha256_8 = r.str();
  }
  b.workflows.resize(r.count(kMinWorkflowBytes));
  for (WorkflowRecord& w : b.workflows) {
    w.rank = r.i32();
    w.workflow = r.i32();
    w.start_s = r.f64();
    w.end_s = r.f64();
    w.steps = r.i32();
  }
  const size_t outputs = r.count(kMinOutputBytes);
  for (size_t i = 0; i < outputs; ++i) {
    const int32_t wf = r.i32();
    const int32_t step = r.i32();
    if (!b.outputs.emplace(std::make_pair(wf, step), r.str()).second)
      r.fail("duplicate output for workflow " + std::to_string(wf) + " step " +
             std::to_string(step));
  }
  if (!r.done()) r.fail("trailing bytes");
  return b;
}

void append_records(RunReport& report, RecordBatch&& batch) {
  for (const auto& [key, text] : batch.outputs) {
    if (report.outputs.count(key))
      throw RunError("records: two outputs for workflow " + std::to_string(key.first) + " step " +
                     std::to_string(key.second));
  }
  auto move_into = [](auto& to, auto& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  };
  move_into(report.phases, batch.phases);
  move_into(report.steps, batch.steps);
  move_into(report.workflows, batch.workflows);
  report.outputs.merge(batch.outputs);
}

}  // namespace flowrank::report
