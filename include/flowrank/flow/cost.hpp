#pragma once
// What a workflow costs, in estimated tokens, so that dist/ can balance ranks by work rather than
// by workflow count. Tokens are estimated as UTF-8 bytes / 4 (no tokenizer is loaded before the
// plan is made); an earlier step's output entering a prompt counts as that step's max_tokens.
#include <cstdint>
#include <vector>

#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow {

struct WorkflowCost {
  // Prompt tokens of every step (shared prefix excluded) plus every step's max_tokens: a chain
  // summed.
  int64_t own_tokens = 0;
  // A prompt prefix that every step of every workflow starts with (the fixture text under the
  // context-first layout): a prefix cache computes it once per rank, so it is paid once per rank.
  // 0 under the seed layouts (seed, seed-chained), whose prompts start with the task.
  int64_t shared_prefix_tokens = 0;
};

std::vector<WorkflowCost> estimate_costs(const ExpandedJob& job);

}  // namespace flowrank::flow
