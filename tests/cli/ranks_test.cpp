// Many ranks, end to end, on the CPU engine under Open MPI's mpirun (--oversubscribe: more ranks
// than this machine's cores): every workflow exactly once with the single-process hashes, no MPI
// at all in a local run, journals, --resume, --recover, SIGTERM, kill -9, mismatched jobs, one bad
// step. Every wait below waits for a condition (a journal entry, a process exit), bounded so a
// hang fails instead of blocking CI.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "../support/shell_command.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/report/hdf5_report.hpp"
#include "flowrank/report/journal.hpp"

namespace fs = std::filesystem;
using flowrank::report::RunReport;

namespace {

const std::string kBin = FLOWRANK_BINARY;
const std::string kSrc = FLOWRANK_SOURCE_DIR;
const std::string kModel = kSrc + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
// Root may run mpirun in CI; --oversubscribe: three ranks on two cores.
const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
    "mpirun --oversubscribe";

using Result = flowrank::test_shell::CommandResult;
using flowrank::test_shell::sh;

// A command in the background, its output in a file.
struct Background {
  pid_t pid = -1;
  fs::path log;
  int wait_exit(int timeout_s) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    int status = 0;
    while (std::chrono::steady_clock::now() < end) {
      if (waitpid(pid, &status, WNOHANG) == pid)
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;  // timed out
  }
  std::string output() const { return flowrank::read_file(log); }
};

Background start(const std::string& cmd, const fs::path& log) {
  Background b;
  b.log = log;
  b.pid = fork();
  if (b.pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", (cmd + " > " + log.string() + " 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return b;
}

// Polls until `pred` holds; false after `timeout_s`.
template <class F>
bool eventually(F pred, int timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Steps with an output in one journal (0 while it is missing or has no header yet).
std::size_t journaled_steps(const fs::path& journal) {
  try {
    return flowrank::report::read_journal(journal).records.outputs.size();
  } catch (const std::exception&) {
    return 0;
  }
}

std::string journal_attr(const fs::path& journal, const std::string& key) {
  return flowrank::report::read_journal(journal).header.attrs.at(key);
}

using Hashes = std::map<std::pair<int32_t, int32_t>, std::string>;

Hashes hashes_of(const RunReport& r) {
  Hashes h;
  for (const auto& s : r.steps) {
    if (!s.error.empty()) continue;
    EXPECT_TRUE(h.emplace(std::make_pair(s.workflow, s.step), s.output_sha256_8).second)
        << "step (" << s.workflow << ", " << s.step << ") twice";
  }
  return h;
}

class Ranks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kModel) || sh("command -v mpirun").code != 0) return;
    dir_ = fs::temp_directory_path() / ("flowrank_ranks_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    write_job(dir_, "job.toml", "");
    // The reference: one process, no launcher, and MPI made impossible to start (a pml
    // component that does not exist): it must not even try.
    reference_ = new Result(sh(env() + "OMPI_MCA_pml=no_such_component " + kBin + " run " +
                               (dir_ / "job.toml").string() + " --progress off --out " +
                               (dir_ / "local.h5").string()));
  }
  static void TearDownTestSuite() {
    delete reference_;
    reference_ = nullptr;
    if (!::testing::Test::HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!fs::exists(kModel)) GTEST_SKIP() << "bundled model absent (scripts/fetch-model)";
    if (sh("command -v mpirun").code != 0) GTEST_SKIP() << "mpirun not installed";
    ASSERT_TRUE(reference_);
    ASSERT_EQ(reference_->code, 0) << reference_->out;
  }
  // Five two-step workflows over a tiny fixture, one engine thread per rank. The planners are
  // quick (4 tokens), the steps using them long enough (12) to be caught mid-run.
  static void write_job(const fs::path& dir, const std::string& name, const std::string& extra) {
    flowrank::write_file_atomic(dir / "fx" / "b.py", "def f():\n    return 1\n");
    flowrank::write_file_atomic(dir / "fx" / "a.md", "# Notes\n");
    flowrank::write_file_atomic(
        dir / "suite.json",
        R"({"name":"s","tasks":[{"id":"a","prompt":"Task A."},{"id":"b","prompt":"Task B, a )"
        R"(longer one than the rest."},{"id":"c","prompt":"Task C."},{"id":"d","prompt":"D."},)"
        R"({"id":"e","prompt":"Task E."}]})");
    flowrank::write_file_atomic(
        dir / "flow.json",
        R"({"name":"f","input":"Review.","steps":[{"name":"plan","instruction":"Plan."},)"
        R"({"name":"act","instruction":"Act.","uses":["plan"]}]})");
    flowrank::write_file_atomic(dir / name,
                                "name = \"small\"\nflow = \"flow.json\"\n"
                                "fixtures = \"fx\"\nsuite = \"suite.json\"\n"
                                "workflows = 5\ndevice = \"cpu\"\nmodel = \"" +
                                    kModel + "\"\n" + extra +
                                    "[sampling]\nmax_tokens = 4\ntemperature = 0.7\n"
                                    "seed = 11\n[steps.act]\nmax_tokens = 12\n"
                                    "[engine]\nthreads = 1\n");
  }
  static std::string env() { return "FLOWRANK_CACHE_DIR=" + (dir_ / "cache").string() + " "; }
  static Result mpirun(int np, const std::string& args) {
    return sh(env() + kMpirun + " -np " + std::to_string(np) + " " + kBin + " " + args);
  }
  static std::string run_args(const std::string& out) {
    return "run " + (dir_ / "job.toml").string() + " --progress off --out " + (dir_ / out).string();
  }
  static Hashes reference() {
    return hashes_of(flowrank::report::read_report_hdf5(dir_ / "local.h5"));
  }

  static inline fs::path dir_;
  static inline Result* reference_ = nullptr;
};

}  // namespace

// The local reference ran with MPI made impossible to start (a pml component that does not
// exist). Under mpirun the same command fails with that one variable and succeeds without it, so
// the poison breaks exactly MPI's start-up, and the local run's success proves it never called
// MPI_Init. That it failed at MPI's start is shown by our own state, not Open MPI's words (it may
// lose them while the job tears down; in CI its show_help said "Out of resource" and nothing else):
// journals are opened right after the world is set up, and there are none.
TEST_F(Ranks, LocalRunNeverCallsMpiInit) {
  const RunReport local = flowrank::report::read_report_hdf5(dir_ / "local.h5");
  EXPECT_EQ(local.steps.size(), 10u);
  for (const auto& p : local.phases) {
    EXPECT_NE(p.phase, "nccl_init");
    EXPECT_NE(p.phase, "flow_broadcast");
    EXPECT_NE(p.phase, "gather");
    if (p.phase == "world_init") {
      EXPECT_LT(p.duration_s, 0.001);
    }
  }
  const Result poisoned = sh(env() + "OMPI_MCA_pml=no_such_component " + kMpirun +
                             " -x OMPI_MCA_pml -np 1 " + kBin + " " + run_args("never.h5"));
  EXPECT_NE(poisoned.code, 0) << poisoned.out;
  EXPECT_FALSE(fs::exists(dir_ / "never.h5"));
  EXPECT_FALSE(fs::exists(dir_ / "never.h5.journal")) << poisoned.out;
  const Result clean = mpirun(1, run_args("control.h5"));
  ASSERT_EQ(clean.code, 0) << clean.out;
  EXPECT_TRUE(fs::exists(dir_ / "control.h5.journal"));  // where the poisoned run would have one
  EXPECT_EQ(hashes_of(flowrank::report::read_report_hdf5(dir_ / "control.h5")), reference());
}

// 1, 2 and 3 ranks: every workflow exactly once, the single-process hashes, every rank in the
// report with its phases, and the plan naming a rank for every workflow.
TEST_F(Ranks, OneTwoThreeRanksGiveTheSingleProcessHashes) {
  const Hashes want = reference();
  ASSERT_EQ(want.size(), 10u);
  for (int np : {1, 2, 3}) {
    SCOPED_TRACE("np " + std::to_string(np));
    const std::string out = "np" + std::to_string(np) + ".h5";
    const Result r = mpirun(np, run_args(out));
    ASSERT_EQ(r.code, 0) << r.out;
    const RunReport rep = flowrank::report::read_report_hdf5(dir_ / out);
    EXPECT_EQ(hashes_of(rep), want);
    EXPECT_EQ(rep.attrs.world_size, np);
    ASSERT_EQ(rep.ranks.size(), static_cast<std::size_t>(np));
    std::set<int32_t> ranks_with_run;
    for (const auto& p : rep.phases)
      if (p.phase == "run") ranks_with_run.insert(p.rank);
    EXPECT_EQ(ranks_with_run.size(), static_cast<std::size_t>(np));
    for (const auto& k : rep.ranks) EXPECT_EQ(k.status, "complete") << k.rank;
    ASSERT_EQ(rep.plan.size(), 5u);
    for (const auto& s : rep.steps) EXPECT_EQ(s.rank, rep.plan.at(s.workflow).rank);
    if (np > 1) {
      std::set<std::string> phases;
      for (const auto& p : rep.phases) phases.insert(p.phase);
      for (const char* want_phase :
           {"world_init", "flow_broadcast", "engine_preload", "run", "gather"})
        EXPECT_TRUE(phases.count(want_phase)) << want_phase;
    }
  }
}

#ifdef FLOWRANK_FAKE_NVML
// Energy on two ranks against the stand-in NVML (a constant 150.5 W): each rank samples its own
// board (entry <local rank> of CUDA_VISIBLE_DEVICES) and attributes its own phases and steps; the
// report has both side by side, and each rank prints its own [TARGET] lines live.
TEST_F(Ranks, EveryRankMeasuresItsOwnBoard) {
  const std::string nvml =
      std::string("CUDA_VISIBLE_DEVICES=3,3 FLOWRANK_NVML_LIBRARY=") + FLOWRANK_FAKE_NVML + " ";
  const Result r = sh(env() + nvml + kMpirun + " -np 2 " + kBin + " " + run_args("energy.h5") +
                      " --energy on --seed-log");
  ASSERT_EQ(r.code, 0) << r.out;
  const RunReport rep = flowrank::report::read_report_hdf5(dir_ / "energy.h5");
  EXPECT_EQ(hashes_of(rep), reference());
  ASSERT_TRUE(rep.energy.has_value());
  EXPECT_EQ(rep.attrs.extra.at("energy"), "measured");
  const std::string board = "nvml: Fake GPU (GPU 3), every 20 ms, energy counter";
  ASSERT_EQ(rep.ranks.size(), 2u);
  for (const auto& k : rep.ranks) EXPECT_EQ(k.energy, board) << k.rank;
  EXPECT_EQ(rep.energy->source, "rank 0: " + board + "; rank 1: " + board);
  std::set<int32_t> sampled;
  for (const auto& x : rep.energy->samples) sampled.insert(x.rank);
  EXPECT_EQ(sampled, (std::set<int32_t>{0, 1}));

  // Every rank's run phase has its energy: 150.5 W over its duration; the gather has none.
  int runs = 0;
  for (const auto& p : rep.energy->phases) {
    EXPECT_NE(p.phase, "gather");
    if (p.phase != "run") continue;
    ++runs;
    EXPECT_NEAR(p.energy_j, 150.5 * p.duration_s, 0.01 * 150.5 * p.duration_s + 0.05) << p.rank;
  }
  EXPECT_EQ(runs, 2);
  // Every step's share, on the rank that ran it.
  std::set<std::tuple<int32_t, int32_t, int32_t>> steps, shares;
  for (const auto& s : rep.steps) steps.insert({s.rank, s.workflow, s.step});
  for (const auto& e : rep.energy->steps) shares.insert({e.rank, e.workflow, e.step});
  EXPECT_EQ(shares, steps);

  int targets = 0;
  for (std::size_t at = r.out.find("[TARGET] flow="); at != std::string::npos;
       at = r.out.find("[TARGET] flow=", at + 1))
    ++targets;
  EXPECT_EQ(targets, 10) << r.out;
}
#endif

// Ranks started with different job files are refused at start, naming both hashes.
TEST_F(Ranks, MismatchedJobsAreRefusedNamingBothHashes) {
  write_job(dir_, "other.toml", "# another job file\n");
  const std::string cmd = env() + kMpirun + " -np 1 " + kBin + " run " +
                          (dir_ / "job.toml").string() + " --progress off : -np 1 " + kBin +
                          " run " + (dir_ / "other.toml").string() + " --progress off";
  const Result r = sh(cmd);
  EXPECT_NE(r.code, 0) << r.out;
  const std::string a = flowrank::read_file(dir_ / "job.toml");
  const std::string b = flowrank::read_file(dir_ / "other.toml");
  const std::size_t at = r.out.find("flowrank: rank 1 on ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
  EXPECT_NE(line.find("job sha256"), std::string::npos) << line;
  EXPECT_NE(line.find("rank 0 with job sha256"), std::string::npos) << line;
}

// SIGTERM to one rank (as Slurm sends it) stops every rank, the stop travelling over the peer
// watch (--grace 0: at once; the grace period is the executor tests' business): a partial
// report, exit 143; --resume then runs only the rest, and the hashes are the
// single-process ones.
TEST_F(Ranks, SigtermStopsEveryRankThenResumeCompletes) {
  const fs::path journals = dir_ / "term.h5.journal";
  Background b =
      start(env() + kMpirun + " -np 2 " + kBin + " " + run_args("term.h5") + " --grace 0",
            dir_ / "term.log");
  ASSERT_TRUE(eventually([&] { return journaled_steps(journals / "rank-1.journal") >= 1; }, 120))
      << b.output();
  const pid_t rank1 = std::stoi(journal_attr(journals / "rank-1.journal", "pid"));
  ASSERT_EQ(kill(rank1, SIGTERM), 0);
  const int code = b.wait_exit(120);
  EXPECT_EQ(code, 143) << b.output();
  const RunReport partial = flowrank::report::read_report_hdf5(dir_ / "term.h5");
  EXPECT_LT(partial.steps.size(), 10u) << b.output();
  EXPECT_NE(partial.attrs.extra.at("status").find("interrupted"), std::string::npos);
  // The signalled rank stops; the other may have finished its share before the stop reached it
  // (seen in a clean-clone run of .ci/run), and is then "complete" with all its steps done.
  for (const auto& k : partial.ranks) {
    if (k.rank == 1 || k.status != "complete") {
      EXPECT_EQ(k.status, "interrupted") << k.rank;
    } else {
      EXPECT_EQ(k.steps_done, k.steps_total) << k.rank;
    }
  }

  const Result resumed = mpirun(3, run_args("term.h5") + " --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("[resume] " + std::to_string(partial.steps.size()) + " steps"),
            std::string::npos)
      << resumed.out;
  EXPECT_EQ(hashes_of(flowrank::report::read_report_hdf5(dir_ / "term.h5")), reference());
}

// kill -9 of a rank mid-run: the job ends within seconds, one line names the rank and its host,
// and every step finished anywhere is in the journals: --recover rebuilds them into a report.
TEST_F(Ranks, KilledRankEndsTheJobAndItsStepsAreRecoverable) {
  const fs::path journals = dir_ / "kill.h5.journal";
  Background b =
      start(env() + kMpirun + " -np 2 " + kBin + " " + run_args("kill.h5"), dir_ / "kill.log");
  ASSERT_TRUE(eventually([&] { return journaled_steps(journals / "rank-1.journal") >= 1; }, 120))
      << b.output();
  const std::string host = journal_attr(journals / "rank-1.journal", "host");
  const pid_t rank1 = std::stoi(journal_attr(journals / "rank-1.journal", "pid"));
  const std::size_t rank1_steps = journaled_steps(journals / "rank-1.journal");
  ASSERT_EQ(kill(rank1, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  const int code = b.wait_exit(60);
  ASSERT_NE(code, -1) << "the job did not end\n" << b.output();
  EXPECT_NE(code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(30));
  EXPECT_NE(b.output().find("flowrank: rank 1 on " + host + " died"), std::string::npos)
      << b.output();

  const Result rec = sh(kBin + " report --recover " + journals.string() + " --out " +
                        (dir_ / "recovered.h5").string());
  ASSERT_EQ(rec.code, 0) << rec.out;
  const RunReport recovered = flowrank::report::read_report_hdf5(dir_ / "recovered.h5");
  const Hashes got = hashes_of(recovered);
  EXPECT_GE(got.size(), rank1_steps);
  const Hashes want = reference();
  for (const auto& [key, hash] : got) EXPECT_EQ(hash, want.at(key));
  bool lost = false;
  for (const auto& k : recovered.ranks) lost = lost || (k.rank == 1 && k.status == "lost");
  EXPECT_TRUE(lost);
}

// One over-long prompt fails alone: its record says why, the step using it is skipped, every
// other workflow runs to the end, and the run exits 2.
TEST_F(Ranks, OverLongPromptFailsAlone) {
  const fs::path d = dir_ / "long";
  write_job(d, "job.toml", "");
  std::string huge;
  for (int i = 0; i < 12000; ++i) huge += "word" + std::to_string(i % 97) + " ";
  flowrank::write_file_atomic(d / "suite.json",
                              R"({"name":"s","tasks":[{"id":"a","prompt":"Task A."},{"id":"b",)"
                              R"("prompt":")" +
                                  huge +
                                  R"("},{"id":"c","prompt":"Task C."},)"
                                  R"({"id":"d","prompt":"D."},{"id":"e","prompt":"Task E."}]})");
  const Result r = sh(env() + kBin + " run " + (d / "job.toml").string() +
                      " --progress off --out " + (d / "r.h5").string());
  EXPECT_EQ(r.code, 2) << r.out;
  const RunReport rep = flowrank::report::read_report_hdf5(d / "r.h5");
  ASSERT_EQ(rep.steps.size(), 10u);
  for (const auto& s : rep.steps) {
    if (s.workflow != 1) {
      EXPECT_EQ(s.error, "") << s.workflow;
      continue;
    }
    EXPECT_EQ(s.finish, s.step == 0 ? "error" : "skipped");
    if (s.step == 0) {
      EXPECT_NE(s.error.find("exceeds the model context"), std::string::npos) << s.error;
    }
  }
  EXPECT_EQ(rep.workflows.size(), 4u);
}
