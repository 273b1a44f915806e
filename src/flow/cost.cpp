#include "flowrank/flow/cost.hpp"

#include <optional>
#include <string>

namespace flowrank::flow {
namespace {

int64_t bytes_to_tokens(std::size_t bytes) {
  return static_cast<int64_t>((bytes + 3) / 4);
}

}  // namespace

std::vector<WorkflowCost> estimate_costs(const ExpandedJob& job) {
  const std::size_t shared_bytes =
      job.layout == PromptLayout::kContextFirst ? job.fixture_text.size() : 0;
  std::vector<WorkflowCost> costs;
  costs.reserve(job.workflows.size());
  for (const Workflow& wf : job.workflows) {
    WorkflowCost c;
    c.shared_prefix_tokens = bytes_to_tokens(shared_bytes);
    // Used outputs stand in empty here and are counted as their step's max_tokens.
    const std::vector<std::optional<std::string>> empty(wf.steps.size(), std::string());
    for (std::size_t s = 0; s < wf.steps.size(); ++s) {
      const StepSpec& step = wf.steps[s];
      c.own_tokens += bytes_to_tokens(step_prompt(job, wf, s, empty).size() - shared_bytes);
      for (int32_t used : step.uses) c.own_tokens += wf.steps[used].sampling.max_tokens;
      c.own_tokens += step.sampling.max_tokens;
    }
    costs.push_back(c);
  }
  return costs;
}

}  // namespace flowrank::flow
