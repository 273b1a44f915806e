#include <gtest/gtest.h>

#include "flowrank/report/summary.hpp"

namespace flowrank::report {
namespace {

StepRecord step(int32_t wf, int32_t index, const char* name, double latency, int32_t prompt,
                int32_t cached, int32_t decode, const char* hash) {
  StepRecord s;
  s.workflow = wf;
  s.step = index;
  s.name = name;
  s.latency_ms = latency;
  s.prompt_tokens = prompt;
  s.cached_tokens = cached;
  s.decode_tokens = decode;
  s.output_sha256_8 = hash;
  return s;
}

TEST(SeedLog, PrintsTheHarnessLinesInItsOrder) {
  RunReport r;
  r.attrs.extra = {{"flow_cache", "miss"}, {"fixture_bytes", "115185"}, {"fixture_files", "40"}};
  r.phases = {{0, "flow_expand", 0.0, 0.0123},
              {0, "engine_preload", 0.1, 1.5},
              {1, "engine_preload", 0.1, 2.25},
              {0, "run", 3.0, 10.0},
              {1, "run", 3.5, 10.0}};
  // Out of order on purpose: lines come sorted by workflow, then step index.
  r.steps = {step(1, 1, "executor", 250.0, 1200, 900, 384, "12345678"),
             step(1, 0, "planner", 99.994, 900, 100, 64, "0badf00d"),
             step(0, 0, "planner", 1234.5678, 1000, 0, 128, "deadbeef")};
  r.workflows = {{1, 1, 3.5, 5.75, 2}, {0, 0, 3.0, 4.5, 1}};
  const std::string expected =
      "[INPUT] fixture_bytes=115185 fixture_files=40\n"
      "[TIMING] flow_expansion_ms=12.30 (generated)\n"
      "[TIMING] engine_init_ms=2250.00\n"
      "[TARGET] flow=0 step=planner latency_ms=1234.57 prompt_tokens=1000 decode_tokens=128 "
      "prefill_tokens=1000 reused_tokens=0 local_out_hash=deadbeef\n"
      "[TIMING] workflow_0_ms=1500.00\n"
      "[TARGET] flow=1 step=planner latency_ms=99.99 prompt_tokens=900 decode_tokens=64 "
      "prefill_tokens=800 reused_tokens=100 local_out_hash=0badf00d\n"
      "[TARGET] flow=1 step=executor latency_ms=250.00 prompt_tokens=1200 decode_tokens=384 "
      "prefill_tokens=300 reused_tokens=900 local_out_hash=12345678\n"
      "[TIMING] workflow_1_ms=2250.00\n"
      "[TIMING] benchmark_total_ms=10500.00\n"
      "[TIMING] avg_workflow_ms=1875.00\n";
  EXPECT_EQ(format_seed_log(r), expected);
}

TEST(SeedLog, CacheHitAndMissingRecords) {
  RunReport r;
  r.attrs.extra = {{"flow_cache", "hit"}};        // no fixture figures: no [INPUT] line
  r.phases = {{0, "flow_expand", 0.0, 0.00025}};  // no engine_preload, no run phase
  r.steps = {step(4, 0, "planner", 10.0, 20, 0, 5, "aaaaaaaa")};
  r.workflows = {{0, 4, 2.0, 2.5, 1}, {0, 7, 1.0, 2.25, 0}};
  const std::string expected =
      "[TIMING] flow_expansion_ms=0.25 (cached)\n"
      "[TARGET] flow=4 step=planner latency_ms=10.00 prompt_tokens=20 decode_tokens=5 "
      "prefill_tokens=20 reused_tokens=0 local_out_hash=aaaaaaaa\n"
      "[TIMING] workflow_4_ms=500.00\n"
      "[TIMING] workflow_7_ms=1250.00\n"
      "[TIMING] benchmark_total_ms=1500.00\n"  // workflows span 1.0 .. 2.5 s
      "[TIMING] avg_workflow_ms=875.00\n";
  EXPECT_EQ(format_seed_log(r), expected);
}

TEST(SeedLog, ExpansionWithoutCacheCountsAsGenerated) {
  RunReport r;
  r.attrs.extra = {{"flow_cache", "off"}};
  r.phases = {{0, "flow_expand", 0.0, 1.5}};
  EXPECT_EQ(format_seed_log(r), "[TIMING] flow_expansion_ms=1500.00 (generated)\n");
  r.attrs.extra.clear();  // unknown cache state: no suffix rather than a guess
  EXPECT_EQ(format_seed_log(r), "[TIMING] flow_expansion_ms=1500.00\n");
}

TEST(SeedLog, EmptyReportPrintsNothing) {
  EXPECT_EQ(format_seed_log(RunReport{}), "");
}

}  // namespace
}  // namespace flowrank::report
