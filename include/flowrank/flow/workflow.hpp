#pragma once
// Expanded workflows: what flow/ produces (and caches) and run/ executes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flowrank/flow/fixtures.hpp"

namespace flowrank::flow {

enum class PromptLayout {  // the values are stored in flow cache entries
  kSeed = 0,          // Instruction: {instruction}\n\nInput: {task}\n\n{input}\n\n{fixture text}
  kContextFirst = 1,  // fixture text first, then task, input, earlier outputs, instruction
  kSeedChained =
      2,  // the harness's later chained runner: ## Task / snippets / ## Previous Analysis
          // (outputs cut at 1,500 characters) / ## Your Task, then the stop-marker line
};

struct StepSampling {
  int32_t max_tokens = 256;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

struct StepSpec {
  std::string name;  // "planner"
  std::string instruction;
  std::vector<int32_t> uses;  // indices of earlier steps whose outputs enter this prompt
  StepSampling sampling;
};

struct Workflow {
  int32_t index = 0;    // 0-based workflow number within the job
  std::string task_id;  // from the suite
  std::string task;     // the suite's prompt for this workflow
  std::vector<StepSpec> steps;
};

// Everything needed to build every prompt of a job. The fixture text is held once, not per
// workflow: 25 copies of 115 KB would be 25x the cache size for nothing.
struct ExpandedJob {
  std::string job_name;
  PromptLayout layout = PromptLayout::kSeed;
  bool chat = false;
  std::string input;  // the template's `input`
  // The fixture files in the job's order, assembled as the layout wants them (`===== FILE:`
  // blocks, or snippets for kSeedChained).
  std::string fixture_text;
  uint64_t fixture_bytes = 0;  // sum of the files' text bytes (after the rules' newline changes)
  uint32_t fixture_files = 0;  // files in the text
  std::vector<SkippedFixture> fixture_skipped;  // what the fixture rules left out, with why
  std::vector<Workflow> workflows;
};

// The prompt of workflow `wf`, step `step`. `outputs[i]` is the output of step i of the same
// workflow; only the steps named in `uses` are read (they must be set).
std::string step_prompt(const ExpandedJob& job, const Workflow& wf, std::size_t step,
                        const std::vector<std::optional<std::string>>& outputs);

}  // namespace flowrank::flow
