#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowrank::cli {

struct RunArgs {
  std::string job;
  std::optional<std::string> out, device, model;
  std::optional<int64_t> workflows;
  bool keep_outputs = false;
  bool no_cache = false;
  bool no_prefix_cache = false;
  std::string progress = "auto";  // auto | live | lines | off
  bool seed_log = false;          // print the seed harness's log lines live, on its streams
  std::string energy = "auto";    // auto (GPU engine only) | on | off
};
int run_command(const RunArgs& args);

struct ExpandArgs {
  std::string job;
  std::optional<std::string> model;
  std::optional<int64_t> workflows;
  bool explain = false;
  bool no_cache = false;
  std::optional<std::string> dump_dir;  // write each prompt to DIR/<workflow>-<step>.txt
  bool hashes = false;                  // print each prompt's sha256 (sha256sum format)
  std::optional<std::string> outputs;   // report (--keep-outputs) giving earlier steps' outputs
};
int expand_command(const ExpandArgs& args);

struct ReportArgs {
  std::string file;
  std::string format = "table";  // table | json
  bool seed_log = false;
};
int report_command(const ReportArgs& args);

int model_info_command(const std::string& spec);

struct GenerateArgs {
  std::string model;
  std::string prompt;
  bool chat = false;
  int32_t max_tokens = 64;
  float temperature = 0.0f;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::string device = "auto";
};
int generate_command(const GenerateArgs& args);

struct BenchArgs {
  std::string model;
  std::string device = "auto";
  std::vector<int32_t> prompt_tokens{512};
  std::vector<int32_t> gen_tokens{64};
  std::vector<int32_t> batch{1, 16};
  int32_t threads = 0;
  bool no_batch_invariance = false;
  std::string format = "table";  // table | json
};
int bench_command(const BenchArgs& args);

}  // namespace flowrank::cli
