#include <gtest/gtest.h>

#include "flow_test_support.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow {
namespace {
using namespace testing;

// Pinned: the seed harness's prompt (WORKLOAD.md), written out by hand. Files are created in
// unsorted order, one in a subdirectory; the fixture text must list them sorted.
TEST(PinnedPrompt, SeedLayoutWorkflow0Step0) {
  TempDir d;
  write(d / "fx/sub/b.txt", "beta");
  write(d / "fx/a.txt", "alpha\n");
  write(d / "flow.json", R"({"name": "t", "input": "Review the code below.", "steps": [
      {"name": "planner", "instruction": "Plan the review."},
      {"name": "executor", "instruction": "Carry out the plan.", "uses": ["planner"]}]})");
  write(d / "suite.json",
        R"({"name": "s", "tasks": [{"id": "scoring", "prompt": "Check the scorer."},
      {"id": "routing", "prompt": "Check routing."}]})");
  write(d / "j.toml",
        "name = \"pin\"\nflow = \"flow.json\"\nfixtures = \"fx\"\n"
        "suite = \"suite.json\"\nworkflows = 2\nlayout = \"seed\"\n");
  const ExpandedJob job = expand_job(load_job(d / "j.toml"), nullptr).job;
  const std::string expected =
      "Instruction: Plan the review.\n"
      "\n"
      "Input: Check the scorer.\n"
      "\n"
      "Review the code below.\n"
      "\n"
      "===== FILE: a.txt =====\n"
      "alpha\n"
      "\n"
      "\n"
      "===== FILE: sub/b.txt =====\n"
      "beta\n";
  EXPECT_EQ(step_prompt(job, job.workflows[0], 0, {}), expected);
}

class StepPromptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    job.job_name = "j";
    job.input = "IN";
    job.fixture_text = "===== FILE: a =====\nA\n";
    Workflow wf;
    wf.index = 1;
    wf.task = "TASK";
    wf.steps = {{"planner", "Plan.", {}, {}},
                {"executor", "Do.", {0}, {}},
                {"verifier", "Check.", {0, 1}, {}}};
    job.workflows = {wf, wf};
  }
  ExpandedJob job;
  const std::vector<std::optional<std::string>> outputs{"P-OUT", "E-OUT", std::nullopt};
};

TEST_F(StepPromptTest, SeedLayout) {
  job.layout = PromptLayout::kSeed;
  const Workflow& wf = job.workflows[1];
  EXPECT_EQ(step_prompt(job, wf, 0, {}),
            "Instruction: Plan.\n\nInput: TASK\n\nIN\n\n===== FILE: a =====\nA\n");
  EXPECT_EQ(step_prompt(job, wf, 2, outputs),
            "Instruction: Check.\n\nInput: TASK\n\nIN\n\n===== FILE: a =====\nA\n"
            "\n\n### Planner Output\nP-OUT"
            "\n\n### Executor Output\nE-OUT");
}

TEST_F(StepPromptTest, ContextFirstLayout) {
  job.layout = PromptLayout::kContextFirst;
  const Workflow& wf = job.workflows[1];
  EXPECT_EQ(step_prompt(job, wf, 0, {}),
            "===== FILE: a =====\nA\n\n\nTask: TASK\n\nIN\n\nInstruction: Plan.\n");
  EXPECT_EQ(step_prompt(job, wf, 1, outputs),
            "===== FILE: a =====\nA\n\n\nTask: TASK\n\nIN"
            "\n\n### Planner Output\nP-OUT"
            "\n\nInstruction: Do.\n");
}

TEST_F(StepPromptTest, UsedOutputMustBeSet) {
  const std::vector<std::optional<std::string>> missing{"P-OUT", std::nullopt};
  EXPECT_THROW(step_prompt(job, job.workflows[0], 2, missing), std::logic_error);
  EXPECT_THROW(step_prompt(job, job.workflows[0], 1, {}), std::logic_error);
  EXPECT_THROW(step_prompt(job, job.workflows[0], 3, outputs), std::logic_error);
}

}  // namespace
}  // namespace flowrank::flow
