#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli_common.hpp"

namespace flowrank::cli {

struct RunArgs {
  std::string job;
  std::optional<std::string> out, device, model;
  std::optional<int64_t> workflows;
  bool keep_outputs = false;
  bool no_cache = false;
  bool no_prefix_cache = false;
  std::string progress = "auto";       // auto | live | lines | off
  std::string weights_from;            // rank0 | disk; empty: rank0 when world > 1
  bool resume = false;                 // skip steps journaled by an earlier run of the same job
  std::optional<std::string> journal;  // journal directory (default <report>.journal)
  double grace_s = 30;                 // after SIGTERM: seconds for in-flight steps to finish
  bool seed_log = false;               // print the seed harness's log lines live, on its streams
  std::string energy = "auto";         // auto (GPU engine only) | on | off
  EngineFlags engine;
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
  std::optional<std::string> trace;    // write Chrome trace-event JSON here
  std::optional<std::string> recover;  // journal directory to rebuild the report from
  std::optional<std::string> out;      // with --recover: where to write it
  bool keep_outputs = false;           // with --recover: store the journaled outputs
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
  std::optional<std::string> logits;  // write each generated token's logits (f32) here
  EngineFlags engine;
};
int generate_command(const GenerateArgs& args);

struct BenchArgs {
  std::string model;
  std::string device = "auto";
  std::vector<int32_t> prompt_tokens{512};
  std::vector<int32_t> gen_tokens{64};
  std::vector<int32_t> batch{1, 16};
  int32_t threads = 0;
  int32_t context = 16;  // prompt tokens of each decode (tg) request
  std::optional<int32_t> max_batch_tokens, max_seqs;
  // --offline N:P:G: N requests of P prompt and G generated tokens submitted at once
  std::optional<std::string> offline;
  bool limits = false;           // also measure the device's copy bandwidth and GEMM rate
  std::string format = "table";  // table | json
  EngineFlags engine;
};
int bench_command(const BenchArgs& args);

}  // namespace flowrank::cli
