#pragma once
// Statistics over a run's records, and the text forms `flowrank report` / `flowrank run` print.
//
// Definitions:
// - Percentiles use the nearest-rank method: for n sorted values v[0..n-1], the p-th percentile is
//   v[ceil(p/100 * n) - 1] (index clamped to 0); it is always one of the observed values. With no
//   values every statistic is 0.
// - Run wall time = latest end (start_s + duration_s) minus earliest start of the `run` phase over
//   all ranks, i.e. the span during which any rank was generating. 0 if there is no `run` phase.
// - Decode tokens/s = decode tokens / run wall time (0 when the wall time is 0). For one step name
//   it is that step's decode tokens over the same run wall time, i.e. its share of the run's
//   throughput: the per-step figures add up to the overall one.
// - Per phase: total_s sums the durations of every record of that phase over all ranks;
//   max_rank_s sums the durations per rank and takes the largest (the rank that held the run up).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flowrank/report/records.hpp"

namespace flowrank::report {

struct DistributionStats {
  double mean = 0;
  double p50 = 0;
  double p99 = 0;
};

struct StepSummary {
  std::string name;  // step name, or "all" for the overall row
  int64_t count = 0;
  DistributionStats latency_ms;
  DistributionStats ttft_ms;
  double mean_queued_ms = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t decode_tokens = 0;
  double decode_tokens_per_s = 0;
};

struct PhaseSummary {
  std::string phase;
  int32_t ranks = 0;      // ranks that recorded this phase
  double total_s = 0;     // sum over all records
  double max_rank_s = 0;  // largest per-rank sum
};

// Energy by phase name or step name (when the run measured it: /energy).
struct EnergyRow {
  std::string name;  // phase or step name, "all" for every step
  double energy_j = 0;
  double mean_power_w = 0;  // phases: energy over their summed durations
  double tokens_per_j = 0;  // steps: (prompt + decode tokens) / their energy
};

struct Summary {
  // Step names ordered by their smallest step index (planner, executor, verifier), then by name.
  std::vector<StepSummary> steps;
  StepSummary overall;  // name "all"
  // Known phases in pipeline order (world_init ... report_write), then others by first appearance.
  std::vector<PhaseSummary> phases;
  double run_wall_s = 0;
  int64_t workflows = 0;     // number of WorkflowRecords
  int64_t failed_steps = 0;  // steps with an error (failed or skipped), left out of the stats
  std::vector<RankRecord> ranks;
  // Present only when the report has /energy (never zeros for a run that did not measure).
  std::optional<EnergySummary> energy;
  std::string energy_source;
  std::vector<EnergyRow> phase_energy;  // phases in the order of `phases`, those measured
  std::vector<EnergyRow> step_energy;   // step names in the order of `steps`, then "all"
};

// Nearest-rank percentile of `values` (need not be sorted); 0 for an empty vector.
double nearest_rank_percentile(std::vector<double> values, double p);

Summary summarize(const RunReport& report);

// Aligned markdown tables (like llama-bench): one header line with the run's attributes, a table of
// steps (one row per step name plus "all") and a table of phases; then a line counting failed
// steps and a table of ranks (several ranks, or one that did not complete), when there are any;
// with energy, an energy line and tables of energy by phase and by step. Ends with a newline.
std::string format_summary_table(const Summary& summary, const RunAttributes& attrs);

// The same figures for `--format json`: {"run": {attributes, extra}, "steps": [...], "overall":
// {...}, "phases": [...], "run_wall_s": x, "workflows": n}, and "energy": {...} when measured.
nlohmann::json summary_json(const Summary& summary, const RunAttributes& attrs);
// Indented by 2, no trailing newline; bytes that are not UTF-8 print as U+FFFD.
std::string format_summary_json(const Summary& summary, const RunAttributes& attrs);

}  // namespace flowrank::report
