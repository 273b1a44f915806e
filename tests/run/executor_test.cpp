#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>

#include "flowrank/common/error.hpp"
#include "flowrank/common/hash.hpp"
#include "flowrank/run/executor.hpp"
#include "flowrank/run/progress.hpp"

using namespace flowrank;

namespace {

// An engine whose request i finishes after `1 + (id % 3)` iterations with a text derived from its
// prompt, so the executor's bookkeeping (dependency order, output routing, records) is checked
// against values computed independently here.
class ScriptedEngine : public engine::Engine {
 public:
  struct Pending {
    engine::Request req;
    int remaining;
    Clock::time_point submitted;
  };
  void preload() override {}
  engine::EngineInfo info() const override { return {}; }
  std::vector<int32_t> tokenize(std::string_view text) const override {
    return std::vector<int32_t>(text.begin(), text.end());
  }
  void submit(engine::Request r) override {
    submitted_at_iteration[r.id] = iteration;
    prompts[r.id] = r.prompt;
    seen_requests.push_back(r);
    const int rem = 1 + static_cast<int>(r.id % 3);
    pending.push_back({std::move(r), rem, Clock::now()});
  }
  std::vector<engine::Completion> step() override {
    ++iteration;
    std::vector<engine::Completion> done;
    for (auto it = pending.begin(); it != pending.end();) {
      if (--it->remaining == 0) {
        engine::Completion c;
        c.id = it->req.id;
        c.text = output_for(it->req.prompt);
        c.prompt_tokens = static_cast<int32_t>(it->req.prompt.size());
        c.decode_tokens = static_cast<int32_t>(c.text.size());
        c.cached_tokens = 3;
        c.timing.submitted = it->submitted;
        c.timing.first_scheduled = it->submitted;
        c.timing.first_token = Clock::now();
        c.timing.finished = Clock::now();
        c.finish = engine::FinishReason::kStop;
        done.push_back(std::move(c));
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    return done;
  }
  bool has_work() const override { return !pending.empty(); }
  engine::EngineStats stats() const override {
    engine::EngineStats st;
    st.steps = iteration;
    return st;
  }

  static std::string output_for(const std::string& prompt) {
    return "OUT[" + sha256_hex(prompt).substr(0, 6) + "]";
  }

  int iteration = 0;
  std::deque<Pending> pending;
  std::map<uint64_t, int> submitted_at_iteration;
  std::map<uint64_t, std::string> prompts;
  std::vector<engine::Request> seen_requests;
};

flow::ExpandedJob make_job(bool chained, int n) {
  flow::ExpandedJob job;
  job.job_name = "t";
  job.layout = flow::PromptLayout::kSeed;
  job.input = "INPUT";
  job.fixture_text = "===== FILE: a.py =====\nx = 1\n";
  for (int i = 0; i < n; ++i) {
    flow::Workflow wf;
    wf.index = i;
    wf.task_id = "t" + std::to_string(i);
    wf.task = "task " + std::to_string(i);
    const char* names[] = {"planner", "executor", "verifier"};
    for (int s = 0; s < 3; ++s) {
      flow::StepSpec st;
      st.name = names[s];
      st.instruction = std::string("do ") + names[s];
      st.sampling.max_tokens = 10 + s;
      st.sampling.temperature = 0.5f;
      st.sampling.seed = 99;
      if (chained && s > 0) {
        st.uses.push_back(s - 1);
        if (s == 2) st.uses.insert(st.uses.begin(), 0);
      }
      wf.steps.push_back(st);
    }
    job.workflows.push_back(wf);
  }
  return job;
}

}  // namespace

TEST(Executor, IndependentStepsAreAllSubmittedBeforeTheFirstIteration) {
  auto job = make_job(false, 5);
  ScriptedEngine eng;
  auto res = run::execute(job, {0, 1, 2, 3, 4}, eng, {});
  ASSERT_EQ(res.steps.size(), 15u);
  for (auto& [id, it] : eng.submitted_at_iteration) EXPECT_EQ(it, 0) << id;
  EXPECT_EQ(res.workflows.size(), 5u);
  EXPECT_FALSE(res.interrupted);
}

TEST(Executor, ChainedStepsWaitForTheirInputsAndSeeTheirOutputs) {
  auto job = make_job(true, 3);
  ScriptedEngine eng;
  auto res = run::execute(job, {0, 1, 2}, eng, {});
  ASSERT_EQ(res.steps.size(), 9u);
  // Map (workflow, step) -> the request the engine saw.
  std::map<std::pair<uint64_t, uint64_t>, const engine::Request*> by_key;
  for (auto& r : eng.seen_requests) by_key[{r.stream.workflow, r.stream.step}] = &r;
  ASSERT_EQ(by_key.size(), 9u);
  auto req = [&](uint64_t w, uint64_t s) { return by_key.at({w, s}); };
  for (uint64_t w = 0; w < 3; ++w) {
    const std::string planner_out = ScriptedEngine::output_for(req(w, 0)->prompt);
    const std::string exec_out = ScriptedEngine::output_for(req(w, 1)->prompt);
    EXPECT_NE(req(w, 1)->prompt.find(planner_out), std::string::npos);
    EXPECT_NE(req(w, 2)->prompt.find(planner_out), std::string::npos);
    EXPECT_NE(req(w, 2)->prompt.find(exec_out), std::string::npos);
    EXPECT_EQ(req(w, 0)->prompt.find("OUT["), std::string::npos);
    // A step is submitted strictly after the iteration that finished its inputs.
    EXPECT_GT(eng.submitted_at_iteration[req(w, 1)->id], eng.submitted_at_iteration[req(w, 0)->id]);
    EXPECT_GT(eng.submitted_at_iteration[req(w, 2)->id], eng.submitted_at_iteration[req(w, 1)->id]);
  }
}

TEST(Executor, RecordsCarryEngineFiguresAndOutputHash) {
  auto job = make_job(false, 2);
  ScriptedEngine eng;
  run::ExecutorOptions opt;
  opt.rank = 3;
  opt.keep_outputs = true;
  opt.epoch = Clock::now();
  auto res = run::execute(job, {1}, eng, opt);
  ASSERT_EQ(res.steps.size(), 3u);
  for (const auto& rec : res.steps) {
    EXPECT_EQ(rec.rank, 3);
    EXPECT_EQ(rec.workflow, 1);
    const std::string prompt = eng.prompts.at(eng.seen_requests[rec.step].id);
    const std::string out = ScriptedEngine::output_for(prompt);
    EXPECT_EQ(rec.output_sha256_8, sha256_hex(out).substr(0, 8));
    EXPECT_EQ(rec.prompt_tokens, static_cast<int32_t>(prompt.size()));
    EXPECT_EQ(rec.decode_tokens, static_cast<int32_t>(out.size()));
    EXPECT_EQ(rec.cached_tokens, 3);
    EXPECT_EQ(rec.finish, "stop");
    EXPECT_EQ(rec.name, job.workflows[1].steps[rec.step].name);
    EXPECT_LE(rec.ttft_ms, rec.latency_ms);
    EXPECT_GE(rec.end_s, rec.start_s);
    EXPECT_EQ(res.outputs.at({1, rec.step}), out);
  }
  // Sampling and stream keys pass through unchanged.
  for (auto& r : eng.seen_requests) {
    EXPECT_EQ(r.stream.workflow, 1u);
    EXPECT_EQ(r.sampling.max_tokens, 10 + static_cast<int>(r.stream.step));
    EXPECT_EQ(r.sampling.seed, 99u);
  }
}

TEST(Executor, StopFlagReturnsFinishedStepsOnly) {
  auto job = make_job(true, 4);
  ScriptedEngine eng;
  std::atomic<bool> stop{false};
  run::ExecutorOptions opt;
  opt.stop = &stop;
  int calls = 0;
  opt.on_progress = [&](const run::ProgressSnapshot& p) {
    if (++calls == 2) stop = true;
    EXPECT_EQ(p.steps_total, 12);
  };
  auto res = run::execute(job, {0, 1, 2, 3}, eng, opt);
  EXPECT_TRUE(res.interrupted);
  EXPECT_GT(res.steps.size(), 0u);
  EXPECT_LT(res.steps.size(), 12u);
  EXPECT_EQ(res.steps_total, 12);
}

TEST(Executor, UnknownWorkflowIsAnError) {
  auto job = make_job(false, 1);
  ScriptedEngine eng;
  EXPECT_THROW(run::execute(job, {1}, eng, {}), RunError);
}

// An engine that rejects the prompts of one step index (as an over-long prompt is rejected).
class RejectingEngine : public ScriptedEngine {
 public:
  explicit RejectingEngine(uint64_t step, uint64_t workflow = ~0ull)
      : step_(step), workflow_(workflow) {}
  void submit(engine::Request r) override {
    if (r.stream.step == step_ && (workflow_ == ~0ull || r.stream.workflow == workflow_)) {
      rejected[{r.stream.workflow, r.stream.step}] = r.prompt;
      throw InputError("request", "prompt too long");
    }
    ScriptedEngine::submit(std::move(r));
  }
  std::map<std::pair<uint64_t, uint64_t>, std::string> rejected;  // (workflow, step) -> prompt

 private:
  uint64_t step_, workflow_;
};

TEST(Executor, RejectedStepFailsAloneWithItsReason) {
  auto job = make_job(true, 2);
  RejectingEngine eng(2);
  auto res = run::execute(job, {0, 1}, eng, {});
  EXPECT_FALSE(res.error);
  EXPECT_EQ(res.steps_failed, 2);
  EXPECT_EQ(res.steps_skipped, 0);
  ASSERT_EQ(res.steps.size(), 6u);
  for (const auto& s : res.steps) {
    if (s.step == 2) {
      EXPECT_EQ(s.finish, "error");
      EXPECT_EQ(s.error, "request: prompt too long");
      EXPECT_EQ(s.output_sha256_8, "");
      // The prompt was built before the engine refused it: its hash says which one.
      const auto prompt = eng.rejected.at({static_cast<uint64_t>(s.workflow), 2});
      EXPECT_EQ(s.prompt_sha256_8, sha256_hex(prompt).substr(0, 8));
    } else {
      EXPECT_EQ(s.finish, "stop");
      EXPECT_EQ(s.error, "");
    }
  }
  EXPECT_TRUE(res.workflows.empty());  // neither workflow finished every step
}

// The planner of workflow 1 fails: its executor and verifier are skipped, workflows 0 and 2 run
// to the end.
TEST(Executor, StepsUsingAFailedStepAreSkippedAndOtherWorkflowsRunOn) {
  auto job = make_job(true, 3);
  RejectingEngine eng(0, 1);
  auto res = run::execute(job, {0, 1, 2}, eng, {});
  EXPECT_FALSE(res.error);
  EXPECT_EQ(res.steps_failed, 1);
  EXPECT_EQ(res.steps_skipped, 2);
  ASSERT_EQ(res.steps.size(), 9u);
  for (const auto& s : res.steps) {
    if (s.workflow != 1) {
      EXPECT_EQ(s.finish, "stop");
      continue;
    }
    EXPECT_EQ(s.finish, s.step == 0 ? "error" : "skipped") << s.step;
    if (s.step > 0) {
      EXPECT_EQ(s.error, "uses step planner, which failed");
      EXPECT_EQ(s.prompt_sha256_8, "");  // never built: an output it uses is missing
    }
  }
  ASSERT_EQ(res.workflows.size(), 2u);
  for (const auto& w : res.workflows) EXPECT_NE(w.workflow, 1);
}

// Steps done in an earlier run are not submitted again; their outputs reach the steps using them.
TEST(Executor, ResumedStepsAreSkippedAndTheirOutputsUsed) {
  auto job = make_job(true, 2);
  const std::map<std::pair<int32_t, int32_t>, std::string> done = {
      {{0, 0}, "EARLIER PLAN"}, {{1, 0}, "OTHER PLAN"}, {{1, 1}, "OTHER EXEC"}};
  ScriptedEngine eng;
  run::ExecutorOptions opt;
  opt.done = &done;
  int callbacks = 0;
  opt.on_step = [&](const report::StepRecord&, const std::string& out,
                    const report::WorkflowRecord*) {
    ++callbacks;
    EXPECT_FALSE(out.empty());
  };
  auto res = run::execute(job, {0, 1}, eng, opt);
  EXPECT_FALSE(res.error);
  EXPECT_EQ(res.steps_resumed, 3);
  EXPECT_EQ(res.steps.size(), 3u);  // (0,1), (0,2), (1,2)
  EXPECT_EQ(callbacks, 3);
  ASSERT_EQ(eng.seen_requests.size(), 3u);
  for (const auto& r : eng.seen_requests) {
    EXPECT_NE(r.stream.step, 0u);
    const char* used = r.stream.workflow == 0 ? "EARLIER PLAN" : "OTHER EXEC";
    if (r.stream.step == 2 || r.stream.workflow == 0) {
      EXPECT_NE(r.prompt.find(used), std::string::npos) << r.stream.workflow << r.stream.step;
    }
  }
  EXPECT_EQ(res.workflows.size(), 2u);
}

// After a stop, steps already submitted finish within the grace period; nothing new starts.
TEST(Executor, StopLetsSubmittedStepsFinishWithinTheGrace) {
  auto job = make_job(true, 3);
  ScriptedEngine eng;
  std::atomic<bool> stop{false};
  run::ExecutorOptions opt;
  opt.stop = &stop;
  opt.grace_s = 3600;
  std::size_t submitted_at_stop = 0;
  opt.on_progress = [&](const run::ProgressSnapshot&) {
    if (!stop) {
      stop = true;
      submitted_at_stop = eng.seen_requests.size();
    }
  };
  auto res = run::execute(job, {0, 1, 2}, eng, opt);
  EXPECT_TRUE(res.interrupted);
  EXPECT_EQ(eng.seen_requests.size(), submitted_at_stop);
  EXPECT_EQ(res.steps.size(), submitted_at_stop);  // every submitted step finished
  EXPECT_FALSE(eng.has_work());
}

TEST(Executor, AbortLeavesAtOnce) {
  auto job = make_job(false, 3);
  ScriptedEngine eng;
  std::atomic<bool> abort{true};
  run::ExecutorOptions opt;
  opt.abort = &abort;
  auto res = run::execute(job, {0, 1, 2}, eng, opt);
  EXPECT_TRUE(res.interrupted);
  EXPECT_TRUE(res.steps.empty());
}

TEST(Progress, FormatsCountsRateAndEta) {
  run::ProgressSnapshot p;
  p.steps_done = 3;
  p.steps_total = 9;
  p.decode_tokens = 300;
  p.elapsed_s = 30;
  // 10 tok/s; 3 steps in 30 s -> 6 more need 60 s.
  EXPECT_EQ(run::format_progress(p), "steps 3/9  decode 10.0 tok/s  elapsed 30.0s  ETA 1m00s");
}

// Each record carries the first 8 hex of the sha256 of the very prompt the engine got, and the
// live callback sees every step and every finished workflow as it happens.
TEST(Executor, PromptHashesAndLiveCallbacks) {
  auto job = make_job(true, 2);
  ScriptedEngine eng;
  std::vector<std::pair<int32_t, int32_t>> seen_steps;
  std::vector<int32_t> seen_workflows;
  run::ExecutorOptions opts;
  opts.on_step = [&](const report::StepRecord& r, const std::string&,
                     const report::WorkflowRecord* w) {
    seen_steps.emplace_back(r.workflow, r.step);
    EXPECT_EQ(r.prompt_sha256_8.size(), 8u);
    if (!w) return;
    // A workflow is announced with its last step, after all of its steps.
    EXPECT_EQ(w->workflow, r.workflow);
    int steps = 0;
    for (const auto& s : seen_steps) steps += s.first == w->workflow;
    EXPECT_EQ(steps, 3);
    seen_workflows.push_back(w->workflow);
  };
  auto res = run::execute(job, {0, 1}, eng, opts);
  ASSERT_EQ(res.steps.size(), 6u);
  EXPECT_EQ(seen_steps.size(), 6u);
  EXPECT_EQ(seen_workflows.size(), 2u);
  for (const auto& rec : res.steps) {
    const uint64_t id = static_cast<uint64_t>(rec.workflow) * (1u << 16) + rec.step;
    ASSERT_TRUE(eng.prompts.count(id)) << id;
    EXPECT_EQ(rec.prompt_sha256_8, sha256_hex(eng.prompts.at(id)).substr(0, 8));
  }
}
