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

// The harness at fa357ea leaves out "Instruction: " when the instruction is empty.
TEST_F(StepPromptTest, SeedLayoutWithoutInstruction) {
  job.layout = PromptLayout::kSeed;
  job.workflows[1].steps[0].instruction = "";
  EXPECT_EQ(step_prompt(job, job.workflows[1], 0, {}),
            "Input: TASK\n\nIN\n\n===== FILE: a =====\nA\n");
}

// The harness's latest chained runner (agent_driver.build_step_prompt_baseline +
// target_vllm.ensure_bounded_prompt), written out by hand: parts joined by "\n", workflow
// numbered from 1, names title-cased, earlier outputs cut at 1,500 characters.
TEST_F(StepPromptTest, SeedChainedLayout) {
  job.layout = PromptLayout::kSeedChained;
  job.fixture_text = "### Snippet: a (lines [1, 1])\n```\nA\n```\n";
  const std::string head =
      "## Task 2: TASK\n\nIN\n\n## Retrieved Code Snippets\n\n"
      "### Snippet: a (lines [1, 1])\n```\nA\n```\n";
  Workflow& wf = job.workflows[1];
  EXPECT_EQ(step_prompt(job, wf, 0, {}), head + "\n\n## Your Task: Planner\nPlan.");

  // With a stop string the prompt must demand it, after trailing whitespace is stripped as
  // Python's str.rstrip() does (ASCII and Unicode spaces).
  wf.steps[2].sampling.stop = {"<END>"};
  wf.steps[2].instruction = "Check. \t\u3000\u00a0\n";
  const std::string long_output = [] {
    std::string s;
    for (int i = 0; i < 1501; ++i) s += "\xc3\xa9";  // 1,501 two-byte characters
    return s;
  }();
  const std::vector<std::optional<std::string>> outs{std::string("P\xffOUT"), long_output,
                                                     std::nullopt};
  std::string cut;
  for (int i = 0; i < 1500; ++i) cut += "\xc3\xa9";
  EXPECT_EQ(step_prompt(job, wf, 2, outs),
            head +
                "\n\n## Previous Analysis\n\n### Planner Output\nP\xef\xbf\xbdOUT\n\n"
                "### Executor Output\n" +
                cut +
                "...\n\n\n## Your Task: Verifier\nCheck.\n\nOutput must be concise and MUST end "
                "with <END>.\n");
  // An output of exactly 1,500 characters is not cut.
  const std::vector<std::optional<std::string>> exact{std::string("P"), cut, std::nullopt};
  EXPECT_NE(step_prompt(job, wf, 2, exact).find(cut + "\n\n\n## Your Task"), std::string::npos);

  // A prompt that already names the marker gets no extra line (the harness checks the whole
  // prompt); Python's title() upper-cases after every non-letter.
  wf.steps[2].instruction = "Check; end with <END>.";
  wf.steps[2].name = "final_check2x";
  EXPECT_EQ(step_prompt(job, wf, 2, exact).substr(step_prompt(job, wf, 2, exact).rfind("\n\n## ")),
            "\n\n## Your Task: Final_Check2X\nCheck; end with <END>.");
}

// End to end through expansion: fixture files become snippets of whole files.
TEST(PinnedPrompt, SeedChainedLayoutFromFiles) {
  TempDir d;
  write(d / "fx/sub/b.py", "def b():\r\n    return 2\r\n");
  write(d / "fx/a.md", "alpha");
  write(d / "flow.json",
        R"({"input": "", "steps": [{"name": "planner", "instruction": "Plan."}]})");
  write(d / "suite.json", R"(["Check the scorer."])");
  write(d / "j.toml",
        "name = \"pin\"\nflow = \"flow.json\"\nfixtures = \"fx\"\n"
        "suite = \"suite.json\"\nworkflows = 1\nlayout = \"seed-chained\"\n"
        "[sampling]\nstop = [\"<END>\"]\n");
  const ExpandedJob job = expand_job(load_job(d / "j.toml"), nullptr).job;
  EXPECT_EQ(step_prompt(job, job.workflows[0], 0, {}),
            "## Task 1: Check the scorer.\n"
            "\n"
            "## Retrieved Code Snippets\n"
            "\n"
            "### Snippet: a.md (lines [1, 1])\n"
            "```\n"
            "alpha\n"
            "```\n"
            "\n"
            "### Snippet: sub/b.py (lines [1, 3])\n"
            "```\n"
            "def b():\n"
            "    return 2\n"
            "\n"
            "```\n"
            "\n"
            "\n"
            "## Your Task: Planner\n"
            "Plan.\n"
            "\n"
            "Output must be concise and MUST end with <END>.\n");
}

TEST_F(StepPromptTest, UsedOutputMustBeSet) {
  const std::vector<std::optional<std::string>> missing{"P-OUT", std::nullopt};
  EXPECT_THROW(step_prompt(job, job.workflows[0], 2, missing), std::logic_error);
  EXPECT_THROW(step_prompt(job, job.workflows[0], 1, {}), std::logic_error);
  EXPECT_THROW(step_prompt(job, job.workflows[0], 3, outputs), std::logic_error);
}

}  // namespace
}  // namespace flowrank::flow
