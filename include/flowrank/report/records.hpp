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
  std::string finish;           // length | stop | eos
  std::string output_sha256_8;  // first 8 hex of sha256(output UTF-8 bytes)
  // First 8 hex of sha256 of the prompt text as flowrank built it (before any chat template):
  // compare with `flowrank expand --hashes` and the harness's own prompts. Empty in reports
  // written before report format 2.
  std::string prompt_sha256_8;
};

struct WorkflowRecord {
  int32_t rank = 0;
  int32_t workflow = 0;
  double start_s = 0;
  double end_s = 0;
  int32_t steps = 0;
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
  // (workflow, step) -> generated text; written under /outputs only with --keep-outputs.
  std::map<std::pair<int32_t, int32_t>, std::string> outputs;
  // Board power and energy, when measured (a GPU run); absent, not zero, otherwise.
  std::optional<EnergyReport> energy;
};

}  // namespace flowrank::report
