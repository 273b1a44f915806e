// A switching user's path from the seed harness, end to end through the binary: its own input
// files, its prompt bytes (--dump/--hashes), its log lines on its streams (run --seed-log), and
// energy figures (against a stand-in NVML library).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "flowrank/report/hdf5_report.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kBin = FLOWRANK_BINARY;
const std::string kSrc = FLOWRANK_SOURCE_DIR;
const std::string kModel = kSrc + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Streams {
  int code = -1;
  std::string out, err;
};

class HarnessCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flowrank_compat_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // Runs the binary with stdout and stderr captured apart.
  Streams flowrank(const std::string& args, const std::string& env = "") {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string cmd = "FLOWRANK_CACHE_DIR=" + (dir_ / "cache").string() + " " + env + " " +
                            kBin + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(cmd.c_str());
    Streams s;
    s.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    s.out = flowrank::read_file(out);
    s.err = flowrank::read_file(err);
    return s;
  }
  void write(const std::string& rel, const std::string& bytes) {
    flowrank::write_file_atomic(dir_ / rel, bytes);
  }
  // The harness's three input files in its own formats, and a fixture tree with one file for
  // each of its loader's rules. `extra` goes into the job.
  fs::path write_harness_job(const std::string& extra) {
    write(
        "h/flows/three_step.json",
        R"({"input": "Review the code.", "steps": [)"
        R"({"name": "planner", "instruction": "Plan."}, {"name": "executor", "instruction": "Do."}]})");
    write("h/flows/prompt_suite.json", R"(["Task one.", "Task two."])");
    write("h/fx/a.py", "def f():\r\n    return 1\r\n");  // CRLF: read as LF
    write("h/fx/sub/b.md", "# Notes\n");
    write("h/fx/.env", "SECRET=1\n");
    write("h/fx/__pycache__/a.cpython-311.pyc", "\x01");
    write("h/fx/tool.sh", "echo\n");
    write(
        "job.toml",
        "name = \"h\"\nflow = \"h/flows/three_step.json\"\nsuite = \"h/flows/prompt_suite.json\"\n"
        "fixtures = \"h/fx\"\nworkflows = 2\nmodel = \"" +
            kModel + "\"\n" + extra);
    return dir_ / "job.toml";
  }
  fs::path dir_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(HarnessCompat, HarnessFilesExpandOnTheFirstTryWithTheHarnessBytes) {
  const fs::path job = write_harness_job("");
  const Streams s =
      flowrank("expand " + job.string() + " --hashes --dump " + (dir_ / "prompts").string());
  ASSERT_EQ(s.code, 0) << s.err;
  // Each skipped entry named on its own warning line; stdout only the hash lines.
  for (const char* skipped :
       {"h/fx/.env: skipped", "h/fx/__pycache__/: skipped", "h/fx/tool.sh: skipped"})
    EXPECT_NE(s.err.find(skipped), std::string::npos) << s.err;
  const auto hashes = lines_of(s.out);
  ASSERT_EQ(hashes.size(), 4u) << s.out;
  // The seed harness's prompt at fa357ea, written out by hand: sorted order, CRLF read as LF.
  const std::string planner_1 =
      "Instruction: Plan.\n\nInput: Task one.\n\nReview the code.\n\n"
      "===== FILE: a.py =====\ndef f():\n    return 1\n\n\n"
      "===== FILE: sub/b.md =====\n# Notes\n\n";
  EXPECT_EQ(flowrank::read_file(dir_ / "prompts/01-planner.txt"), planner_1);
  for (const std::string& line : hashes) {
    const std::string file = line.substr(66);
    EXPECT_EQ(line.substr(0, 64),
              flowrank::sha256_hex(flowrank::read_file(dir_ / "prompts" / file)))
        << line;
  }
  EXPECT_EQ(hashes[0], flowrank::sha256_hex(planner_1) + "  01-planner.txt");
  EXPECT_EQ(hashes[3].substr(64), "  02-executor.txt");
}

// Live lines during the run, parsed with the patterns the harness's run.sh used (from the
// documented format), on the harness's streams; the report's prompt hashes match expand's.
TEST_F(HarnessCompat, RunSeedLogOnTheHarnessStreams) {
  if (!fs::exists(kModel)) GTEST_SKIP() << "bundled model absent (scripts/fetch-model)";
  const fs::path job = write_harness_job("[sampling]\nmax_tokens = 3\nseed = 5\n");
  const fs::path report = dir_ / "r.h5";
  const Streams s =
      flowrank("run " + job.string() + " --seed-log --keep-outputs --out " + report.string());
  ASSERT_EQ(s.code, 0) << s.err;

  const std::regex target(
      R"(^\[TARGET\] flow=(\d+) step=(\S+) latency_ms=([0-9.]+) prompt_tokens=([0-9]+) )"
      R"(decode_tokens=([0-9]+) prefill_tokens=([0-9]+) reused_tokens=([0-9]+)$)");
  const std::regex timing(R"(^\[TIMING\] (\w+?)(?:=([0-9.]+))?(?: \((cached|generated)\))?$)");
  std::vector<std::string> order;
  int targets = 0;
  for (const std::string& line : lines_of(s.err)) {
    std::smatch m;
    if (std::regex_match(line, m, target)) {
      ++targets;
      EXPECT_EQ(std::stol(m[4]), std::stol(m[6]) + std::stol(m[7])) << line;
      EXPECT_LE(std::stol(m[5]), 3) << line;
      order.push_back("target " + m[1].str() + " " + m[2].str());
    } else if (std::regex_match(line, m, timing)) {
      order.push_back(m[1]);
    }
    EXPECT_EQ(line.find("[INPUT]"), std::string::npos) << "[INPUT] belongs on stdout: " << line;
  }
  EXPECT_EQ(targets, 4) << s.err;
  const std::vector<std::string> expected = {
      "flow_expansion_ms", "engine_init_start",  "engine_init_ms",   "target 1 planner",
      "target 1 executor", "workflow_1_ms",      "target 2 planner", "target 2 executor",
      "workflow_2_ms",     "benchmark_total_ms", "avg_workflow_ms"};
  // Workflows run side by side, so which finishes first is the engine's business; each
  // workflow's lines keep their order.
  std::vector<std::string> sorted_order = order, sorted_expected = expected;
  std::sort(sorted_order.begin(), sorted_order.end());
  std::sort(sorted_expected.begin(), sorted_expected.end());
  EXPECT_EQ(sorted_order, sorted_expected) << s.err;
  EXPECT_EQ(order.front(), "flow_expansion_ms");
  EXPECT_EQ(order[1], "engine_init_start");
  EXPECT_EQ(order[2], "engine_init_ms");
  EXPECT_EQ(order[order.size() - 2], "benchmark_total_ms");
  int inputs = 0;
  for (const std::string& line : lines_of(s.out)) {
    inputs += line == "[INPUT] fixture_bytes=30 fixture_files=2";  // 22 + 8 bytes as text
    EXPECT_EQ(line.find("[TARGET]"), std::string::npos) << line;
  }
  EXPECT_EQ(inputs, 2) << s.out;

  // The report's prompt hashes are the ones expand builds from the same outputs.
  const auto rep = flowrank::report::read_report_hdf5(report);
  const Streams e = flowrank("expand " + job.string() + " --hashes --outputs " + report.string());
  ASSERT_EQ(e.code, 0) << e.err;
  for (const auto& step : rep.steps) {
    const std::string file = "0" + std::to_string(step.workflow + 1) + "-" + step.name + ".txt";
    EXPECT_NE(e.out.find(step.prompt_sha256_8), std::string::npos) << file << "\n" << e.out;
    EXPECT_EQ(e.out.find(step.prompt_sha256_8), e.out.find("  " + file) - 64) << file;
  }
  EXPECT_EQ(rep.attrs.extra.at("energy"), "absent: the engine ran on the CPU");
  EXPECT_FALSE(rep.energy.has_value());
}

#ifdef FLOWRANK_FAKE_NVML
// Energy end to end with a stand-in NVML that reports a constant 150.5 W and a counter to match:
// the report carries /energy, `flowrank report` prints it, and the harness's power_w/energy_j
// fields appear on the [TARGET] lines.
TEST_F(HarnessCompat, EnergyFromBoardPower) {
  if (!fs::exists(kModel)) GTEST_SKIP() << "bundled model absent (scripts/fetch-model)";
  const fs::path job = write_harness_job("[sampling]\nmax_tokens = 3\n");
  const fs::path report = dir_ / "e.h5";
  const std::string env =
      std::string("CUDA_VISIBLE_DEVICES=3 FLOWRANK_NVML_LIBRARY=") + FLOWRANK_FAKE_NVML;
  const Streams s =
      flowrank("run " + job.string() + " --energy on --progress off --out " + report.string(), env);
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.out.find("energy (nvml: Fake GPU (GPU 3), every 20 ms, energy counter): run "),
            std::string::npos)
      << s.out;
  const auto rep = flowrank::report::read_report_hdf5(report);
  ASSERT_TRUE(rep.energy.has_value());
  EXPECT_EQ(rep.attrs.extra.at("energy"), "measured");
  double run_s = 0;
  for (const auto& p : rep.phases)
    if (p.phase == "run") run_s += p.duration_s;
  const Streams j = flowrank("report --format json " + report.string());
  ASSERT_EQ(j.code, 0) << j.err;
  const auto summary = nlohmann::json::parse(j.out);
  const double run_j = summary["energy"]["run_energy_j"].get<double>();
  EXPECT_NEAR(run_j, 150.5 * run_s, 0.01 * 150.5 * run_s + 0.05);
  int64_t tokens = 0;
  for (const auto& st : rep.steps) tokens += st.prompt_tokens + st.decode_tokens;
  EXPECT_DOUBLE_EQ(summary["energy"]["tokens_per_j"].get<double>(), tokens / run_j);

  const Streams log = flowrank("report --seed-log " + report.string());
  const std::regex energy_fields(R"(power_w=([0-9.]+) energy_j=([0-9.]+)$)");
  int with_energy = 0;
  double shares = 0;
  for (const std::string& line : lines_of(log.err)) {
    std::smatch m;
    if (line.rfind("[TARGET]", 0) != 0 || !std::regex_search(line, m, energy_fields)) continue;
    ++with_energy;
    EXPECT_NEAR(std::stod(m[1]), 150.5, 1.0) << line;
    shares += std::stod(m[2]);
  }
  EXPECT_EQ(with_energy, 4) << log.err;
  EXPECT_GT(shares, 0.0);
  EXPECT_LE(shares, run_j + 0.05);  // the steps' shares never exceed the run's energy

  // On the CPU engine without --energy on: absent, and said why.
  const Streams cpu =
      flowrank("run " + job.string() + " --progress off --out " + (dir_ / "c.h5").string(), env);
  ASSERT_EQ(cpu.code, 0) << cpu.err;
  const auto cpu_rep = flowrank::report::read_report_hdf5(dir_ / "c.h5");
  EXPECT_FALSE(cpu_rep.energy.has_value());
  EXPECT_EQ(cpu_rep.attrs.extra.at("energy"), "absent: the engine ran on the CPU");
  EXPECT_EQ(cpu.out.find("energy ("), std::string::npos);
}
#endif

}  // namespace
