#pragma once
// Shared by the report tests: a hand-built multi-rank report, temp directories, running tools.
#include <sys/wait.h>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "../support/shell_command.hpp"
#include "flowrank/report/records.hpp"

namespace flowrank::report::testing_support {

// A fresh directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("flowrank-report-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

using flowrank::test_shell::CommandResult;
inline CommandResult run_command(const std::string& command) {
  return flowrank::test_shell::sh(command);
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline bool python_has_h5py_and_matplotlib() {
  if (!std::filesystem::exists("/usr/bin/python3")) return false;
  return run_command("/usr/bin/python3 -c 'import h5py, matplotlib'").code == 0;
}

// A workflow whose first step failed (an over-long prompt) and whose second was skipped.
inline void add_failed_workflow(RunReport& r, int32_t rank, int32_t workflow) {
  StepRecord failed;
  failed.rank = rank;
  failed.workflow = workflow;
  failed.step = 0;
  failed.name = "planner";
  failed.finish = "error";
  failed.error = "request 196608: prompt of 9000 tokens exceeds the model context of 8192";
  r.steps.push_back(failed);
  failed.step = 1;
  failed.name = "executor";
  failed.finish = "skipped";
  failed.error = "uses step planner, which failed";
  r.steps.push_back(failed);
}

// Two ranks, three workflows of three steps (one workflow unfinished), outputs with unicode,
// an empty output and an embedded NUL byte.
inline RunReport sample_report() {
  RunReport r;
  r.attrs.flowrank_version = "0.1.0";
  r.attrs.job_name = "seed-25x3";
  r.attrs.job_sha256 = std::string(64, 'a');
  r.attrs.model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  r.attrs.device = "cpu";
  r.attrs.world_size = 2;
  r.attrs.started_at = "2026-11-28T18:00:00Z";
  r.attrs.extra = {{"flow_cache", "hit"},
                   {"fixture_bytes", "115185"},
                   {"fixture_files", "40"},
                   {"note", "größe ✓"}};
  r.phases = {{0, "world_init", 0.0, 0.01},
              {1, "world_init", 0.0, 0.02},
              {0, "flow_expand", 0.01, 0.05},
              {0, "engine_preload", 0.06, 1.5},
              {1, "engine_preload", 0.06, 1.25},
              {0, "run", 1.56, 10.0},
              {1, "run", 1.31, 9.5},
              {0, "report_write", 11.56, 0.125}};
  const char* names[] = {"planner", "executor", "verifier"};
  int k = 0;
  for (int32_t wf = 0; wf < 3; ++wf) {
    for (int32_t step = 0; step < 3; ++step, ++k) {
      StepRecord s;
      s.rank = wf % 2;
      s.workflow = wf;
      s.step = step;
      s.name = names[step];
      s.prompt_tokens = 1000 + 10 * k;
      s.cached_tokens = 100 * step;
      s.decode_tokens = 50 + k;
      s.queued_ms = 0.5 * k;
      s.ttft_ms = 20.0 + k;
      s.latency_ms = 300.25 + 7 * k;
      s.start_s = 1.6 + k;
      s.end_s = 1.6 + k + 0.3;
      s.finish = step == 2 ? "stop" : "length";
      s.output_sha256_8 = "0123abc" + std::to_string(k % 10);
      s.prompt_sha256_8 = "feed00" + std::to_string(10 + k);
      r.steps.push_back(s);
    }
  }
  add_failed_workflow(r, 1, 3);
  r.workflows = {{0, 0, 1.6, 4.9, 3}, {1, 1, 4.6, 7.9, 3}, {0, 2, 7.6, 10.9, 3}};
  RankRecord r0;
  r0.rank = 0;
  r0.host = "node-a";
  r0.device = "cpu (2 threads)";
  r0.status = "complete";
  r0.workflows = 2;
  r0.steps_total = 6;
  r0.steps_done = 6;
  r0.engine_steps = int64_t{1} << 40;  // beyond int32
  r0.engine_computed_tokens = 123456789012;
  r0.kv_blocks = 512;
  r0.weights = "disk";
  r0.energy = "nvml: NVIDIA H200 (GPU 0), every 20 ms";
  RankRecord r1 = r0;
  r1.rank = 1;
  r1.host = "node-b";
  r1.status = "failed";
  r1.error = "engine: out of memory";
  r1.engine_steps = 7;
  r1.weights = "rank0";
  r1.energy = "nvml: NVIDIA H200 (GPU 1), every 20 ms";
  r.ranks = {r0, r1};
  r.plan = {{0, 0, 5200}, {1, 1, 5100}, {2, 0, 5000}, {3, 1, 9000}};
  r.outputs[{0, 0}] = "plan: naïve → 東京 🚀\nline two";
  r.outputs[{0, 1}] = "";
  r.outputs[{0, 2}] = std::string("nul\0inside", 10);
  r.outputs[{2, 1}] = "ok <END>";
  return r;
}

// Board power as a GPU run records it: samples and the derived phase and step energies.
inline EnergyReport sample_energy() {
  EnergyReport e;
  e.source = "nvml: NVIDIA H200 (GPU 0), every 20 ms";
  e.samples = {{0.5, 90.0, 1000.0}, {1.0, 120.5, 1052.5}, {6.0, 650.25, 3000.0}, {11.5, 130.0}};
  e.samples.push_back({0.75, 75.0, 20.0, 1});  // rank 1's board
  e.phases = {{0, "engine_preload", 0.06, 1.5, 150.0, 100.0},
              {0, "run", 1.56, 10.0, 4000.0, 400.0}};
  e.steps = {{0, 0, 0, 120.5, 610.0}, {1, 1, 2, 33.25, 590.5}};
  return e;
}

inline void expect_equal(const EnergyReport& a, const EnergyReport& b) {
  EXPECT_EQ(a.source, b.source);
  ASSERT_EQ(a.samples.size(), b.samples.size());
  for (size_t i = 0; i < a.samples.size(); ++i) {
    EXPECT_EQ(a.samples[i].rank, b.samples[i].rank);
    EXPECT_EQ(a.samples[i].t_s, b.samples[i].t_s);
    EXPECT_EQ(a.samples[i].power_w, b.samples[i].power_w);
    EXPECT_EQ(std::isnan(a.samples[i].counter_j), std::isnan(b.samples[i].counter_j));
    if (!std::isnan(a.samples[i].counter_j)) {
      EXPECT_EQ(a.samples[i].counter_j, b.samples[i].counter_j);
    }
  }
  ASSERT_EQ(a.phases.size(), b.phases.size());
  for (size_t i = 0; i < a.phases.size(); ++i) {
    EXPECT_EQ(a.phases[i].rank, b.phases[i].rank);
    EXPECT_EQ(a.phases[i].phase, b.phases[i].phase);
    EXPECT_EQ(a.phases[i].start_s, b.phases[i].start_s);
    EXPECT_EQ(a.phases[i].duration_s, b.phases[i].duration_s);
    EXPECT_EQ(a.phases[i].energy_j, b.phases[i].energy_j);
    EXPECT_EQ(a.phases[i].mean_power_w, b.phases[i].mean_power_w);
  }
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_EQ(a.steps[i].rank, b.steps[i].rank);
    EXPECT_EQ(a.steps[i].workflow, b.steps[i].workflow);
    EXPECT_EQ(a.steps[i].step, b.steps[i].step);
    EXPECT_EQ(a.steps[i].energy_j, b.steps[i].energy_j);
    EXPECT_EQ(a.steps[i].mean_power_w, b.steps[i].mean_power_w);
  }
}

// Field-by-field equality, each mismatch reported on its own.
inline void expect_equal(const RunReport& a, const RunReport& b) {
  EXPECT_EQ(a.attrs.flowrank_version, b.attrs.flowrank_version);
  EXPECT_EQ(a.attrs.job_name, b.attrs.job_name);
  EXPECT_EQ(a.attrs.job_sha256, b.attrs.job_sha256);
  EXPECT_EQ(a.attrs.model, b.attrs.model);
  EXPECT_EQ(a.attrs.device, b.attrs.device);
  EXPECT_EQ(a.attrs.world_size, b.attrs.world_size);
  EXPECT_EQ(a.attrs.started_at, b.attrs.started_at);
  EXPECT_EQ(a.attrs.extra, b.attrs.extra);
  ASSERT_EQ(a.phases.size(), b.phases.size());
  for (size_t i = 0; i < a.phases.size(); ++i) {
    SCOPED_TRACE("phase " + std::to_string(i));
    EXPECT_EQ(a.phases[i].rank, b.phases[i].rank);
    EXPECT_EQ(a.phases[i].phase, b.phases[i].phase);
    EXPECT_EQ(a.phases[i].start_s, b.phases[i].start_s);
    EXPECT_EQ(a.phases[i].duration_s, b.phases[i].duration_s);
  }
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const StepRecord& x = a.steps[i];
    const StepRecord& y = b.steps[i];
    EXPECT_EQ(x.rank, y.rank);
    EXPECT_EQ(x.workflow, y.workflow);
    EXPECT_EQ(x.step, y.step);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.prompt_tokens, y.prompt_tokens);
    EXPECT_EQ(x.cached_tokens, y.cached_tokens);
    EXPECT_EQ(x.decode_tokens, y.decode_tokens);
    EXPECT_EQ(x.queued_ms, y.queued_ms);
    EXPECT_EQ(x.ttft_ms, y.ttft_ms);
    EXPECT_EQ(x.latency_ms, y.latency_ms);
    EXPECT_EQ(x.start_s, y.start_s);
    EXPECT_EQ(x.end_s, y.end_s);
    EXPECT_EQ(x.finish, y.finish);
    EXPECT_EQ(x.output_sha256_8, y.output_sha256_8);
    EXPECT_EQ(x.error, y.error);
    EXPECT_EQ(x.prompt_sha256_8, y.prompt_sha256_8);
  }
  ASSERT_EQ(a.ranks.size(), b.ranks.size());
  for (size_t i = 0; i < a.ranks.size(); ++i) {
    SCOPED_TRACE("rank " + std::to_string(i));
    const RankRecord& x = a.ranks[i];
    const RankRecord& y = b.ranks[i];
    EXPECT_EQ(x.rank, y.rank);
    EXPECT_EQ(x.host, y.host);
    EXPECT_EQ(x.device, y.device);
    EXPECT_EQ(x.status, y.status);
    EXPECT_EQ(x.error, y.error);
    EXPECT_EQ(x.workflows, y.workflows);
    EXPECT_EQ(x.steps_total, y.steps_total);
    EXPECT_EQ(x.steps_done, y.steps_done);
    EXPECT_EQ(x.engine_steps, y.engine_steps);
    EXPECT_EQ(x.engine_preemptions, y.engine_preemptions);
    EXPECT_EQ(x.engine_evictions, y.engine_evictions);
    EXPECT_EQ(x.engine_computed_tokens, y.engine_computed_tokens);
    EXPECT_EQ(x.engine_cached_tokens, y.engine_cached_tokens);
    EXPECT_EQ(x.kv_blocks, y.kv_blocks);
    EXPECT_EQ(x.weights, y.weights);
    EXPECT_EQ(x.energy, y.energy);
  }
  ASSERT_EQ(a.plan.size(), b.plan.size());
  for (size_t i = 0; i < a.plan.size(); ++i) {
    EXPECT_EQ(a.plan[i].workflow, b.plan[i].workflow);
    EXPECT_EQ(a.plan[i].rank, b.plan[i].rank);
    EXPECT_EQ(a.plan[i].estimated_tokens, b.plan[i].estimated_tokens);
  }
  ASSERT_EQ(a.workflows.size(), b.workflows.size());
  for (size_t i = 0; i < a.workflows.size(); ++i) {
    SCOPED_TRACE("workflow " + std::to_string(i));
    EXPECT_EQ(a.workflows[i].rank, b.workflows[i].rank);
    EXPECT_EQ(a.workflows[i].workflow, b.workflows[i].workflow);
    EXPECT_EQ(a.workflows[i].start_s, b.workflows[i].start_s);
    EXPECT_EQ(a.workflows[i].end_s, b.workflows[i].end_s);
    EXPECT_EQ(a.workflows[i].steps, b.workflows[i].steps);
  }
  EXPECT_EQ(a.outputs, b.outputs);
  ASSERT_EQ(a.energy.has_value(), b.energy.has_value());
  if (a.energy) expect_equal(*a.energy, *b.energy);
}

}  // namespace flowrank::report::testing_support
