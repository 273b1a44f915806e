#include "columns.hpp"

namespace flowrank::report::detail {

const std::vector<Column<PhaseRecord>>& phase_columns() {
  static const std::vector<Column<PhaseRecord>> c = {
      {"rank", &PhaseRecord::rank},
      {"phase", &PhaseRecord::phase},
      {"start_s", &PhaseRecord::start_s},
      {"duration_s", &PhaseRecord::duration_s},
  };
  return c;
}

const std::vector<Column<StepRecord>>& step_columns() {
  static const std::vector<Column<StepRecord>> c = {
      {"rank", &StepRecord::rank},
      {"workflow", &StepRecord::workflow},
      {"step", &StepRecord::step},
      {"name", &StepRecord::name},
      {"prompt_tokens", &StepRecord::prompt_tokens},
      {"cached_tokens", &StepRecord::cached_tokens},
      {"decode_tokens", &StepRecord::decode_tokens},
      {"queued_ms", &StepRecord::queued_ms},
      {"ttft_ms", &StepRecord::ttft_ms},
      {"latency_ms", &StepRecord::latency_ms},
      {"start_s", &StepRecord::start_s},
      {"end_s", &StepRecord::end_s},
      {"finish", &StepRecord::finish},
      {"output_sha256_8", &StepRecord::output_sha256_8},
      {"error", &StepRecord::error, true},
      {"prompt_sha256_8", &StepRecord::prompt_sha256_8, true},
  };
  return c;
}

const std::vector<Column<WorkflowRecord>>& workflow_columns() {
  static const std::vector<Column<WorkflowRecord>> c = {
      {"rank", &WorkflowRecord::rank},       {"workflow", &WorkflowRecord::workflow},
      {"start_s", &WorkflowRecord::start_s}, {"end_s", &WorkflowRecord::end_s},
      {"steps", &WorkflowRecord::steps},
  };
  return c;
}

const std::vector<Column<RankRecord>>& rank_columns() {
  static const std::vector<Column<RankRecord>> c = {
      {"rank", &RankRecord::rank},
      {"host", &RankRecord::host},
      {"device", &RankRecord::device},
      {"status", &RankRecord::status},
      {"error", &RankRecord::error},
      {"workflows", &RankRecord::workflows},
      {"steps_total", &RankRecord::steps_total},
      {"steps_done", &RankRecord::steps_done},
      {"engine_steps", &RankRecord::engine_steps},
      {"engine_preemptions", &RankRecord::engine_preemptions},
      {"engine_evictions", &RankRecord::engine_evictions},
      {"engine_computed_tokens", &RankRecord::engine_computed_tokens},
      {"engine_cached_tokens", &RankRecord::engine_cached_tokens},
      {"kv_blocks", &RankRecord::kv_blocks},
      {"weights", &RankRecord::weights},
      {"energy", &RankRecord::energy, true},
  };
  return c;
}

const std::vector<Column<PlanRecord>>& plan_columns() {
  static const std::vector<Column<PlanRecord>> c = {
      {"workflow", &PlanRecord::workflow},
      {"rank", &PlanRecord::rank},
      {"estimated_tokens", &PlanRecord::estimated_tokens},
  };
  return c;
}

const std::vector<Column<PowerSample>>& sample_columns() {
  static const std::vector<Column<PowerSample>> c = {
      {"rank", &PowerSample::rank, true},
      {"t_s", &PowerSample::t_s},
      {"power_w", &PowerSample::power_w},
      {"counter_j", &PowerSample::counter_j},
  };
  return c;
}

const std::vector<Column<PhaseEnergy>>& phase_energy_columns() {
  static const std::vector<Column<PhaseEnergy>> c = {
      {"rank", &PhaseEnergy::rank},         {"phase", &PhaseEnergy::phase},
      {"start_s", &PhaseEnergy::start_s},   {"duration_s", &PhaseEnergy::duration_s},
      {"energy_j", &PhaseEnergy::energy_j}, {"mean_power_w", &PhaseEnergy::mean_power_w},
  };
  return c;
}

const std::vector<Column<StepEnergy>>& step_energy_columns() {
  static const std::vector<Column<StepEnergy>> c = {
      {"rank", &StepEnergy::rank},
      {"workflow", &StepEnergy::workflow},
      {"step", &StepEnergy::step},
      {"energy_j", &StepEnergy::energy_j},
      {"mean_power_w", &StepEnergy::mean_power_w},
  };
  return c;
}

}  // namespace flowrank::report::detail
