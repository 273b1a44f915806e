#include <gtest/gtest.h>

#include "flow_test_support.hpp"
#include "flowrank/flow/flow_template.hpp"
#include "flowrank/flow/suite.hpp"

namespace flowrank::flow {
namespace {
using namespace testing;

const char* kThreeSteps = R"({
  "name": "review-3step",
  "input": "Review it.",
  "steps": [
    {"name": "planner", "instruction": "Plan.", "sampling": {"max_tokens": 128}},
    {"name": "executor", "instruction": "Do.", "uses": ["planner"]},
    {"name": "verifier", "instruction": "Check.", "uses": ["planner", "executor"],
     "sampling": {"max_tokens": 160, "stop": ["<END>"], "temperature": 0.25, "seed": 7}}
  ]
})";

TEST(FlowTemplateTest, Loads) {
  TempDir d;
  write(d / "t.json", kThreeSteps);
  const FlowTemplate t = load_flow_template(d / "t.json");
  EXPECT_EQ(t.name, "review-3step");
  EXPECT_EQ(t.input, "Review it.");
  ASSERT_EQ(t.steps.size(), 3u);
  EXPECT_EQ(t.steps[0].name, "planner");
  EXPECT_EQ(t.steps[0].instruction, "Plan.");
  EXPECT_TRUE(t.steps[0].uses.empty());
  EXPECT_EQ(*t.steps[0].sampling.max_tokens, 128);
  EXPECT_EQ(t.steps[1].uses, std::vector<int32_t>{0});
  EXPECT_EQ(t.steps[2].uses, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(*t.steps[2].sampling.stop, std::vector<std::string>{"<END>"});
  EXPECT_FLOAT_EQ(*t.steps[2].sampling.temperature, 0.25f);
  EXPECT_EQ(*t.steps[2].sampling.seed, 7u);
  EXPECT_FALSE(t.steps[1].sampling.max_tokens.has_value());
}

TEST(FlowTemplateTest, CanonicalBytesIgnoreFormattingNotContent) {
  TempDir d;
  write(d / "a.json", R"({"name":"n","steps":[{"instruction":"I","name":"s"}],"input":"x"})");
  write(d / "b.json",
        "{\n  \"input\" : \"x\",\n  \"name\": \"n\",\n  \"steps\": [ {\"name\": \"s\", "
        "\"instruction\": \"I\"} ]\n}\n");
  write(d / "c.json", R"({"name":"n","steps":[{"instruction":"I!","name":"s"}],"input":"x"})");
  const auto a = load_flow_template(d / "a.json").canonical;
  EXPECT_EQ(a, R"({"input":"x","name":"n","steps":[{"instruction":"I","name":"s"}]})");
  EXPECT_EQ(load_flow_template(d / "b.json").canonical, a);
  EXPECT_NE(load_flow_template(d / "c.json").canonical, a);
}

TEST(FlowTemplateTest, BadInputs) {
  struct Case {
    const char* label;
    std::string json;
    std::vector<std::string> needles;
  };
  const std::string ok_steps = R"("steps": [{"name": "a", "instruction": "A"}])";
  const std::vector<Case> cases = {
      {"invalid json", R"({"name": "x", )", {"invalid JSON", "parse error"}},
      {"not an object", "[1]", {"must be a JSON object"}},
      {"unknown key",
       R"({"name": "x", "input": "", "colour": 1, )" + ok_steps + "}",
       {"unknown key 'colour'"}},
      // Without a name, only the harness's shape (steps of name + instruction) is accepted.
      {"missing name",
       R"({"input": "", "steps": [{"name": "a", "instruction": "A", "uses": []}]})",
       {"missing required key 'name'"}},
      {"missing name, unknown top-level key",
       R"({"input": "", "colour": 1, )" + ok_steps + "}",
       {"unknown key 'colour'"}},
      {"missing input", R"({"name": "x", )" + ok_steps + "}", {"missing required key 'input'"}},
      {"missing steps", R"({"name": "x", "input": ""})", {"missing required key 'steps'"}},
      {"empty steps", R"({"name": "x", "input": "", "steps": []})", {"steps", "non-empty"}},
      {"missing instruction",
       R"({"name": "x", "input": "", "steps": [{"name": "a"}]})",
       {"step 'a'", "missing required key 'instruction'"}},
      {"missing step name",
       R"({"name": "x", "input": "", "steps": [{"instruction": "A"}]})",
       {"step 0", "missing required key 'name'"}},
      {"duplicate step",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A"},
          {"name": "a", "instruction": "B"}]})",
       {"step 'a'", "duplicate step name"}},
      {"uses unknown",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A", "uses": ["zz"]}]})",
       {"step 'a'", "'zz'", "unknown step"}},
      {"uses later",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A", "uses": ["b"]},
          {"name": "b", "instruction": "B"}]})",
       {"step 'a'", "'b'", "later step"}},
      {"uses itself",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A", "uses": ["a"]}]})",
       {"step 'a'", "uses itself"}},
      {"duplicate key",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A", "name": "b"}]})",
       {"duplicate key 'name'"}},
      {"unknown step key",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A", "prompt": "p"}]})",
       {"step 'a'", "unknown key 'prompt'"}},
      {"unknown sampling key",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A",
          "sampling": {"topp": 0.5}}]})",
       {"step 'a'", "sampling", "unknown key 'topp'"}},
      {"sampling range",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A",
          "sampling": {"max_tokens": 0}}]})",
       {"step 'a'", "max_tokens"}},
      {"sampling type",
       R"({"name": "x", "input": "", "steps": [{"name": "a", "instruction": "A",
          "sampling": {"max_tokens": "many"}}]})",
       {"step 'a'", "max_tokens", "must be an integer"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir d;
    const fs::path p = d / "flow.json";
    write(p, c.json);
    std::vector<std::string> needles = c.needles;
    try {
      load_flow_template(p);
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;  // starts with the file
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << n << " in " << msg;
    }
  }
}

// The seed harness's flows/three_step.json shape: no name, steps of only name and instruction.
TEST(FlowTemplateTest, HarnessFormat) {
  TempDir d;
  write(d / "three_step.json", R"({
  "input": "Review the codebase.",
  "steps": [
    {"name": "planner", "instruction": "Plan it."},
    {"name": "executor", "instruction": "Do it."},
    {"name": "verifier"}
  ]
})");
  const FlowTemplate t = load_flow_template(d / "three_step.json");
  EXPECT_TRUE(t.harness_format);
  EXPECT_EQ(t.name, "three_step");
  EXPECT_EQ(t.input, "Review the codebase.");
  ASSERT_EQ(t.steps.size(), 3u);
  EXPECT_EQ(t.steps[1].name, "executor");
  EXPECT_EQ(t.steps[1].instruction, "Do it.");
  EXPECT_EQ(t.steps[2].instruction, "");  // the harness read a missing instruction as ""
  for (const auto& s : t.steps) {
    EXPECT_TRUE(s.uses.empty());
    EXPECT_FALSE(s.sampling.max_tokens.has_value());
  }

  write(d / "no_input.json", R"({"steps": [{"name": "a", "instruction": "A"}]})");
  EXPECT_EQ(load_flow_template(d / "no_input.json").input, "");

  write(d / "flowrank.json", kThreeSteps);
  EXPECT_FALSE(load_flow_template(d / "flowrank.json").harness_format);

  struct Case {
    std::string json;
    std::string needle;
  };
  const std::vector<Case> bad = {
      {R"({"input": 3, "steps": [{"name": "a", "instruction": "A"}]})", "input: must be a string"},
      {R"({"input": "", "steps": []})", "non-empty"},
      {R"({"input": "", "steps": [{"instruction": "A"}]})", "step 0: missing required key 'name'"},
      {R"({"input": "", "steps": [{"name": "a"}, {"name": "a"}]})", "duplicate step name"},
      {R"({"input": "", "steps": [{"name": "a", "instruction": 1}]})", "instruction"},
  };
  for (const Case& c : bad) {
    SCOPED_TRACE(c.json);
    write(d / "bad.json", c.json);
    expect_input_error([&] { load_flow_template(d / "bad.json"); },
                       {(d / "bad.json").string(), c.needle});
  }
}

TEST(FlowTemplateTest, MissingFile) {
  TempDir d;
  expect_input_error([&] { load_flow_template(d / "none.json"); }, {"none.json", "cannot read"});
}

TEST(TaskSuiteTest, Loads) {
  TempDir d;
  write(d / "s.json",
        R"({"name": "s", "tasks": [{"id": "a", "prompt": "PA"}, {"id": "b", "prompt": "PB"}]})");
  const TaskSuite s = load_task_suite(d / "s.json");
  EXPECT_EQ(s.name, "s");
  ASSERT_EQ(s.tasks.size(), 2u);
  EXPECT_EQ(s.tasks[1].id, "b");
  EXPECT_EQ(s.tasks[1].prompt, "PB");
  EXPECT_EQ(s.canonical,
            R"({"name":"s","tasks":[{"id":"a","prompt":"PA"},{"id":"b","prompt":"PB"}]})");
}

// The seed harness's flows/prompt_suite.json: an array of prompt strings.
TEST(TaskSuiteTest, HarnessArray) {
  TempDir d;
  write(d / "prompt_suite.json", R"(["First task.", "Second task.", "First task."])");
  const TaskSuite s = load_task_suite(d / "prompt_suite.json");
  EXPECT_TRUE(s.harness_format);
  EXPECT_EQ(s.name, "prompt_suite");
  ASSERT_EQ(s.tasks.size(), 3u);
  EXPECT_EQ(s.tasks[0].id, "1");
  EXPECT_EQ(s.tasks[2].id, "3");  // a repeated prompt is a task of its own
  EXPECT_EQ(s.tasks[1].prompt, "Second task.");
  EXPECT_EQ(s.canonical, R"(["First task.","Second task.","First task."])");

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"[]", "must not be empty"},
      {R"(["a", 2])", "element 1: a prompt suite array must hold only strings, got an integer"},
      {"[1]", "element 0"},
      {"\"text\"", "must be a JSON object (a task suite) or an array of prompt strings"},
  };
  for (const auto& [json, needle] : bad) {
    SCOPED_TRACE(json);
    write(d / "bad.json", json);
    expect_input_error([&] { load_task_suite(d / "bad.json"); },
                       {(d / "bad.json").string(), needle});
  }
}

TEST(TaskSuiteTest, BadInputs) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"name": "s", "tasks": [{"id": "a", "prompt": "P"}], "extra": 1})",
       "unknown key 'extra'"},
      {R"({"name": "s", "tasks": []})", "tasks"},
      {R"({"name": "s", "tasks": [{"id": "a", "prompt": "P"}, {"id": "a", "prompt": "Q"}]})",
       "duplicate id 'a'"},
      {R"({"name": "s", "tasks": [{"id": "a"}]})", "task 0"},
      {R"({"name": "s", "tasks": [{"id": "a", "prompt": "P", "x": 1}]})", "unknown key 'x'"},
      {R"({"tasks": [{"id": "a", "prompt": "P"}]})", "missing required key 'name'"},
  };
  for (const auto& [json, needle] : cases) {
    SCOPED_TRACE(json);
    TempDir d;
    write(d / "suite.json", json);
    expect_input_error([&] { load_task_suite(d / "suite.json"); },
                       {(d / "suite.json").string(), needle});
  }
}

}  // namespace
}  // namespace flowrank::flow
