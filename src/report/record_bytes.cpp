#include "flowrank/report/record_bytes.hpp"

#include "columns.hpp"
#include "flowrank/common/bytes.hpp"
#include "flowrank/common/error.hpp"

namespace flowrank::report {

namespace {

constexpr char kMagic[4] = {'F', 'R', 'R', 'B'};
constexpr size_t kMinOutputBytes = 4 + 4 + 4;

template <class R>
void write_rows(ByteWriter& w, const std::vector<detail::Column<R>>& columns,
                const std::vector<R>& rows) {
  w.count(rows.size());
  for (const R& row : rows) {
    for (const auto& c : columns) {
      std::visit(
          [&](auto member) {
            const auto& v = row.*member;
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, int32_t>) w.i32(v);
            if constexpr (std::is_same_v<V, int64_t>) w.u64(static_cast<uint64_t>(v));
            if constexpr (std::is_same_v<V, double>) w.f64(v);
            if constexpr (std::is_same_v<V, std::string>) w.str(v);
          },
          c.member);
    }
  }
}

// Smallest encoded size of a record (empty strings): the bound used by ByteReader::count.
template <class R>
size_t min_bytes(const std::vector<detail::Column<R>>& columns) {
  size_t n = 0;
  for (const auto& c : columns) {
    const detail::Kind k = detail::kind_of(c);
    n += (k == detail::Kind::F64 || k == detail::Kind::I64) ? 8 : 4;
  }
  return n;
}

template <class R>
std::vector<R> read_rows(ByteReader& r, const std::vector<detail::Column<R>>& columns) {
  std::vector<R> rows(r.count(min_bytes(columns)));
  for (R& row : rows) {
    for (const auto& c : columns) {
      std::visit(
          [&](auto member) {
            auto& v = row.*member;
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, int32_t>) v = r.i32();
            if constexpr (std::is_same_v<V, int64_t>) v = static_cast<int64_t>(r.u64());
            if constexpr (std::is_same_v<V, double>) v = r.f64();
            if constexpr (std::is_same_v<V, std::string>) v = r.str();
          },
          c.member);
    }
  }
  return rows;
}

// The energy tables of a report or a batch (none when nothing was measured).
struct EnergyRows {
  const std::vector<PowerSample>& samples;
  const std::vector<PhaseEnergy>& phases;
  const std::vector<StepEnergy>& steps;
};

std::string serialize(const std::vector<PhaseRecord>& phases, const std::vector<StepRecord>& steps,
                      const std::vector<WorkflowRecord>& workflows,
                      const std::map<std::pair<int32_t, int32_t>, std::string>& outputs,
                      const std::vector<RankRecord>& ranks, const std::vector<PlanRecord>& plan,
                      const EnergyRows& energy) {
  ByteWriter w("record bytes");
  w.raw(kMagic, sizeof kMagic);
  w.u8(kRecordBytesVersion);
  write_rows(w, detail::phase_columns(), phases);
  write_rows(w, detail::step_columns(), steps);
  write_rows(w, detail::workflow_columns(), workflows);
  w.count(outputs.size());
  for (const auto& [key, text] : outputs) {
    w.i32(key.first);
    w.i32(key.second);
    w.str(text);
  }
  write_rows(w, detail::rank_columns(), ranks);
  write_rows(w, detail::plan_columns(), plan);
  write_rows(w, detail::sample_columns(), energy.samples);
  write_rows(w, detail::phase_energy_columns(), energy.phases);
  write_rows(w, detail::step_energy_columns(), energy.steps);
  return w.take();
}

}  // namespace

std::string serialize_records(const RecordBatch& b) {
  return serialize(b.phases, b.steps, b.workflows, b.outputs, b.ranks, b.plan,
                   {b.power_samples, b.phase_energy, b.step_energy});
}

std::string serialize_records(const RunReport& r) {
  static const EnergyReport none;
  const EnergyReport& e = r.energy ? *r.energy : none;
  return serialize(r.phases, r.steps, r.workflows, r.outputs, r.ranks, r.plan,
                   {e.samples, e.phases, e.steps});
}

RecordBatch deserialize_records(std::string_view bytes) {
  ByteReader r(bytes, "record bytes");
  if (r.take(sizeof kMagic) != std::string_view(kMagic, sizeof kMagic)) r.fail("bad magic");
  const uint8_t version = r.u8();
  if (version != kRecordBytesVersion)
    r.fail("version " + std::to_string(version) + " not supported (expected " +
           std::to_string(kRecordBytesVersion) + ")");
  RecordBatch b;
  b.phases = read_rows(r, detail::phase_columns());
  b.steps = read_rows(r, detail::step_columns());
  b.workflows = read_rows(r, detail::workflow_columns());
  const size_t outputs = r.count(kMinOutputBytes);
  for (size_t i = 0; i < outputs; ++i) {
    const int32_t wf = r.i32();
    const int32_t step = r.i32();
    if (!b.outputs.emplace(std::make_pair(wf, step), r.str()).second)
      r.fail("duplicate output for workflow " + std::to_string(wf) + " step " +
             std::to_string(step));
  }
  b.ranks = read_rows(r, detail::rank_columns());
  b.plan = read_rows(r, detail::plan_columns());
  b.power_samples = read_rows(r, detail::sample_columns());
  b.phase_energy = read_rows(r, detail::phase_energy_columns());
  b.step_energy = read_rows(r, detail::step_energy_columns());
  if (!r.done()) r.fail("trailing bytes");
  return b;
}

namespace {

template <class T>
void move_into(std::vector<T>& dst, std::vector<T>& src) {
  dst.insert(dst.end(), std::make_move_iterator(src.begin()), std::make_move_iterator(src.end()));
}

// Moves every record of `from` but the energy rows into `to` (anything with the RecordBatch
// members).
template <class To>
void move_records(To& to, RecordBatch& from) {
  for (const auto& [key, text] : from.outputs) {
    if (to.outputs.count(key))
      throw RunError("records: two outputs for workflow " + std::to_string(key.first) + " step " +
                     std::to_string(key.second));
  }
  move_into(to.phases, from.phases);
  move_into(to.steps, from.steps);
  move_into(to.workflows, from.workflows);
  move_into(to.ranks, from.ranks);
  move_into(to.plan, from.plan);
  to.outputs.merge(from.outputs);
}

}  // namespace

void append_records(RunReport& report, RecordBatch&& batch) {
  move_records(report, batch);
  const bool energy =
      !batch.power_samples.empty() || !batch.phase_energy.empty() || !batch.step_energy.empty();
  if (energy && !report.energy) report.energy.emplace();
  if (!report.energy) return;
  move_into(report.energy->samples, batch.power_samples);
  move_into(report.energy->phases, batch.phase_energy);
  move_into(report.energy->steps, batch.step_energy);
  if (std::string source = energy_source(report.ranks, report.energy->samples); !source.empty())
    report.energy->source = std::move(source);
}

void merge_records(RecordBatch& into, RecordBatch&& batch) {
  move_records(into, batch);
  move_into(into.power_samples, batch.power_samples);
  move_into(into.phase_energy, batch.phase_energy);
  move_into(into.step_energy, batch.step_energy);
}

}  // namespace flowrank::report
