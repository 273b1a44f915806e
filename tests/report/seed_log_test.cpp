#include "flowrank/report/seed_log.hpp"

#include <gtest/gtest.h>

#include <regex>

#include "report_test_support.hpp"

namespace flowrank::report {
namespace {

StepRecord step(int32_t wf, int32_t index, const char* name, double latency, int32_t prompt,
                int32_t cached, int32_t decode) {
  StepRecord s;
  s.workflow = wf;
  s.step = index;
  s.name = name;
  s.latency_ms = latency;
  s.prompt_tokens = prompt;
  s.cached_tokens = cached;
  s.decode_tokens = decode;
  s.output_sha256_8 = "deadbeef";
  return s;
}

std::string joined(const std::vector<SeedLine>& lines, bool to_stdout) {
  std::string out;
  for (const SeedLine& l : lines)
    if (l.to_stdout == to_stdout) out += l.text;
  return out;
}

RunReport two_workflows() {
  RunReport r;
  r.attrs.extra = {{"flow_cache", "miss"},
                   {"fixture_bytes", "115185"},
                   {"fixture_files", "40"},
                   {"workflows", "2"}};
  r.phases = {
      {0, "flow_expand", 0.0, 0.0123}, {0, "engine_preload", 0.5, 1.5}, {0, "run", 2.0, 10.0}};
  // Out of order on purpose: lines come sorted by workflow, then step index.
  r.steps = {step(1, 1, "executor", 250.0, 1200, 900, 384),
             step(1, 0, "planner", 99.994, 900, 100, 64),
             step(0, 0, "planner", 1234.5678, 1000, 0, 128)};
  r.workflows = {{0, 1, 3.5, 5.75, 2}, {0, 0, 3.0, 4.5, 1}};
  return r;
}

TEST(SeedLog, TheHarnessLinesOnItsStreams) {
  const std::vector<SeedLine> lines = seed_log_lines(two_workflows());
  EXPECT_EQ(joined(lines, true),
            "[INPUT] fixture_bytes=115185 fixture_files=40\n"
            "[INPUT] fixture_bytes=115185 fixture_files=40\n");
  EXPECT_EQ(joined(lines, false),
            "[TIMING] flow_expansion_ms=12.30 (generated)\n"
            "[TIMING] engine_init_start\n"
            "[TIMING] engine_init_ms=1500.00\n"
            "[TARGET] flow=1 step=planner latency_ms=1234.57 prompt_tokens=1000 decode_tokens=128 "
            "prefill_tokens=1000 reused_tokens=0\n"
            "[TIMING] workflow_1_ms=1500.00\n"
            "[TARGET] flow=2 step=planner latency_ms=99.99 prompt_tokens=900 decode_tokens=64 "
            "prefill_tokens=800 reused_tokens=100\n"
            "[TARGET] flow=2 step=executor latency_ms=250.00 prompt_tokens=1200 decode_tokens=384 "
            "prefill_tokens=300 reused_tokens=900\n"
            "[TIMING] workflow_2_ms=2250.00\n"
            "[TIMING] benchmark_total_ms=11500.00\n"  // engine start (0.5 s) to run end (12 s)
            "[TIMING] avg_workflow_ms=1875.00\n");
}

// A failed step and the step skipped after it print no [TARGET] line (no latency to report);
// their workflow, which never finished, no [TIMING] line.
TEST(SeedLog, FailedAndSkippedStepsPrintNoTargetLine) {
  RunReport r = two_workflows();
  testing_support::add_failed_workflow(r, 0, 2);
  const std::string err = joined(seed_log_lines(r), false);
  EXPECT_EQ(err, joined(seed_log_lines(two_workflows()), false));
  EXPECT_EQ(err.find("flow=3"), std::string::npos);
}

// The patterns the harness's run.sh matched [TARGET] lines with: at fa357ea, and from e190800
// on with optional power_w and energy_j (written here from the documented format).
TEST(SeedLog, RunShPatternsParseTheTargetLines) {
  RunReport r = two_workflows();
  const std::regex fa357ea(
      R"(\[TARGET\] flow=\d+ step=\S+ latency_ms=([0-9.]+) prompt_tokens=([0-9]+) )"
      R"(decode_tokens=([0-9]+) prefill_tokens=([0-9]+) reused_tokens=([0-9]+))");
  const std::regex e190800(
      R"(\[TARGET\] flow=\d+ step=\S+ latency_ms=([0-9.]+) prompt_tokens=([0-9]+) )"
      R"(decode_tokens=([0-9]+) prefill_tokens=([0-9]+) reused_tokens=([0-9]+))"
      R"((?:\s+power_w=([0-9.]+))?(?:\s+energy_j=([0-9.]+))?)");
  EnergyReport e;
  e.samples = {{0, 100}};
  e.steps = {{0, 1, 1, 52.5, 210.126}};
  r.energy = e;
  int matched = 0, with_energy = 0;
  long prompt_sum = 0;
  for (const SeedLine& l : seed_log_lines(r)) {
    if (l.text.rfind("[TARGET]", 0) != 0) continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(l.text, m, fa357ea)) << l.text;
    prompt_sum += std::stol(m[2]);
    ASSERT_TRUE(std::regex_search(l.text, m, e190800)) << l.text;
    if (m[7].matched) {
      ++with_energy;
      EXPECT_EQ(m[6], "210.13");
      EXPECT_EQ(m[7], "52.50");
    }
    ++matched;
  }
  EXPECT_EQ(matched, 3);
  EXPECT_EQ(with_energy, 1);  // only the step with a measured share
  EXPECT_EQ(prompt_sum, 1000 + 900 + 1200);
}

TEST(SeedLog, CacheHitAndMissingRecords) {
  RunReport r;
  r.attrs.extra = {{"flow_cache", "hit"}};        // no fixture figures: no [INPUT] line
  r.phases = {{0, "flow_expand", 0.0, 0.00025}};  // no engine_preload, no run phase
  r.steps = {step(4, 0, "planner", 10.0, 20, 0, 5)};
  r.workflows = {{0, 4, 2.0, 2.5, 1}, {0, 7, 1.0, 2.25, 0}};
  const std::vector<SeedLine> lines = seed_log_lines(r);
  EXPECT_EQ(joined(lines, true), "");
  EXPECT_EQ(joined(lines, false),
            "[TIMING] flow_expansion_ms=0.25 (cached)\n"
            "[TARGET] flow=5 step=planner latency_ms=10.00 prompt_tokens=20 decode_tokens=5 "
            "prefill_tokens=20 reused_tokens=0\n"
            "[TIMING] workflow_5_ms=500.00\n"
            "[TIMING] workflow_8_ms=1250.00\n"
            "[TIMING] benchmark_total_ms=1500.00\n"  // workflows span 1.0 .. 2.5 s
            "[TIMING] avg_workflow_ms=875.00\n");
}

TEST(SeedLog, ExpansionWithoutCacheCountsAsGenerated) {
  RunReport r;
  r.attrs.extra = {{"flow_cache", "off"}, {"fixture_bytes", "9"}, {"fixture_files", "1"}};
  r.phases = {{0, "flow_expand", 0.0, 1.5}};
  std::vector<SeedLine> lines = seed_log_lines(r);
  EXPECT_EQ(joined(lines, false), "[TIMING] flow_expansion_ms=1500.00 (generated)\n");
  EXPECT_EQ(joined(lines, true),
            "[INPUT] fixture_bytes=9 fixture_files=1\n");  // one without a count
  r.attrs.extra = {{"flow_cache", "?"}};  // unknown cache state: no suffix rather than a guess
  EXPECT_EQ(joined(seed_log_lines(r), false), "[TIMING] flow_expansion_ms=1500.00\n");
}

TEST(SeedLog, EmptyReportPrintsNothing) {
  EXPECT_TRUE(seed_log_lines(RunReport{}).empty());
}

}  // namespace
}  // namespace flowrank::report
