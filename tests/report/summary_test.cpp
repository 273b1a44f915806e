#include "flowrank/report/summary.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace flowrank::report {
namespace {

TEST(NearestRankPercentile, MatchesTheTextbookExample) {
  // Values and results from the nearest-rank definition: rank = ceil(p/100 * n), 1-based.
  const std::vector<double> v = {35, 20, 15, 50, 40};  // sorted: 15 20 35 40 50
  EXPECT_EQ(nearest_rank_percentile(v, 5), 15);        // ceil(0.25) = 1
  EXPECT_EQ(nearest_rank_percentile(v, 30), 20);       // ceil(1.5) = 2
  EXPECT_EQ(nearest_rank_percentile(v, 40), 20);       // ceil(2.0) = 2
  EXPECT_EQ(nearest_rank_percentile(v, 50), 35);       // ceil(2.5) = 3
  EXPECT_EQ(nearest_rank_percentile(v, 99), 50);       // ceil(4.95) = 5
  EXPECT_EQ(nearest_rank_percentile(v, 100), 50);
  EXPECT_EQ(nearest_rank_percentile(v, 0), 15);
  EXPECT_EQ(nearest_rank_percentile({}, 50), 0);
  EXPECT_EQ(nearest_rank_percentile({7}, 99), 7);
}

StepRecord step(const char* name, int32_t index, double latency, double ttft, double queued,
                int32_t prompt, int32_t cached, int32_t decode) {
  StepRecord s;
  s.name = name;
  s.step = index;
  s.latency_ms = latency;
  s.ttft_ms = ttft;
  s.queued_ms = queued;
  s.prompt_tokens = prompt;
  s.cached_tokens = cached;
  s.decode_tokens = decode;
  return s;
}

RunReport small_report() {
  RunReport r;
  // Executor rows first: the summary orders names by step index, not by appearance.
  r.steps = {step("executor", 1, 400, 40, 4, 80, 0, 40), step("planner", 0, 100, 10, 1, 50, 0, 10),
             step("planner", 0, 300, 30, 3, 60, 20, 20),
             step("executor", 1, 500, 50, 5, 90, 10, 50),
             step("planner", 0, 200, 20, 2, 70, 40, 30)};
  r.phases = {{0, "custom", 0.0, 0.5},
              {0, "engine_preload", 0.0, 2.0},
              {1, "engine_preload", 0.0, 3.0},
              {0, "run", 1.0, 4.0},
              {1, "run", 1.5, 4.5},
              {0, "custom", 9.0, 0.5},
              {0, "world_init", 0.0, 0.25}};
  r.workflows = {{0, 0, 1.0, 3.0, 2}, {1, 1, 1.5, 6.0, 3}};
  return r;
}

TEST(Summarize, PerStepAndOverallStatisticsMatchHandComputedValues) {
  const Summary s = summarize(small_report());
  EXPECT_DOUBLE_EQ(s.run_wall_s, 5.0);  // run spans 1.0 .. max(5.0, 6.0)
  EXPECT_EQ(s.workflows, 2);
  ASSERT_EQ(s.steps.size(), 2u);

  const StepSummary& planner = s.steps[0];  // latencies 100 200 300
  EXPECT_EQ(planner.name, "planner");
  EXPECT_EQ(planner.count, 3);
  EXPECT_DOUBLE_EQ(planner.latency_ms.mean, 200);
  EXPECT_DOUBLE_EQ(planner.latency_ms.p50, 200);  // rank ceil(1.5) = 2
  EXPECT_DOUBLE_EQ(planner.latency_ms.p99, 300);  // rank ceil(2.97) = 3
  EXPECT_DOUBLE_EQ(planner.ttft_ms.mean, 20);
  EXPECT_DOUBLE_EQ(planner.ttft_ms.p50, 20);
  EXPECT_DOUBLE_EQ(planner.ttft_ms.p99, 30);
  EXPECT_DOUBLE_EQ(planner.mean_queued_ms, 2);
  EXPECT_EQ(planner.prompt_tokens, 180);
  EXPECT_EQ(planner.cached_tokens, 60);
  EXPECT_EQ(planner.decode_tokens, 60);
  EXPECT_DOUBLE_EQ(planner.decode_tokens_per_s, 12);  // 60 / 5 s

  const StepSummary& executor = s.steps[1];  // latencies 400 500
  EXPECT_EQ(executor.name, "executor");
  EXPECT_EQ(executor.count, 2);
  EXPECT_DOUBLE_EQ(executor.latency_ms.mean, 450);
  EXPECT_DOUBLE_EQ(executor.latency_ms.p50, 400);  // rank ceil(1.0) = 1
  EXPECT_DOUBLE_EQ(executor.latency_ms.p99, 500);  // rank ceil(1.98) = 2
  EXPECT_DOUBLE_EQ(executor.ttft_ms.mean, 45);
  EXPECT_DOUBLE_EQ(executor.mean_queued_ms, 4.5);
  EXPECT_EQ(executor.prompt_tokens, 170);
  EXPECT_EQ(executor.cached_tokens, 10);
  EXPECT_EQ(executor.decode_tokens, 90);
  EXPECT_DOUBLE_EQ(executor.decode_tokens_per_s, 18);

  const StepSummary& all = s.overall;  // latencies 100 .. 500
  EXPECT_EQ(all.name, "all");
  EXPECT_EQ(all.count, 5);
  EXPECT_DOUBLE_EQ(all.latency_ms.mean, 300);
  EXPECT_DOUBLE_EQ(all.latency_ms.p50, 300);  // rank ceil(2.5) = 3
  EXPECT_DOUBLE_EQ(all.latency_ms.p99, 500);  // rank ceil(4.95) = 5
  EXPECT_DOUBLE_EQ(all.ttft_ms.mean, 30);
  EXPECT_DOUBLE_EQ(all.ttft_ms.p50, 30);
  EXPECT_DOUBLE_EQ(all.ttft_ms.p99, 50);
  EXPECT_DOUBLE_EQ(all.mean_queued_ms, 3);
  EXPECT_EQ(all.prompt_tokens, 350);
  EXPECT_EQ(all.cached_tokens, 70);
  EXPECT_EQ(all.decode_tokens, 150);
  EXPECT_DOUBLE_EQ(all.decode_tokens_per_s, 30);  // 150 / 5 s
}

TEST(Summarize, PhasesInPipelineOrderWithTotalsAndSlowestRank) {
  const Summary s = summarize(small_report());
  ASSERT_EQ(s.phases.size(), 4u);
  EXPECT_EQ(s.phases[0].phase, "world_init");
  EXPECT_EQ(s.phases[1].phase, "engine_preload");
  EXPECT_EQ(s.phases[1].ranks, 2);
  EXPECT_DOUBLE_EQ(s.phases[1].total_s, 5.0);
  EXPECT_DOUBLE_EQ(s.phases[1].max_rank_s, 3.0);
  EXPECT_EQ(s.phases[2].phase, "run");
  EXPECT_DOUBLE_EQ(s.phases[2].total_s, 8.5);
  EXPECT_DOUBLE_EQ(s.phases[2].max_rank_s, 4.5);
  EXPECT_EQ(s.phases[3].phase, "custom");  // unknown phases come last
  EXPECT_EQ(s.phases[3].ranks, 1);
  EXPECT_DOUBLE_EQ(s.phases[3].total_s, 1.0);  // two records on rank 0 add up
  EXPECT_DOUBLE_EQ(s.phases[3].max_rank_s, 1.0);
}

TEST(Summarize, FailedAndSkippedStepsAreCountedApartFromTheStatistics) {
  RunReport r = small_report();
  const Summary before = summarize(r);
  StepRecord bad;
  bad.name = "planner";
  bad.finish = "error";
  bad.error = "prompt too long";
  bad.latency_ms = 1e9;  // would dominate the mean if it were counted
  r.steps.push_back(bad);
  bad.finish = "skipped";
  bad.error = "uses planner, which failed";
  r.steps.push_back(bad);
  r.ranks.push_back({});
  r.ranks.back().status = "failed";
  r.ranks.back().host = "node-z";
  const Summary after = summarize(r);
  EXPECT_EQ(after.failed_steps, 2);
  EXPECT_EQ(after.overall.count, before.overall.count);
  EXPECT_DOUBLE_EQ(after.overall.latency_ms.mean, before.overall.latency_ms.mean);
  const std::string table = format_summary_table(after, r.attrs);
  EXPECT_NE(table.find("2 steps failed or were skipped"), std::string::npos) << table;
  EXPECT_NE(table.find("node-z"), std::string::npos) << table;
}

TEST(Summarize, EmptyReportIsAllZeros) {
  const Summary s = summarize(RunReport{});
  EXPECT_TRUE(s.steps.empty());
  EXPECT_TRUE(s.phases.empty());
  EXPECT_EQ(s.overall.count, 0);
  EXPECT_EQ(s.overall.latency_ms.p99, 0);
  EXPECT_EQ(s.overall.decode_tokens_per_s, 0);
  EXPECT_EQ(s.run_wall_s, 0);
}

TEST(SummaryTable, IsAlignedMarkdown) {
  RunAttributes attrs;
  attrs.flowrank_version = "0.1.0";
  attrs.job_name = "tiny";
  attrs.model = "dummy:smollm2-135m";
  attrs.device = "cpu";
  attrs.world_size = 2;
  attrs.started_at = "2026-11-28T18:00:00Z";
  const std::string table = format_summary_table(summarize(small_report()), attrs);
  const std::string expected_head =
      "flowrank 0.1.0 | job tiny | model dummy:smollm2-135m | device cpu | ranks 2 | started "
      "2026-11-28T18:00:00Z | workflows 2 | run 5.000 s\n\n";
  EXPECT_EQ(table.substr(0, expected_head.size()), expected_head);
  const std::string expected_steps =
      "| step     |   n | lat ms | lat p50 | lat p99 | ttft ms | ttft p50 | ttft p99 | queued ms | "
      "prompt tok | cached tok | decode tok | decode tok/s |\n"
      "| -------- | --: | -----: | ------: | ------: | ------: | -------: | -------: | --------: | "
      "---------: | ---------: | ---------: | -----------: |\n"
      "| planner  |   3 | 200.00 |  200.00 |  300.00 |   20.00 |    20.00 |    30.00 |      2.00 | "
      "       180 |         60 |         60 |        12.00 |\n"
      "| executor |   2 | 450.00 |  400.00 |  500.00 |   45.00 |    40.00 |    50.00 |      4.50 | "
      "       170 |         10 |         90 |        18.00 |\n"
      "| all      |   5 | 300.00 |  300.00 |  500.00 |   30.00 |    30.00 |    50.00 |      3.00 | "
      "       350 |         70 |        150 |        30.00 |\n"
      "\n";
  const std::string expected_phases =
      "| phase          | ranks | total s | max rank s |\n"
      "| -------------- | ----: | ------: | ---------: |\n"
      "| world_init     |     1 |   0.250 |      0.250 |\n"
      "| engine_preload |     2 |   5.000 |      3.000 |\n"
      "| run            |     2 |   8.500 |      4.500 |\n"
      "| custom         |     1 |   1.000 |      1.000 |\n";
  EXPECT_EQ(table.substr(expected_head.size()), expected_steps + expected_phases);
}

TEST(SummaryJson, CarriesTheSameFigures) {
  RunAttributes attrs;
  attrs.job_name = "tiny";
  attrs.extra["flow_cache"] = "hit";
  const nlohmann::json j = summary_json(summarize(small_report()), attrs);
  EXPECT_EQ(j["run"]["job_name"], "tiny");
  EXPECT_EQ(j["run"]["extra"]["flow_cache"], "hit");
  EXPECT_EQ(j["steps"][0]["name"], "planner");
  EXPECT_EQ(j["steps"][1]["latency_ms"]["p50"], 400.0);
  EXPECT_EQ(j["overall"]["decode_tokens"], 150);
  EXPECT_EQ(j["overall"]["decode_tokens_per_s"], 30.0);
  EXPECT_EQ(j["phases"][1]["max_rank_s"], 3.0);
  EXPECT_EQ(j["run_wall_s"], 5.0);
  EXPECT_EQ(nlohmann::json::parse(format_summary_json(summarize(small_report()), attrs)), j);
}

}  // namespace
}  // namespace flowrank::report

namespace flowrank::report {
namespace {

// With /energy the summary adds energy by phase and step and tokens per joule; without it, no
// energy figure at all (absent, not zero).
TEST(SummaryEnergy, PresentOnlyWhenMeasured) {
  RunReport r;
  r.phases = {{0, "engine_preload", 0.0, 2.0}, {0, "run", 2.0, 4.0}};
  StepRecord a = step("planner", 0, 1000, 10, 0, 300, 0, 100);
  a.workflow = 0;
  StepRecord b = step("executor", 1, 1000, 10, 0, 500, 0, 100);
  b.workflow = 0;
  r.steps = {a, b};
  const std::string plain = format_summary_table(summarize(r), r.attrs);
  EXPECT_EQ(plain.find("energy"), std::string::npos);
  EXPECT_FALSE(summary_json(summarize(r), r.attrs).contains("energy"));

  EnergyReport e;
  e.source = "nvml: test GPU";
  e.samples = {{0, 100}, {6, 100}};
  e.phases = {{0, "engine_preload", 0.0, 2.0, 200.0, 100.0}, {0, "run", 2.0, 4.0, 400.0, 100.0}};
  e.steps = {{0, 0, 0, 150.0, 100.0}, {0, 0, 1, 250.0, 100.0}};
  r.energy = e;
  const Summary s = summarize(r);
  ASSERT_TRUE(s.energy.has_value());
  EXPECT_DOUBLE_EQ(s.energy->run_energy_j, 400.0);
  EXPECT_DOUBLE_EQ(s.energy->tokens_per_j, 1000.0 / 400.0);
  ASSERT_EQ(s.step_energy.size(), 3u);  // planner, executor, all
  EXPECT_EQ(s.step_energy[2].name, "all");
  EXPECT_DOUBLE_EQ(s.step_energy[0].energy_j, 150.0);
  EXPECT_DOUBLE_EQ(s.step_energy[0].tokens_per_j, 400.0 / 150.0);
  EXPECT_DOUBLE_EQ(s.step_energy[2].energy_j, 400.0);
  ASSERT_EQ(s.phase_energy.size(), 2u);
  EXPECT_DOUBLE_EQ(s.phase_energy[0].mean_power_w, 100.0);

  const std::string table = format_summary_table(s, r.attrs);
  EXPECT_NE(table.find("energy (nvml: test GPU): run 400.0 J at 100.0 W mean, 2.500 tokens/J"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| planner  |    150.0 |    2.667 |"), std::string::npos) << table;
  const nlohmann::json j = summary_json(s, r.attrs);
  EXPECT_EQ(j["energy"]["run_energy_j"], 400.0);
  EXPECT_EQ(j["energy"]["steps"][1]["name"], "executor");
}

// Two ranks, only rank 0 measured: energies are rank 0's, tokens per joule counts rank 0's steps
// that ran in this run, a phase's mean power divides by the measured rank's time alone; and the
// power readings are integrated per board (rank 1's samples are another board's).
TEST(SummaryEnergy, OnlyTheRanksThatMeasuredCount) {
  RunReport r;
  // The gather comes after the sampling ended: no energy row, rather than a row of zeros.
  r.phases = {{0, "run", 0.0, 4.0}, {1, "run", 0.0, 4.0}, {0, "gather", 4.0, 0.1}};
  StepRecord a = step("planner", 0, 1000, 10, 0, 300, 0, 100);
  StepRecord b = step("planner", 0, 3000, 30, 0, 600, 0, 200);
  b.rank = 1;
  b.workflow = 1;
  // Resumed from an earlier run on rank 0: no share of this run's energy, so no tokens either.
  StepRecord resumed = step("planner", 0, 900, 9, 0, 5000, 0, 500);
  resumed.workflow = 2;
  r.steps = {a, b, resumed};
  EnergyReport e;
  e.samples = {{0, 100}, {4, 100}};  // rank 0's board at 100 W
  e.phases = {{0, "run", 0.0, 4.0, 400.0, 100.0}};
  e.steps = {{0, 0, 0, 400.0, 100.0}};
  r.energy = e;
  Summary s = summarize(r);
  ASSERT_TRUE(s.energy.has_value());
  EXPECT_DOUBLE_EQ(s.energy->run_energy_j, 400.0);
  EXPECT_DOUBLE_EQ(s.energy->run_mean_power_w, 100.0);
  EXPECT_DOUBLE_EQ(s.energy->tokens_per_j, 400.0 / 400.0);  // not (400 + 800) / 400
  ASSERT_EQ(s.phase_energy.size(), 1u);
  EXPECT_EQ(s.phase_energy[0].name, "run");
  EXPECT_DOUBLE_EQ(s.phase_energy[0].mean_power_w, 100.0);  // not 400 J / 8 s
  ASSERT_EQ(s.step_energy.size(), 2u);                      // planner, all
  EXPECT_DOUBLE_EQ(s.step_energy[0].tokens_per_j, 400.0 / 400.0);

  // Rank 1 measured too, at 300 W on its own board: the sums cover both boards, and the check
  // from power readings integrates each board's samples alone.
  r.energy->samples.push_back({0, 300, std::numeric_limits<double>::quiet_NaN(), 1});
  r.energy->samples.push_back({4, 300, std::numeric_limits<double>::quiet_NaN(), 1});
  r.energy->phases.push_back({1, "run", 0.0, 4.0, 1200.0, 300.0});
  r.energy->steps.push_back({1, 1, 0, 1200.0, 300.0});
  s = summarize(r);
  EXPECT_DOUBLE_EQ(s.energy->run_energy_j, 1600.0);
  EXPECT_DOUBLE_EQ(s.energy->run_energy_from_power_j, 1600.0);
  EXPECT_DOUBLE_EQ(s.energy->run_mean_power_w, 200.0);  // per board
  EXPECT_DOUBLE_EQ(s.energy->tokens_per_j, 1200.0 / 1600.0);
}

}  // namespace
}  // namespace flowrank::report
