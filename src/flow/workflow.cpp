#include "flowrank/flow/workflow.hpp"

#include <stdexcept>

namespace flowrank::flow {
namespace {

std::string heading_name(const std::string& name) {
  std::string out = name;
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z')
    out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

void append_used_outputs(std::string& prompt, const ExpandedJob& job, const Workflow& wf,
                         const StepSpec& step,
                         const std::vector<std::optional<std::string>>& outputs) {
  for (int32_t used : step.uses) {
    const auto u = static_cast<std::size_t>(used);
    if (used < 0 || u >= wf.steps.size() || u >= outputs.size() || !outputs[u])
      throw std::logic_error("step_prompt: job " + job.job_name + " workflow " +
                             std::to_string(wf.index) + " step " + step.name +
                             ": output of used step " + std::to_string(used) + " is not set");
    prompt += "\n\n### ";
    prompt += heading_name(wf.steps[u].name);
    prompt += " Output\n";
    prompt += *outputs[u];
  }
}

}  // namespace

std::string step_prompt(const ExpandedJob& job, const Workflow& wf, std::size_t step,
                        const std::vector<std::optional<std::string>>& outputs) {
  if (step >= wf.steps.size())
    throw std::logic_error("step_prompt: workflow " + std::to_string(wf.index) + " has no step " +
                           std::to_string(step));
  const StepSpec& s = wf.steps[step];
  std::string prompt;
  if (job.layout == PromptLayout::kSeed) {
    prompt.reserve(job.fixture_text.size() + wf.task.size() + job.input.size() +
                   s.instruction.size() + 64);
    prompt += "Instruction: ";
    prompt += s.instruction;
    prompt += "\n\nInput: ";
    prompt += wf.task;
    prompt += "\n\n";
    prompt += job.input;
    prompt += "\n\n";
    prompt += job.fixture_text;
    append_used_outputs(prompt, job, wf, s, outputs);
  } else {
    prompt.reserve(job.fixture_text.size() + wf.task.size() + job.input.size() +
                   s.instruction.size() + 64);
    prompt += job.fixture_text;
    prompt += "\n\nTask: ";
    prompt += wf.task;
    prompt += "\n\n";
    prompt += job.input;
    append_used_outputs(prompt, job, wf, s, outputs);
    prompt += "\n\nInstruction: ";
    prompt += s.instruction;
    prompt += "\n";
  }
  return prompt;
}

}  // namespace flowrank::flow
