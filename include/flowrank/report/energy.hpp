#pragma once
// Board power during a run and the energy figures derived from it (/energy in the report, docs/
// FORMATS.md). The harness multiplied one power reading by each step's latency (power_w,
// energy_j, tokens per joule from its commit b2bdb5d on); here power is sampled through the run
// and integrated. Plain arithmetic over recorded samples, so it is tested without a GPU.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowrank::report {

struct PhaseRecord;
struct StepRecord;

struct PowerSample {
  double t_s = 0;  // seconds since the run's epoch
  double power_w = 0;
};

struct PhaseEnergy {
  int32_t rank = 0;
  std::string phase;
  double start_s = 0;  // as in /phases: tells apart two records of one phase on one rank
  double duration_s = 0;
  double energy_j = 0;
  double mean_power_w = 0;
};

struct StepEnergy {
  int32_t rank = 0;
  int32_t workflow = 0;
  int32_t step = 0;
  double energy_j = 0;      // its share: each instant's energy split among the steps running
  double mean_power_w = 0;  // board power averaged over the time it ran
};

struct EnergyReport {
  std::string source;  // what was sampled, e.g. "nvml: NVIDIA H200 (GPU 0), every 20 ms"
  std::vector<PowerSample> samples;
  std::vector<PhaseEnergy> phases;
  std::vector<StepEnergy> steps;
  // The GPU's own energy counter over the sampled span, when it has one: a check on the
  // integration (nvmlDeviceGetTotalEnergyConsumption, Volta and later).
  std::optional<double> counter_j;
};

// Energy in joules over [t0, t1]: the trapezoid rule over the samples, linearly interpolated at
// t0 and t1; before the first and after the last sample the power is held at that sample's
// value. `samples` must be sorted by time and non-empty; 0 when t1 <= t0.
double energy_between(const std::vector<PowerSample>& samples, double t0, double t1);

// Energy of every phase record (over [start_s, start_s + duration_s]) and of every step: over the
// time it ran (first scheduled, start_s + queued_ms, to end_s), each instant's energy shared
// equally among the steps running then, so the steps' shares add up to the energy of the time
// any step ran. `samples` sorted by time; returns nothing without samples.
std::optional<EnergyReport> attribute_energy(std::string source, std::vector<PowerSample> samples,
                                             std::optional<double> counter_j,
                                             const std::vector<PhaseRecord>& phases,
                                             const std::vector<StepRecord>& steps);

// Prompt and decode tokens per joule of the `run` phase (all ranks), as the harness's
// "Tokens/Joule" figure counted tokens; nullopt without energy for that phase.
struct EnergySummary {
  double run_energy_j = 0;
  double run_mean_power_w = 0;
  double total_energy_j = 0;  // every phase
  double tokens_per_j = 0;
  double decode_tokens_per_j = 0;
};
std::optional<EnergySummary> summarize_energy(const EnergyReport& energy,
                                              const std::vector<StepRecord>& steps);

}  // namespace flowrank::report
