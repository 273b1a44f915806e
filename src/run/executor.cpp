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

// Per-workflow progress: which steps ended, their outputs, and which were submitted.
struct WorkflowState {
  const flow::Workflow* wf = nullptr;
  std::vector<std::optional<std::string>> outputs;
  std::vector<bool> submitted;  // or resolved without the engine (resumed, failed, skipped)
  std::vector<bool> failed;     // failed or skipped
  std::vector<std::string> prompt_hashes;  // first 8 hex of each built prompt's sha256
  int32_t done = 0;                        // steps ended in any way
  int32_t good = 0;                        // steps with an output
  Clock::time_point start{};
  bool started = false;
};

// Request ids encode (position in `states`, step) so completions map back without a lookup table.
constexpr uint64_t kStepsPerWorkflow = 1u << 16;

class Run {
 public:
  Run(const flow::ExpandedJob& job, engine::Engine& engine, const ExecutorOptions& options)
      : job_(job), engine_(engine), opt_(options) {}

  void add_workflows(const std::vector<int32_t>& workflows);
  void loop();
  ExecutionResult take() { return std::move(result_); }

 private:
  void submit_ready(std::size_t state_index);
  void fail_step(WorkflowState& st, std::size_t s, const std::string& finish,
                 const std::string& error);
  void finish_step(engine::Completion& c);
  void step_ended(WorkflowState& st, report::StepRecord&& rec, const std::string& output);
  bool should_leave();

  const flow::ExpandedJob& job_;
  engine::Engine& engine_;
  const ExecutorOptions& opt_;
  std::vector<WorkflowState> states_;
  ExecutionResult result_;
  ProgressSnapshot progress_;
  std::optional<Clock::time_point> grace_end_;
};

void Run::add_workflows(const std::vector<int32_t>& workflows) {
  states_.reserve(workflows.size());
  for (int32_t index : workflows) {
    if (index < 0 || static_cast<std::size_t>(index) >= job_.workflows.size())
      throw RunError("workflow " + std::to_string(index) + " is not in the job");
    WorkflowState st;
    st.wf = &job_.workflows[index];
    const std::size_t n = st.wf->steps.size();
    st.outputs.assign(n, std::nullopt);
    st.submitted.assign(n, false);
    st.failed.assign(n, false);
    st.prompt_hashes.assign(n, std::string());
    for (std::size_t s = 0; opt_.done && s < n; ++s) {
      auto it = opt_.done->find({index, static_cast<int32_t>(s)});
      if (it == opt_.done->end()) continue;
      st.outputs[s] = it->second;
      st.submitted[s] = true;
      ++st.done;
      ++st.good;
      ++result_.steps_resumed;
    }
    result_.steps_total += static_cast<int32_t>(n);
    states_.push_back(std::move(st));
  }
  progress_.steps_total = result_.steps_total;
  progress_.steps_done = result_.steps_resumed;
}

void Run::submit_ready(std::size_t state_index) {
  WorkflowState& st = states_[state_index];
  const auto& steps = st.wf->steps;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    if (st.submitted[s]) continue;
    bool ready = true;
    std::optional<int32_t> failed_use;
    for (int32_t u : steps[s].uses) {
      if (st.failed[u] && !failed_use) failed_use = u;
      ready = ready && st.outputs[u].has_value();
    }
    if (failed_use) {
      fail_step(st, s, "skipped", "uses step " + steps[*failed_use].name + ", which failed");
      continue;
    }
    if (!ready) continue;
    engine::Request req;
    req.id = state_index * kStepsPerWorkflow + s;
    req.prompt = flow::step_prompt(job_, *st.wf, s, st.outputs);
    st.prompt_hashes[s] = sha256_hex(req.prompt).substr(0, 8);
    req.chat = job_.chat;
    req.sampling = to_sampling_params(steps[s].sampling);
    req.stream = {static_cast<uint64_t>(st.wf->index), static_cast<uint64_t>(s)};
    if (!st.started) {
      st.started = true;
      st.start = Clock::now();
    }
    st.submitted[s] = true;
    try {
      engine_.submit(std::move(req));
    } catch (const InputError& e) {  // this step's prompt or sampling: it fails alone
      fail_step(st, s, "error", e.what());
    }
  }
}

// Records a step that produced no output; the steps after it that use it are skipped in turn
// (submit_ready walks the steps in order, and `uses` only name earlier steps).
void Run::fail_step(WorkflowState& st, std::size_t s, const std::string& finish,
                    const std::string& error) {
  st.submitted[s] = true;
  st.failed[s] = true;
  (finish == "error" ? result_.steps_failed : result_.steps_skipped) += 1;
  report::StepRecord rec;
  rec.rank = opt_.rank;
  rec.workflow = st.wf->index;
  rec.step = static_cast<int32_t>(s);
  rec.name = st.wf->steps[s].name;
  rec.start_s = rec.end_s = seconds_between(opt_.epoch, Clock::now());
  rec.finish = finish;
  rec.error = error;
  rec.prompt_sha256_8 = st.prompt_hashes[s];  // a rejected prompt has one; a skipped step none
  step_ended(st, std::move(rec), "");
}

void Run::finish_step(engine::Completion& c) {
  const std::size_t state_index = c.id / kStepsPerWorkflow;
  const std::size_t s = c.id % kStepsPerWorkflow;
  WorkflowState& st = states_.at(state_index);
  report::StepRecord rec;
  rec.rank = opt_.rank;
  rec.workflow = st.wf->index;
  rec.step = static_cast<int32_t>(s);
  rec.name = st.wf->steps.at(s).name;
  rec.prompt_tokens = c.prompt_tokens;
  rec.cached_tokens = c.cached_tokens;
  rec.decode_tokens = c.decode_tokens;
  rec.queued_ms = ms_between(c.timing.submitted, c.timing.first_scheduled);
  rec.ttft_ms = ms_between(c.timing.submitted, c.timing.first_token);
  rec.latency_ms = ms_between(c.timing.submitted, c.timing.finished);
  rec.start_s = seconds_between(opt_.epoch, c.timing.submitted);
  rec.end_s = seconds_between(opt_.epoch, c.timing.finished);
  rec.finish = finish_name(c.finish);
  rec.output_sha256_8 = sha256_hex(c.text).substr(0, 8);
  rec.prompt_sha256_8 = st.prompt_hashes[s];
  progress_.decode_tokens += c.decode_tokens;
  progress_.prompt_tokens += c.prompt_tokens;
  if (opt_.keep_outputs) result_.outputs[{st.wf->index, static_cast<int32_t>(s)}] = c.text;
  st.outputs[s] = std::move(c.text);
  ++st.good;
  step_ended(st, std::move(rec), *st.outputs[s]);
}

void Run::step_ended(WorkflowState& st, report::StepRecord&& rec, const std::string& output) {
  ++st.done;
  std::optional<report::WorkflowRecord> w;
  if (st.good == static_cast<int32_t>(st.wf->steps.size())) {
    w.emplace();
    w->rank = opt_.rank;
    w->workflow = st.wf->index;
    w->start_s = seconds_between(opt_.epoch, st.start);
    w->end_s = seconds_between(opt_.epoch, Clock::now());
    w->steps = st.good;
    result_.workflows.push_back(*w);
  }
  if (opt_.on_step) opt_.on_step(rec, output, w ? &*w : nullptr);
  result_.steps.push_back(std::move(rec));
}

// Whether to leave the loop now: abort at once; stop after the grace period.
bool Run::should_leave() {
  if (opt_.abort && opt_.abort->load()) return true;
  if (!opt_.stop || !opt_.stop->load()) return false;
  if (!grace_end_)
    grace_end_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(opt_.grace_s));
  return Clock::now() >= *grace_end_;
}

void Run::loop() {
  const Clock::time_point run_start = Clock::now();
  for (std::size_t i = 0; i < states_.size(); ++i) submit_ready(i);
  while (engine_.has_work()) {
    if (should_leave()) {
      result_.interrupted = true;
      return;
    }
    std::vector<engine::Completion> finished = engine_.step();
    const bool admitting = !(opt_.stop && opt_.stop->load());
    for (engine::Completion& c : finished) {
      const std::size_t state_index = c.id / kStepsPerWorkflow;
      finish_step(c);
      if (admitting) submit_ready(state_index);
    }
    if (!finished.empty() && opt_.on_progress) {
      progress_.steps_done = static_cast<int32_t>(result_.steps.size()) + result_.steps_resumed;
      progress_.elapsed_s = seconds_between(run_start, Clock::now());
      opt_.on_progress(progress_);
    }
  }
  const auto ended = static_cast<int32_t>(result_.steps.size()) + result_.steps_resumed;
  if (opt_.stop && opt_.stop->load() && ended < result_.steps_total) result_.interrupted = true;
}

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
  Run run(job, engine, options);
  run.add_workflows(workflows);
  try {
    run.loop();
  } catch (...) {
    ExecutionResult result = run.take();
    result.error = std::current_exception();
    return result;
  }
  ExecutionResult result = run.take();
  const auto ended = static_cast<int32_t>(result.steps.size()) + result.steps_resumed;
  if (!result.interrupted && ended != result.steps_total)
    result.error = std::make_exception_ptr(RunError("engine went idle with " +
                                                    std::to_string(result.steps_total - ended) +
                                                    " steps unfinished"));
  return result;
}

}  // namespace flowrank::run
