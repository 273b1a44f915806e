// End-to-end tests of the flowrank binary: exit codes, one-line errors, the flow cache across
// processes, and the quickstart job on the bundled model.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../support/shell_command.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/report/hdf5_report.hpp"

namespace fs = std::filesystem;

namespace {

using Result = flowrank::test_shell::CommandResult;
using flowrank::test_shell::sh;

const std::string kBin = FLOWRANK_BINARY;
const std::string kSrc = FLOWRANK_SOURCE_DIR;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flowrank_cli_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    env_ = "FLOWRANK_CACHE_DIR=" + (dir_ / "cache").string() + " ";
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  Result flowrank(const std::string& args) { return sh(env_ + kBin + " " + args); }
  // A small job in dir_: 2 fixture files, a 2-step chained flow, a 3-task suite.
  fs::path write_small_job(const std::string& extra = "") {
    flowrank::write_file_atomic(dir_ / "fx" / "b.py", "def f():\n    return 1\n");
    flowrank::write_file_atomic(dir_ / "fx" / "a.md", "# Notes\n");
    flowrank::write_file_atomic(dir_ / "suite.json",
                                R"({"name":"s","tasks":[{"id":"a","prompt":"Task A."},)"
                                R"({"id":"b","prompt":"Task B."},{"id":"c","prompt":"Task C."}]})");
    flowrank::write_file_atomic(
        dir_ / "flow.json",
        R"({"name":"f","input":"Review.","steps":[{"name":"plan","instruction":"Plan."},)"
        R"({"name":"act","instruction":"Act.","uses":["plan"]}]})");
    flowrank::write_file_atomic(dir_ / "job.toml",
                                "name = \"small\"\nflow = \"flow.json\"\n"
                                "fixtures = \"fx\"\nsuite = \"suite.json\"\n"
                                "workflows = 3\n" +
                                    extra);
    // The cache trusts a file's size + mtime only once its mtime is safely in the past (a file
    // rewritten within one timestamp tick keeps its mtime); age the files as a user's would be.
    for (const char* f : {"fx/a.md", "fx/b.py", "suite.json", "flow.json", "job.toml"})
      fs::last_write_time(dir_ / f, fs::file_time_type::clock::now() - std::chrono::minutes(5));
    return dir_ / "job.toml";
  }
  fs::path dir_;
  std::string env_;
};

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_F(Cli, HelpOnEverySubcommand) {
  for (const char* sub : {"run", "expand", "report", "model info", "generate", "bench"}) {
    auto r = flowrank(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub << "\n" << r.out;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST_F(Cli, BadJobIsOneLineExitTwo) {
  const fs::path job = write_small_job("colour = \"blue\"\n");
  auto r = flowrank("expand " + job.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find(job.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("colour"), std::string::npos) << r.out;
}

TEST_F(Cli, MissingJobFileIsOneLineExitTwo) {
  auto r = flowrank("run " + (dir_ / "nope.toml").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("nope.toml"), std::string::npos);
}

TEST_F(Cli, BadFlowNamesTheFlowFile) {
  const fs::path job = write_small_job();
  flowrank::write_file_atomic(dir_ / "flow.json",
                              R"({"name":"f","input":"x","steps":[{"name":"a","instruction":"i",)"
                              R"("uses":["b"]},{"name":"b","instruction":"j"}]})");
  auto r = flowrank("expand " + job.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("flow.json"), std::string::npos) << r.out;
}

TEST_F(Cli, MissingModelIsOneLineExitTwoAndNoReport) {
  const fs::path job =
      write_small_job("model = \"missing.gguf\"\noutput = \"" + (dir_ / "r.h5").string() + "\"\n");
  auto r = flowrank("run " + job.string() + " --progress off");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("missing.gguf"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "r.h5"));
}

TEST_F(Cli, UnknownCpuKernelChoiceIsOneLineExitTwo) {
  auto r = sh("FLOWRANK_CPU_KERNELS=avx9000 " + kBin +
              " generate --device cpu --max-tokens 1 --prompt hi");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(r.out, "flowrank: FLOWRANK_CPU_KERNELS='avx9000': expected portable, avx2 or avx512\n");
}

TEST_F(Cli, ExpandMissThenHitAcrossProcesses) {
  const fs::path job = write_small_job();
  auto first = flowrank("expand " + job.string());
  ASSERT_EQ(first.code, 0) << first.out;
  EXPECT_NE(first.out.find("cache miss"), std::string::npos) << first.out;
  auto second = flowrank("expand " + job.string());
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_NE(second.out.find("cache hit"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("(0 read)"), std::string::npos) << second.out;
  // One changed fixture byte: a miss again.
  flowrank::write_file_atomic(dir_ / "fx" / "b.py", "def f():\n    return 2\n");
  fs::last_write_time(dir_ / "fx" / "b.py",
                      fs::file_time_type::clock::now() - std::chrono::minutes(1));
  auto third = flowrank("expand " + job.string());
  EXPECT_NE(third.out.find("cache miss"), std::string::npos) << third.out;
}

TEST_F(Cli, ReportOfGarbageFileIsOneLineExitTwo) {
  flowrank::write_file_atomic(dir_ / "x.h5", "not hdf5 at all");
  auto r = flowrank("report " + (dir_ / "x.h5").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("x.h5"), std::string::npos);
}

// The quickstart job, reduced to one workflow, on the bundled model: every step lands in the
// report, and the prefix cache served the shared fixture context to the later steps.
TEST_F(Cli, QuickstartOneWorkflowEndToEnd) {
  const std::string model = kSrc + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(model)) GTEST_SKIP() << "bundled model absent (scripts/fetch-model)";
  const fs::path out = dir_ / "q.h5";
  auto r = flowrank("run " + kSrc + "/jobs/quickstart.toml --workflows 1 --progress lines --out " +
                    out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  ASSERT_TRUE(fs::exists(out));
  const auto report = flowrank::report::read_report_hdf5(out);
  ASSERT_EQ(report.steps.size(), 3u);
  ASSERT_EQ(report.workflows.size(), 1u);
  EXPECT_EQ(report.attrs.job_name, "quickstart");
  // Engine counters: nothing preempted on an ample pool, and every token fed to the model is a
  // prompt token not served by the cache or a generated token fed back (all but the last).
  EXPECT_EQ(report.attrs.extra.at("engine_preemptions"), "0");
  int64_t fed = 0;
  for (const auto& s : report.steps) fed += s.prompt_tokens - s.cached_tokens + s.decode_tokens - 1;
  EXPECT_EQ(report.attrs.extra.at("engine_computed_tokens"), std::to_string(fed));
  for (const auto& s : report.steps) {
    EXPECT_EQ(s.workflow, 0);
    EXPECT_GT(s.prompt_tokens, 2000);  // ~3 K tokens of fixture context
    EXPECT_GT(s.decode_tokens, 0);
    EXPECT_LE(s.ttft_ms, s.latency_ms);
    EXPECT_EQ(s.output_sha256_8.size(), 8u);
    // The planner computes the context; the chained steps after it find it in the prefix cache.
    if (s.step == 0) {
      EXPECT_EQ(s.cached_tokens, 0);
    } else {
      EXPECT_GT(s.cached_tokens, 2000) << s.name;
    }
  }
  auto rep = flowrank("report --format json " + out.string());
  ASSERT_EQ(rep.code, 0) << rep.out;
  const auto j = nlohmann::json::parse(rep.out);
  EXPECT_FALSE(j.empty()) << rep.out;
  auto log = flowrank("report --seed-log " + out.string());
  ASSERT_EQ(log.code, 0);
  int targets = 0;
  std::size_t pos = 0;
  while ((pos = log.out.find("[TARGET]", pos)) != std::string::npos) ++targets, ++pos;
  EXPECT_EQ(targets, 3) << log.out;
}

// SIGTERM (what Slurm sends at the time limit) stops the run between engine iterations and the
// report keeps every step finished so far. The signal is sent once the first step has finished,
// as announced on the progress stream, so nothing here depends on timing.
TEST_F(Cli, SigtermWritesPartialReport) {
  const std::string model = kSrc + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(model)) GTEST_SKIP() << "bundled model absent (scripts/fetch-model)";
  const fs::path out = dir_ / "partial.h5";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(pipefd[1], STDERR_FILENO);
    close(pipefd[0]);
    setenv("FLOWRANK_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    const std::string job = kSrc + "/jobs/quickstart.toml";
    execl(kBin.c_str(), kBin.c_str(), "run", job.c_str(), "--workflows", "2", "--progress", "live",
          "--out", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  std::string err;
  char c;
  bool signalled = false;
  while (read(pipefd[0], &c, 1) == 1) {
    err += c;
    // The live line starts "steps N/6" after each iteration that finished a step.
    if (!signalled && err.find("steps 1/6") != std::string::npos) {
      kill(pid, SIGTERM);
      signalled = true;
    }
  }
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(signalled) << err;
  ASSERT_TRUE(WIFEXITED(status)) << err;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << err;
  EXPECT_NE(err.find("interrupted (SIGTERM)"), std::string::npos) << err;
  ASSERT_TRUE(fs::exists(out)) << err;
  const auto report = flowrank::report::read_report_hdf5(out);
  EXPECT_GE(report.steps.size(), 1u);
  EXPECT_LT(report.steps.size(), 6u);
  EXPECT_EQ(report.attrs.extra.at("status"), "interrupted (SIGTERM)");
  EXPECT_EQ(report.attrs.extra.at("steps_total"), "6");
}
