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
  // Checked between engine iterations. When `stop` becomes true the executor submits nothing
  // more, lets the steps already submitted finish for up to `grace_s` seconds, and returns what
  // has finished (SIGTERM from Slurm, Ctrl-C). `abort` ends at once (a peer rank died).
  const std::atomic<bool>* stop = nullptr;
  double grace_s = 0;
  const std::atomic<bool>* abort = nullptr;
  // Steps finished by an earlier run ((workflow, step) -> output text): not run again, their
  // outputs feed the steps that use them. The caller owns their records.
  const std::map<std::pair<int32_t, int32_t>, std::string>* done = nullptr;
  std::function<void(const ProgressSnapshot&)>
      on_progress;  // after each iteration that finished steps
  // Called as each step ends (finished, failed or skipped), with its output text ("" when it has
  // none) and, when it completed its workflow, that workflow's record (after the step's own
  // record, as the harness logged a workflow after its last step): for journaling and the live
  // --seed-log lines.
  std::function<void(const report::StepRecord&, const std::string& output,
                     const report::WorkflowRecord* workflow)>
      on_step;
};

struct ExecutionResult {
  std::vector<report::StepRecord> steps;  // finished, failed (finish "error") and skipped ones
  std::vector<report::WorkflowRecord> workflows;  // only workflows whose every step finished
  std::map<std::pair<int32_t, int32_t>, std::string> outputs;  // filled when keep_outputs
  int32_t steps_total = 0;
  int32_t steps_resumed = 0;  // taken from options.done
  int32_t steps_failed = 0;   // rejected by the engine (bad prompt), each recorded with its error
  int32_t steps_skipped = 0;  // not run because a step they use failed
  bool interrupted = false;   // stopped by options.stop or options.abort
  std::exception_ptr error;   // the engine failed; what finished before is kept
};

engine::SamplingParams to_sampling_params(const flow::StepSampling& s);

// Runs the workflows of `job` whose indices are in `workflows` (this rank's shard) to completion.
// A step the engine rejects (InputError from submit: a prompt longer than the context, say) fails
// alone: its record says why, the steps that use it are recorded as skipped, everything else runs.
// Never throws for a failure mid-run: it returns the finished steps with `error` set, so the caller
// can flush a partial report before reporting the error.
ExecutionResult execute(const flow::ExpandedJob& job, const std::vector<int32_t>& workflows,
                        engine::Engine& engine, const ExecutorOptions& options);

}  // namespace flowrank::run
