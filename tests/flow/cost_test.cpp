#include "flowrank/flow/cost.hpp"

#include <gtest/gtest.h>

#include "flowrank/flow/flow_cache.hpp"

namespace flowrank::flow {
namespace {

// Two workflows of a planner (max 10) and an executor using it (max 20); fixture text of 4000
// bytes; tasks of different lengths.
ExpandedJob small_job(PromptLayout layout) {
  ExpandedJob job;
  job.job_name = "j";
  job.layout = layout;
  job.input = "Review.";
  job.fixture_text = std::string(4000, 'x');
  for (int32_t i = 0; i < 2; ++i) {
    Workflow wf;
    wf.index = i;
    wf.task = std::string(i == 0 ? 40 : 400, 't');
    StepSpec plan;
    plan.name = "planner";
    plan.instruction = "Plan.";
    plan.sampling.max_tokens = 10;
    StepSpec exec;
    exec.name = "executor";
    exec.instruction = "Act.";
    exec.uses = {0};
    exec.sampling.max_tokens = 20;
    wf.steps = {plan, exec};
    job.workflows.push_back(wf);
  }
  return job;
}

int64_t tokens(std::size_t bytes) {
  return static_cast<int64_t>((bytes + 3) / 4);
}

TEST(EstimateCosts, SeedLayoutCountsWholePromptsPlusMaxTokensAlongTheChain) {
  const ExpandedJob job = small_job(PromptLayout::kSeed);
  const auto costs = estimate_costs(job);
  ASSERT_EQ(costs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const Workflow& wf = job.workflows[i];
    const std::vector<std::optional<std::string>> outs(2, std::string());
    const int64_t expected = tokens(step_prompt(job, wf, 0, outs).size()) +
                             tokens(step_prompt(job, wf, 1, outs).size()) + 10 + 10 + 20;
    EXPECT_EQ(costs[i].own_tokens, expected) << i;
    EXPECT_EQ(costs[i].shared_prefix_tokens, 0);
  }
  EXPECT_GT(costs[1].own_tokens, costs[0].own_tokens);  // the longer task
}

TEST(EstimateCosts, ContextFirstSharesTheFixturePrefix) {
  const ExpandedJob job = small_job(PromptLayout::kContextFirst);
  const auto costs = estimate_costs(job);
  EXPECT_EQ(costs[0].shared_prefix_tokens, 1000);
  const ExpandedJob seed = small_job(PromptLayout::kSeed);
  // Both steps' copies of the 1000-token fixture text leave the per-workflow cost.
  EXPECT_LT(costs[0].own_tokens, estimate_costs(seed)[0].own_tokens - 1900);
}

TEST(CacheEntry, BytesRoundTripAndEveryCorruptionIsCaught) {
  const ExpandedJob job = small_job(PromptLayout::kContextFirst);
  const std::string bytes = encode_cache_entry(job);
  const ExpandedJob back = decode_cache_entry(std::string(bytes));
  EXPECT_EQ(back.fixture_text, job.fixture_text);
  ASSERT_EQ(back.workflows.size(), 2u);
  EXPECT_EQ(back.workflows[1].task, job.workflows[1].task);
  EXPECT_EQ(back.workflows[1].steps[1].uses, std::vector<int32_t>{0});
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 1;
  try {
    decode_cache_entry(std::move(flipped));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "checksum mismatch");
  }
  EXPECT_THROW(decode_cache_entry(bytes.substr(0, bytes.size() - 1)), std::runtime_error);
  EXPECT_THROW(decode_cache_entry(std::string()), std::runtime_error);
}

}  // namespace
}  // namespace flowrank::flow
