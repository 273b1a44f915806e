#pragma once
// `flowrank expand --explain`: how much prompt text a job's prompts share, and how much of it a
// prefix cache can reuse when prompts are submitted in order.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow {

struct PromptSharing {
  bool tokens = false;  // units are tokens (tokenizer given) or bytes
  uint64_t prompts = 0;
  uint64_t total = 0;  // units over all prompts
  // Sum over prompts of the longest common prefix with any earlier prompt: what a prefix cache
  // reuses in submission order (ignoring block granularity and eviction).
  uint64_t prefix_reusable = 0;
  // Units beyond that prefix that repeat text of earlier prompts in runs of >= 1 KB (or 256
  // tokens): shared, but not where a prefix cache can reuse it. Approximate (chunk hashes).
  uint64_t shared_not_prefix = 0;
  // Length of the prefix every prompt shares: what shared-prefix (cascade) attention reads once
  // per decode step for all sequences.
  uint64_t common_prefix = 0;
};

using TokenizeFn = std::function<std::vector<int32_t>(std::string_view)>;

// Units are bytes when `tokenize` is empty, tokens otherwise.
PromptSharing explain_sharing(const std::vector<std::string>& prompts,
                              const TokenizeFn& tokenize = {});
PromptSharing explain_token_sharing(const std::vector<std::vector<int32_t>>& prompts);

// Every prompt of the job in submission order (workflow-major), with "" standing in for each
// earlier step's output: real outputs are not known before the run.
std::vector<std::string> placeholder_prompts(const ExpandedJob& job);

// Human-readable lines for the CLI (ends with '\n'); says that outputs are placeholders.
std::string describe_sharing(const ExpandedJob& job, const PromptSharing& sharing);

}  // namespace flowrank::flow
