#include "cli_common.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>

#include "flowrank/common/error.hpp"

namespace flowrank::cli {
namespace fs = std::filesystem;

namespace {
constexpr const char* kDefaultModel = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::string default_model_path() {
  if (const char* env = std::getenv("FLOWRANK_MODEL"); env && *env) return env;
  std::error_code ec;
  if (fs::exists(kDefaultModel, ec)) return kDefaultModel;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = exe.parent_path().parent_path() / kDefaultModel;
    if (fs::exists(beside, ec)) return beside.string();
  }
  return kDefaultModel;  // missing: the loader's error names this path
}

engine::EngineOptions engine_options_for(const flow::JobSpec& job) {
  engine::EngineOptions o;
  o.model = job.model.empty() ? default_model_path() : job.model;
  o.tokenizer_model = default_model_path();
  o.device = job.device;
  o.block_size = job.engine.block_size;
  o.kv_blocks = job.engine.kv_blocks;
  o.max_batch_tokens = job.engine.max_batch_tokens;
  o.max_seqs = job.engine.max_seqs;
  o.prefix_cache = job.engine.prefix_cache;
  o.threads = job.engine.threads;
  return o;
}

void print_expansion_warnings(const flow::JobSpec& job, const flow::ExpansionResult& expansion) {
  for (const flow::SkippedFixture& k : expansion.job.fixture_skipped)
    std::fprintf(stderr, "flowrank: warning: %s: skipped by fixture_rules \"%s\" (%s)\n",
                 (job.fixtures / k.path).c_str(), flow::fixture_rules_name(job.fixture_rules),
                 k.reason.c_str());
  if (expansion.warning)
    std::fprintf(stderr, "flowrank: warning: %s\n", expansion.warning->c_str());
}

int guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const InputError& e) {
    std::fprintf(stderr, "flowrank: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "flowrank: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowrank: %s\n", e.what());
    return 1;
  }
}

}  // namespace flowrank::cli
