#pragma once
// Board power during a run and the energy figures derived from it (/energy in the report, docs/
// FORMATS.md). The harness multiplied one power reading by each step's latency (power_w,
// energy_j, tokens per joule from its commit b2bdb5d on); here power is sampled through the run
// and integrated. Plain arithmetic over recorded samples, so it is tested without a GPU.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace flowrank::report {

struct PhaseRecord;
struct StepRecord;
struct RankRecord;

struct PowerSample {
  double t_s = 0;  // seconds since the run's epoch
  double power_w = 0;
  // The GPU's energy counter at t_s (joules since its driver loaded; NVML's
  // nvmlDeviceGetTotalEnergyConsumption, Volta and later); NaN where the GPU has none.
  double counter_j = std::numeric_limits<double>::quiet_NaN();
  int32_t rank = 0;  // whose GPU: each rank samples the board it runs on
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

// Every rank's figures side by side (rank columns); a rank that measured nothing has no rows.
struct EnergyReport {
  // What was sampled, e.g. "nvml: NVIDIA H200 (GPU 0), every 20 ms"; with several ranks measured,
  // "rank 0: nvml: ...; rank 1: nvml: ..." (from the /ranks `energy` column).
  std::string source;
  std::vector<PowerSample> samples;
  std::vector<PhaseEnergy> phases;
  std::vector<StepEnergy> steps;
};

// Energy in joules over [t0, t1]. With a counter in every sample, the counter's difference,
// linearly interpolated between samples; else the trapezoid rule over power_w, interpolated at t0
// and t1. Before the first and after the last sample the power is held at that sample's value.
// `samples` sorted by time; 0 when t1 <= t0 or there are no samples.
double energy_between(const std::vector<PowerSample>& samples, double t0, double t1);
// Always from power_w (the trapezoid rule), for checking the counter against the readings.
double energy_from_power(const std::vector<PowerSample>& samples, double t0, double t1);

// Energy of every phase record (over [start_s, start_s + duration_s]) and of every step: over the
// time it ran (first scheduled, start_s + queued_ms, to end_s), each instant's energy shared
// equally among the steps running then, so the steps' shares add up to the energy of the time
// any step ran. One rank's board: its samples, phases and steps (a rank attributes its own before
// the gather). `samples` sorted by time; returns nothing without samples.
std::optional<EnergyReport> attribute_energy(std::string source, std::vector<PowerSample> samples,
                                             const std::vector<PhaseRecord>& phases,
                                             const std::vector<StepRecord>& steps);

// The /energy source for these ranks: the `energy` of each rank with samples; prefixed
// "rank R: " and joined by "; " when there are several. Empty when no such rank is known.
std::string energy_source(const std::vector<RankRecord>& ranks,
                          const std::vector<PowerSample>& samples);

// Prompt and decode tokens per joule of the `run` phase, as the harness's "Tokens/Joule" figure
// counted tokens: energy summed over the ranks that measured it, tokens of the steps given a share
// of it on those ranks (not those of ranks that measured nothing, nor steps resumed from an
// earlier run). nullopt without energy for that phase.
struct EnergySummary {
  double run_energy_j = 0;
  double run_energy_from_power_j = 0;  // the same span from power readings alone (a check)
  double run_mean_power_w = 0;         // per board: run energy over the summed run durations
  double total_energy_j = 0;           // every phase
  double tokens_per_j = 0;
  double decode_tokens_per_j = 0;
};
std::optional<EnergySummary> summarize_energy(const EnergyReport& energy,
                                              const std::vector<StepRecord>& steps);

}  // namespace flowrank::report
