#pragma once
// The seed harness's log lines (docs/COMPAT.md), so that dashboards and scripts built on them
// keep working. Names, fields and numbering as the harness printed them at fa357ea ([TARGET],
// [INPUT]) and 860f111 ([TIMING], the commit that added them, the day after), on its streams:
//   stdout  [INPUT] fixture_bytes=B fixture_files=F                   one per workflow
//   stderr  [TIMING] flow_expansion_ms=X (cached|generated)
//   stderr  [TIMING] engine_init_start
//   stderr  [TIMING] engine_init_ms=X
//   stderr  [TARGET] flow=W step=NAME latency_ms=X prompt_tokens=P decode_tokens=D
//                    prefill_tokens=P-C reused_tokens=C [power_w=X energy_j=Y]
//   stderr  [TIMING] workflow_W_ms=X                                  after its last step
//   stderr  [TIMING] benchmark_total_ms=X                             engine start to last step
//   stderr  [TIMING] avg_workflow_ms=X
// W counts workflows from 1, as the harness's workflow_<n> and flow= (LE-0 path) did.
// Milliseconds print with two decimals. power_w and energy_j (the harness's later fields, from
// ad6b62b on) appear only when the run measured energy. A line whose source record is absent is
// left out rather than printed with a made-up 0; so is the [TARGET] line of a step that failed or
// was skipped (the harness stopped at a failure; the step's error is in /steps).
// With several ranks, `run --seed-log` prints [INPUT], expansion, engine init and the closing
// lines on rank 0 (engine init: rank 0's preload) and each rank its own [TARGET] and workflow
// lines as they happen; `report --seed-log` prints them all in order, engine init the slowest
// rank's.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flowrank/report/records.hpp"

namespace flowrank::report {

struct SeedLine {
  bool to_stdout = false;  // [INPUT] on stdout; [TIMING] and [TARGET] on stderr
  std::string text;        // ends with '\n'
};

// One line each, as printed live by `flowrank run --seed-log`.
SeedLine seed_input_line(const std::string& fixture_bytes, const std::string& fixture_files);
// `flow_cache`: hit -> "(cached)", miss or off -> "(generated)", anything else -> no suffix.
SeedLine seed_expansion_line(double ms, const std::string& flow_cache);
SeedLine seed_engine_init_start_line();
SeedLine seed_engine_init_line(double ms);
SeedLine seed_target_line(const StepRecord& step, const StepEnergy* energy = nullptr);
SeedLine seed_workflow_line(const WorkflowRecord& workflow);
// benchmark_total_ms (earliest engine_preload start to latest run end; without those phases
// the span of the workflows) and avg_workflow_ms (mean workflow duration).
std::vector<SeedLine> seed_closing_lines(const RunReport& report);

// The whole log from a report, in the order a run prints it: [INPUT] lines (as many as the
// `workflows` extra says, else one), expansion, engine init, then per workflow in index order
// its [TARGET] lines in step order and its [TIMING] line, then the closing lines.
std::vector<SeedLine> seed_log_lines(const RunReport& report);

}  // namespace flowrank::report
