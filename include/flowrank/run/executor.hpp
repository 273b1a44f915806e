#pragma once
// The executor turns expanded workflows into engine requests in dependency order: every step
// whose `uses` are done is submitted at once, across all workflows, so the engine can batch them.
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "flowrank/common/clock.hpp"
#include "flowrank/engine/engine.hpp"
#include "flowrank/flow/workflow.hpp"
#include "flowrank/report/records.hpp"

namespace flowrank::run {

struct ProgressSnapshot {
  int32_t steps_done = 0;
  int32_t steps_total = 0;
  int64_t decode_tokens = 0;
  int64_t prompt_tokens = 0;
  double elapsed_s = 0;
};

struct ExecutorOptions {
  int32_t rank = 0;
  Clock::time_point epoch{};  // the run's time zero (rank 0's start)
  bool keep_outputs = false;  // copy every output text into the result
  // Checked between engine iterations; when it becomes true the executor stops and returns what
  // has finished (SIGTERM from Slurm, Ctrl-C).
  const std::atomic<bool>* stop = nullptr;
  std::function<void(const ProgressSnapshot&)>
      on_progress;  // after each iteration that finished steps
  // As each step, and each workflow's last step, finishes (live log lines).
  std::function<void(const report::StepRecord&)> on_step;
  std::function<void(const report::WorkflowRecord&)> on_workflow;
};

struct ExecutionResult {
  std::vector<report::StepRecord> steps;
  std::vector<report::WorkflowRecord> workflows;  // only workflows whose every step finished
  std::map<std::pair<int32_t, int32_t>, std::string> outputs;  // filled when keep_outputs
  int32_t steps_total = 0;
  bool interrupted = false;  // stopped by options.stop
  std::exception_ptr error;  // the engine or a prompt failed; what finished before is kept
};

engine::SamplingParams to_sampling_params(const flow::StepSampling& s);

// Runs the workflows of `job` whose indices are in `workflows` (this rank's shard) to completion.
// Never throws for a failure mid-run: it returns the finished steps with `error` set, so the caller
// can flush a partial report before reporting the error.
ExecutionResult execute(const flow::ExpandedJob& job, const std::vector<int32_t>& workflows,
                        engine::Engine& engine, const ExecutorOptions& options);

}  // namespace flowrank::run
