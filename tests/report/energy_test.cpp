// The energy arithmetic on recorded power samples: no GPU needed.
#include "flowrank/report/energy.hpp"

#include <gtest/gtest.h>

#include "flowrank/report/records.hpp"

namespace flowrank::report {
namespace {

StepRecord step(int32_t wf, int32_t index, double start_s, double queued_ms, double end_s,
                int32_t prompt, int32_t decode) {
  StepRecord r;
  r.workflow = wf;
  r.step = index;
  r.start_s = start_s;
  r.queued_ms = queued_ms;
  r.end_s = end_s;
  r.prompt_tokens = prompt;
  r.decode_tokens = decode;
  return r;
}

TEST(EnergyBetween, TrapezoidsWithInterpolatedEnds) {
  const std::vector<PowerSample> flat = {{1.0, 100.0}, {3.0, 100.0}};
  EXPECT_DOUBLE_EQ(energy_between(flat, 1.0, 3.0), 200.0);
  // Held at the nearest sample outside the sampled span: 100 W over [0, 5].
  EXPECT_DOUBLE_EQ(energy_between(flat, 0.0, 5.0), 500.0);
  EXPECT_DOUBLE_EQ(energy_between(flat, 3.0, 3.0), 0.0);
  EXPECT_DOUBLE_EQ(energy_between(flat, 4.0, 2.0), 0.0);

  // A ramp 0 -> 100 W over 10 s sampled at its ends: integral 500 J; over [2, 4] the power is
  // 10 t W, so 5 (4^2 - 2^2) = 60 J.
  const std::vector<PowerSample> ramp = {{0.0, 0.0}, {10.0, 100.0}};
  EXPECT_DOUBLE_EQ(energy_between(ramp, 0.0, 10.0), 500.0);
  EXPECT_NEAR(energy_between(ramp, 2.0, 4.0), 60.0, 1e-9);

  // Irregular samples: 0.5*(100+300)*2 + 0.5*(300+100)*1 + 100*3 = 400 + 200 + 300.
  const std::vector<PowerSample> trace = {{0, 100}, {2, 300}, {3, 100}, {6, 100}};
  EXPECT_DOUBLE_EQ(energy_between(trace, 0, 6), 900.0);
  EXPECT_DOUBLE_EQ(energy_between(trace, 1, 2.5), 0.5 * (200 + 300) * 1 + 0.5 * (300 + 200) * 0.5);
}

// Two steps overlap on [2, 4]: there each gets half of the board's energy.
TEST(AttributeEnergy, StepsShareWhatRunsTogether) {
  const std::vector<PowerSample> trace = {{0, 100}, {2, 300}, {4, 100}, {6, 100}};
  // Energies: [0,2] 400 J, [2,4] 400 J, [4,6] 200 J.
  const std::vector<StepRecord> steps = {
      step(0, 0, 0.0, 0.0, 4.0, 1000, 100),    // runs [0, 4]
      step(1, 0, 1.0, 1000.0, 6.0, 500, 300),  // submitted at 1, first scheduled at 2: [2, 6]
  };
  const std::vector<PhaseRecord> phases = {{0, "engine_preload", -1.0, 1.0}, {0, "run", 0.0, 6.0}};
  const auto e = attribute_energy("test trace", trace, phases, steps);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->source, "test trace");
  EXPECT_EQ(e->samples.size(), 4u);
  ASSERT_EQ(e->steps.size(), 2u);
  EXPECT_DOUBLE_EQ(e->steps[0].energy_j, 400.0 + 200.0);
  EXPECT_DOUBLE_EQ(e->steps[1].energy_j, 200.0 + 200.0);
  EXPECT_DOUBLE_EQ(e->steps[0].energy_j + e->steps[1].energy_j, energy_between(trace, 0, 6));
  EXPECT_DOUBLE_EQ(e->steps[0].mean_power_w, 800.0 / 4.0);  // the board's, not the share's
  EXPECT_DOUBLE_EQ(e->steps[1].mean_power_w, 600.0 / 4.0);
  EXPECT_EQ(e->steps[1].workflow, 1);

  ASSERT_EQ(e->phases.size(), 2u);
  EXPECT_EQ(e->phases[0].phase, "engine_preload");
  EXPECT_DOUBLE_EQ(e->phases[0].energy_j, 100.0);  // before the first sample: held at 100 W
  EXPECT_DOUBLE_EQ(e->phases[1].energy_j, 1000.0);
  EXPECT_DOUBLE_EQ(e->phases[1].mean_power_w, 1000.0 / 6.0);

  const auto sum = summarize_energy(*e, steps);
  ASSERT_TRUE(sum.has_value());
  EXPECT_DOUBLE_EQ(sum->run_energy_j, 1000.0);
  EXPECT_DOUBLE_EQ(sum->total_energy_j, 1100.0);
  EXPECT_DOUBLE_EQ(sum->run_mean_power_w, 1000.0 / 6.0);
  EXPECT_DOUBLE_EQ(sum->tokens_per_j, (1000 + 100 + 500 + 300) / 1000.0);
  EXPECT_DOUBLE_EQ(sum->decode_tokens_per_j, 400 / 1000.0);
}

// Three steps with the samples falling inside windows: the shares still add up to the energy
// of the span any step ran, and a zero-length step gets none.
TEST(AttributeEnergy, SharesAddUpOverManySamples) {
  std::vector<PowerSample> trace;
  for (int i = 0; i <= 100; ++i) trace.push_back({i * 0.1, 100.0 + (i % 7) * 10.0});
  const std::vector<StepRecord> steps = {step(0, 0, 0.5, 0, 7.25, 1, 1),
                                         step(0, 1, 3.05, 0, 9.5, 1, 1),
                                         step(1, 0, 2.0, 0, 2.0, 1, 1)};
  const auto e = attribute_energy("t", trace, {}, steps);
  ASSERT_TRUE(e.has_value());
  EXPECT_DOUBLE_EQ(e->steps[2].energy_j, 0.0);
  EXPECT_NEAR(e->steps[0].energy_j + e->steps[1].energy_j, energy_between(trace, 0.5, 9.5), 1e-9);
  // Alone on [0.5, 3.05]: the first step has at least that span's energy.
  EXPECT_GT(e->steps[0].energy_j, energy_between(trace, 0.5, 3.05));
  EXPECT_FALSE(summarize_energy(*e, steps).has_value());  // no run phase: no per-run figures
}

TEST(AttributeEnergy, NoSamplesNoEnergy) {
  EXPECT_FALSE(attribute_energy("none", {}, {}, {}).has_value());
}

// With the GPU's energy counter in every sample, energy is the counter's difference
// (interpolated between samples), not the power readings' integral; outside the sampled span
// the power is held as before.
TEST(EnergyBetween, CounterWhenEverySampleHasOne) {
  // Power readings say 100 W throughout, but the counter says 250 J went in the first second and
  // 50 J in the next: a 1-second-averaged power reading lags what the counter sees.
  const std::vector<PowerSample> trace = {{0, 100, 5000}, {1, 100, 5250}, {2, 100, 5300}};
  EXPECT_DOUBLE_EQ(energy_between(trace, 0, 2), 300.0);
  EXPECT_DOUBLE_EQ(energy_between(trace, 0.5, 1.5), 125.0 + 25.0);
  EXPECT_DOUBLE_EQ(energy_between(trace, -1, 3), 100.0 + 300.0 + 100.0);
  EXPECT_DOUBLE_EQ(energy_from_power(trace, 0, 2), 200.0);

  // One sample without a counter reading: the readings are used throughout.
  std::vector<PowerSample> partial = trace;
  partial[1].counter_j = std::numeric_limits<double>::quiet_NaN();
  EXPECT_DOUBLE_EQ(energy_between(partial, 0, 2), 200.0);

  const std::vector<StepRecord> steps = {step(0, 0, 0, 0, 2, 10, 20), step(1, 0, 1, 0, 2, 0, 0)};
  const std::vector<PhaseRecord> phases = {{0, "run", 0.0, 2.0}};
  const auto e = attribute_energy("counter", trace, phases, steps);
  ASSERT_TRUE(e.has_value());
  EXPECT_DOUBLE_EQ(e->steps[0].energy_j, 250.0 + 25.0);
  EXPECT_DOUBLE_EQ(e->steps[1].energy_j, 25.0);
  EXPECT_DOUBLE_EQ(e->steps[0].mean_power_w, 150.0);
  const auto sum = summarize_energy(*e, steps);
  ASSERT_TRUE(sum.has_value());
  EXPECT_DOUBLE_EQ(sum->run_energy_j, 300.0);
  EXPECT_DOUBLE_EQ(sum->run_energy_from_power_j, 200.0);
  EXPECT_DOUBLE_EQ(sum->tokens_per_j, 30.0 / 300.0);
}

}  // namespace
}  // namespace flowrank::report
