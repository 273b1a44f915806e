#pragma once
// What a run records. Plain data: run/ fills it, dist/ moves its bytes, report/ writes and reads
// it.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flowrank/report/energy.hpp"

namespace flowrank::report {

// Times are seconds since the run's epoch (rank 0's start).
struct PhaseRecord {
  int32_t rank = 0;
  std::string phase;  // world_init, flow_expand, flow_broadcast, engine_preload, nccl_init,
                      // weights_broadcast, run, gather, report_write
  double start_s = 0;
  double duration_s = 0;
};

struct StepRecord {
  int32_t rank = 0;
  int32_t workflow = 0;
  int32_t step = 0;
  std::string name;
  int32_t prompt_tokens = 0;
  int32_t cached_tokens = 0;
  int32_t decode_tokens = 0;
  double queued_ms = 0;   // submit -> first scheduled
  double ttft_ms = 0;     // submit -> first generated token
  double latency_ms = 0;  // submit -> finished
  double start_s = 0;     // submit time since epoch
  double end_s = 0;
  std::string finish;           // length | stop | eos, or error | skipped (no output)
  std::string output_sha256_8;  // first 8 hex of sha256(output UTF-8 bytes); empty without output
  std::string error;            // one line: why the step failed or was skipped; else empty
  // First 8 hex of sha256 of the prompt text as flowrank built it (before any chat template):
  // compare with `flowrank expand --hashes` and the harness's own prompts. Empty for a skipped
  // step (its prompt could not be built) and in reports written before report format 3.
  std::string prompt_sha256_8;
};

struct WorkflowRecord {
  int32_t rank = 0;
  int32_t workflow = 0;
  double start_s = 0;
  double end_s = 0;
  int32_t steps = 0;
};

// One rank: where it ran, how it ended, what its engine did.
struct RankRecord {
  int32_t rank = 0;
  std::string host;
  std::string device;       // the engine's device, e.g. "cpu (2 threads)", "NVIDIA H200"
  std::string status;       // complete | interrupted | failed | lost (died before the gather)
  std::string error;        // one line when failed or lost
  int32_t workflows = 0;    // assigned by the sharding plan
  int32_t steps_total = 0;  // steps of those workflows
  int32_t steps_done = 0;   // steps recorded (finished, failed or skipped), resumed ones included
  int64_t engine_steps = 0;
  int64_t engine_preemptions = 0;
  int64_t engine_evictions = 0;
  int64_t engine_computed_tokens = 0;
  int64_t engine_cached_tokens = 0;
  int32_t kv_blocks = 0;
  std::string weights;  // where the weights came from: disk | rank0 (broadcast)
  // This rank's board power: what was sampled (e.g. "nvml: NVIDIA H200 (GPU 1), every 20 ms,
  // energy counter"), or "absent: <why>", or "off". Each rank samples the GPU it runs on.
  std::string energy;
};

// The sharding plan: which rank runs which workflow, and the cost estimate it was placed by.
struct PlanRecord {
  int32_t workflow = 0;
  int32_t rank = 0;
  int64_t estimated_tokens = 0;
};

struct RunAttributes {
  std::string flowrank_version;
  std::string job_name;
  std::string job_sha256;
  std::string model;
  std::string device;
  int32_t world_size = 1;
  std::string started_at;  // ISO 8601 UTC
  // Free-form extras shown by `report` and --seed-log (e.g. cache=hit, fixture_bytes=115185).
  std::map<std::string, std::string> extra;
};

struct RunReport {
  RunAttributes attrs;
  std::vector<PhaseRecord> phases;
  std::vector<StepRecord> steps;
  std::vector<WorkflowRecord> workflows;
  std::vector<RankRecord> ranks;
  std::vector<PlanRecord> plan;
  // (workflow, step) -> generated text; written under /outputs only with --keep-outputs.
  std::map<std::pair<int32_t, int32_t>, std::string> outputs;
  // Board power and energy, when measured (a GPU run); absent, not zero, otherwise.
  std::optional<EnergyReport> energy;
};

}  // namespace flowrank::report
