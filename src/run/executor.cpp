#include "flowrank/run/executor.hpp"

#include <map>
#include <optional>

#include "flowrank/common/error.hpp"
#include "flowrank/common/hash.hpp"

namespace flowrank::run {
namespace {

const char* finish_name(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kLength:
      return "length";
    case engine::FinishReason::kStop:
      return "stop";
    case engine::FinishReason::kEos:
      return "eos";
  }
  return "?";
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return seconds_between(a, b) * 1e3;
}

// Per-workflow progress: which steps finished, their outputs, and which were submitted.
struct WorkflowState {
  const flow::Workflow* wf = nullptr;
  std::vector<std::optional<std::string>> outputs;
  std::vector<bool> submitted;
  std::vector<std::string> prompt_hashes;  // first 8 hex of each submitted prompt's sha256
  int32_t done = 0;
  Clock::time_point start{};
  bool started = false;
};

}  // namespace

engine::SamplingParams to_sampling_params(const flow::StepSampling& s) {
  engine::SamplingParams p;
  p.max_tokens = s.max_tokens;
  p.temperature = s.temperature;
  p.top_p = s.top_p;
  p.top_k = s.top_k;
  p.seed = s.seed;
  p.stop = s.stop;
  p.ignore_eos = s.ignore_eos;
  return p;
}

ExecutionResult execute(const flow::ExpandedJob& job, const std::vector<int32_t>& workflows,
                        engine::Engine& engine, const ExecutorOptions& options) {
  ExecutionResult result;
  std::vector<WorkflowState> states;
  states.reserve(workflows.size());
  for (int32_t index : workflows) {
    if (index < 0 || static_cast<std::size_t>(index) >= job.workflows.size())
      throw RunError("workflow " + std::to_string(index) + " is not in the job");
    WorkflowState st;
    st.wf = &job.workflows[index];
    st.outputs.assign(st.wf->steps.size(), std::nullopt);
    st.submitted.assign(st.wf->steps.size(), false);
    st.prompt_hashes.assign(st.wf->steps.size(), std::string());
    result.steps_total += static_cast<int32_t>(st.wf->steps.size());
    states.push_back(std::move(st));
  }

  // Request ids encode (position in `states`, step) so completions map back without a lookup table.
  constexpr uint64_t kStepsPerWorkflow = 1u << 16;
  auto submit_ready = [&](WorkflowState& st, std::size_t state_index) {
    const auto& steps = st.wf->steps;
    for (std::size_t s = 0; s < steps.size(); ++s) {
      if (st.submitted[s]) continue;
      bool ready = true;
      for (int32_t u : steps[s].uses) ready = ready && st.outputs[u].has_value();
      if (!ready) continue;
      engine::Request req;
      req.id = state_index * kStepsPerWorkflow + s;
      req.prompt = flow::step_prompt(job, *st.wf, s, st.outputs);
      st.prompt_hashes[s] = sha256_hex(req.prompt).substr(0, 8);
      req.chat = job.chat;
      req.sampling = to_sampling_params(steps[s].sampling);
      req.stream = {static_cast<uint64_t>(st.wf->index), static_cast<uint64_t>(s)};
      engine.submit(std::move(req));
      st.submitted[s] = true;
      if (!st.started) {
        st.started = true;
        st.start = Clock::now();
      }
    }
  };
  ProgressSnapshot progress;
  progress.steps_total = result.steps_total;
  const Clock::time_point run_start = Clock::now();
  try {
    for (std::size_t i = 0; i < states.size(); ++i) submit_ready(states[i], i);
    while (engine.has_work()) {
      if (options.stop && options.stop->load()) {
        result.interrupted = true;
        break;
      }
      std::vector<engine::Completion> finished = engine.step();
      for (engine::Completion& c : finished) {
        const std::size_t state_index = c.id / kStepsPerWorkflow;
        const std::size_t s = c.id % kStepsPerWorkflow;
        WorkflowState& st = states.at(state_index);
        const flow::StepSpec& spec = st.wf->steps.at(s);

        report::StepRecord rec;
        rec.rank = options.rank;
        rec.workflow = st.wf->index;
        rec.step = static_cast<int32_t>(s);
        rec.name = spec.name;
        rec.prompt_tokens = c.prompt_tokens;
        rec.cached_tokens = c.cached_tokens;
        rec.decode_tokens = c.decode_tokens;
        rec.queued_ms = ms_between(c.timing.submitted, c.timing.first_scheduled);
        rec.ttft_ms = ms_between(c.timing.submitted, c.timing.first_token);
        rec.latency_ms = ms_between(c.timing.submitted, c.timing.finished);
        rec.start_s = seconds_between(options.epoch, c.timing.submitted);
        rec.end_s = seconds_between(options.epoch, c.timing.finished);
        rec.finish = finish_name(c.finish);
        rec.output_sha256_8 = sha256_hex(c.text).substr(0, 8);
        rec.prompt_sha256_8 = st.prompt_hashes[s];
        if (options.on_step) options.on_step(rec);
        result.steps.push_back(std::move(rec));
        progress.decode_tokens += c.decode_tokens;
        progress.prompt_tokens += c.prompt_tokens;

        if (options.keep_outputs) result.outputs[{st.wf->index, static_cast<int32_t>(s)}] = c.text;
        st.outputs[s] = std::move(c.text);
        if (++st.done == static_cast<int32_t>(st.wf->steps.size())) {
          report::WorkflowRecord w;
          w.rank = options.rank;
          w.workflow = st.wf->index;
          w.start_s = seconds_between(options.epoch, st.start);
          w.end_s = seconds_between(options.epoch, Clock::now());
          w.steps = st.done;
          if (options.on_workflow) options.on_workflow(w);
          result.workflows.push_back(w);
        } else {
          submit_ready(st, state_index);
        }
      }
      if (!finished.empty() && options.on_progress) {
        progress.steps_done = static_cast<int32_t>(result.steps.size());
        progress.elapsed_s = seconds_between(run_start, Clock::now());
        options.on_progress(progress);
      }
    }
  } catch (...) {
    result.error = std::current_exception();
    return result;
  }
  if (!result.interrupted && static_cast<int32_t>(result.steps.size()) != result.steps_total)
    result.error = std::make_exception_ptr(
        RunError("engine went idle with " +
                 std::to_string(result.steps_total - result.steps.size()) + " steps unfinished"));
  return result;
}

}  // namespace flowrank::run
