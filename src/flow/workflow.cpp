#include "flowrank/flow/workflow.hpp"

#include <stdexcept>

#include "flowrank/common/utf8.hpp"

namespace flowrank::flow {
namespace {

std::string heading_name(const std::string& name) {
  std::string out = name;
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z')
    out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

const std::string& used_output(const ExpandedJob& job, const Workflow& wf, const StepSpec& step,
                               int32_t used,
                               const std::vector<std::optional<std::string>>& outputs) {
  const auto u = static_cast<std::size_t>(used);
  if (used < 0 || u >= wf.steps.size() || u >= outputs.size() || !outputs[u])
    throw std::logic_error("step_prompt: job " + job.job_name + " workflow " +
                           std::to_string(wf.index) + " step " + step.name +
                           ": output of used step " + std::to_string(used) + " is not set");
  return *outputs[u];
}

void append_used_outputs(std::string& prompt, const ExpandedJob& job, const Workflow& wf,
                         const StepSpec& step,
                         const std::vector<std::optional<std::string>>& outputs) {
  for (int32_t used : step.uses) {
    const std::string& text = used_output(job, wf, step, used, outputs);
    prompt += "\n\n### ";
    prompt += heading_name(wf.steps[static_cast<std::size_t>(used)].name);
    prompt += " Output\n";
    prompt += text;
  }
}

// The harness at fa357ea (standalone_runner.py): "Instruction: ..." and "Input: ..." joined by a
// blank line, each only when non-empty.
// An empty prompt with room for the fixed parts.
std::string prompt_buffer(const ExpandedJob& job, const Workflow& wf, const StepSpec& s) {
  std::string prompt;
  prompt.reserve(job.fixture_text.size() + wf.task.size() + job.input.size() +
                 s.instruction.size() + 64);
  return prompt;
}

std::string seed_prompt(const ExpandedJob& job, const Workflow& wf, const StepSpec& s,
                        const std::vector<std::optional<std::string>>& outputs) {
  std::string prompt = prompt_buffer(job, wf, s);
  if (!s.instruction.empty()) {
    prompt += "Instruction: ";
    prompt += s.instruction;
    prompt += "\n\nInput: ";
  } else {
    prompt += "Input: ";
  }
  prompt += wf.task;
  prompt += "\n\n";
  prompt += job.input;
  prompt += "\n\n";
  prompt += job.fixture_text;
  append_used_outputs(prompt, job, wf, s, outputs);
  return prompt;
}

std::string context_first_prompt(const ExpandedJob& job, const Workflow& wf, const StepSpec& s,
                                 const std::vector<std::optional<std::string>>& outputs) {
  std::string prompt = prompt_buffer(job, wf, s);
  prompt += job.fixture_text;
  prompt += "\n\nTask: ";
  prompt += wf.task;
  prompt += "\n\n";
  prompt += job.input;
  append_used_outputs(prompt, job, wf, s, outputs);
  prompt += "\n\nInstruction: ";
  prompt += s.instruction;
  prompt += "\n";
  return prompt;
}

// Python's str.title() for ASCII letters: upper after a non-letter, lower after a letter.
std::string python_title(const std::string& name) {
  std::string out = name;
  bool after_letter = false;
  for (char& c : out) {
    const bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
    if (lower && !after_letter) c = static_cast<char>(c - 'a' + 'A');
    if (upper && after_letter) c = static_cast<char>(c - 'A' + 'a');
    after_letter = lower || upper;
  }
  return out;
}

// Length of `text` without the trailing characters Python's str.rstrip() removes (str.isspace()).
std::size_t python_rstrip_length(const std::string& text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    const std::string_view ch(text.data() + start, end - start);
    const bool space = (ch.size() == 1 && ((ch[0] >= '\t' && ch[0] <= '\r') || ch[0] == ' ' ||
                                           (ch[0] >= '\x1c' && ch[0] <= '\x1f'))) ||
                       ch == "\u0085" || ch == "\u00a0" || ch == "\u1680" ||
                       (ch >= "\u2000" && ch <= "\u200a" && ch.size() == 3) || ch == "\u2028" ||
                       ch == "\u2029" || ch == "\u202f" || ch == "\u205f" || ch == "\u3000";
    if (!space) break;
    end = start;
  }
  return end;
}

// An earlier output as the harness's chained runner quotes it: decoded with U+FFFD for bad bytes,
// then cut to 1,500 characters (code points) with "..." appended when longer.
std::string bounded_output(const std::string& text) {
  constexpr std::size_t kLimit = 1500;
  std::string out = utf8_replace_invalid(text);
  const std::size_t cut = utf8_prefix_bytes(out, kLimit);
  if (cut < out.size()) {
    out.resize(cut);
    out += "...";
  }
  return out;
}

// The harness's latest chained runner (agent_driver.build_step_prompt_baseline, then
// target_vllm.ensure_bounded_prompt): parts joined by "\n"; the job's fixture files stand where
// it put retrieved snippets.
std::string seed_chained_prompt(const ExpandedJob& job, const Workflow& wf, const StepSpec& s,
                                const std::vector<std::optional<std::string>>& outputs) {
  std::string prompt = "## Task " + std::to_string(wf.index + 1) + ": " + wf.task;
  if (!job.input.empty()) prompt += "\n\n" + job.input;
  if (!job.fixture_text.empty()) {
    prompt += "\n\n## Retrieved Code Snippets\n\n";
    prompt += job.fixture_text;
  }
  if (!s.uses.empty()) {
    prompt += "\n\n## Previous Analysis\n";
    for (int32_t used : s.uses) {
      const std::string& text = used_output(job, wf, s, used, outputs);
      prompt += "\n### " + python_title(wf.steps[static_cast<std::size_t>(used)].name) +
                " Output\n" + bounded_output(text) + "\n";
    }
  }
  prompt += "\n\n## Your Task: " + python_title(s.name) + "\n" + s.instruction;
  // The stop marker the step's output must end with, demanded unless the prompt already names it.
  if (!s.sampling.stop.empty() && prompt.find(s.sampling.stop.front()) == std::string::npos) {
    prompt.resize(python_rstrip_length(prompt));
    prompt += "\n\nOutput must be concise and MUST end with " + s.sampling.stop.front() + ".\n";
  }
  return prompt;
}

}  // namespace

std::string step_prompt(const ExpandedJob& job, const Workflow& wf, std::size_t step,
                        const std::vector<std::optional<std::string>>& outputs) {
  if (step >= wf.steps.size())
    throw std::logic_error("step_prompt: workflow " + std::to_string(wf.index) + " has no step " +
                           std::to_string(step));
  const StepSpec& s = wf.steps[step];
  switch (job.layout) {
    case PromptLayout::kSeed:
      return seed_prompt(job, wf, s, outputs);
    case PromptLayout::kContextFirst:
      return context_first_prompt(job, wf, s, outputs);
    case PromptLayout::kSeedChained:
      return seed_chained_prompt(job, wf, s, outputs);
  }
  throw std::logic_error("step_prompt: unknown layout");
}

}  // namespace flowrank::flow
