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
constexpr const char* kDefaultTokenizer = "fixtures/tokenizers/smollm2.tokenizer.gguf";

// $<env>, else `relative` under the current directory, else under the directory above the
// executable's (build/flowrank -> the checkout).
std::string bundled_file(const char* env_name, const char* relative) {
  if (const char* env = std::getenv(env_name); env && *env) return env;
  std::error_code ec;
  if (fs::exists(relative, ec)) return relative;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = exe.parent_path().parent_path() / relative;
    if (fs::exists(beside, ec)) return beside.string();
  }
  return relative;  // missing: the loader's error names this path
}
}  // namespace

std::string default_model_path() {
  return bundled_file("FLOWRANK_MODEL", kDefaultModel);
}

std::string default_tokenizer_path() {
  return bundled_file("FLOWRANK_TOKENIZER", kDefaultTokenizer);
}

void apply_engine_flags(const EngineFlags& flags, engine::EngineOptions& o) {
  if (flags.tokenizer) o.tokenizer_model = *flags.tokenizer;
  if (flags.gpu) o.gpu = *flags.gpu;
  if (flags.gpu_memory_fraction) o.gpu_memory_fraction = *flags.gpu_memory_fraction;
  if (flags.no_cascade) o.cascade_attention = false;
  if (flags.no_cuda_graphs) o.cuda_graphs = false;
}

engine::EngineOptions engine_options_for(const flow::JobSpec& job) {
  engine::EngineOptions o;
  o.model = job.model.empty() ? default_model_path() : job.model;
  o.tokenizer_model = job.tokenizer.empty() ? default_tokenizer_path() : job.tokenizer;
  o.device = job.device;
  o.block_size = job.engine.block_size;
  o.kv_blocks = job.engine.kv_blocks;
  o.max_batch_tokens = job.engine.max_batch_tokens;
  o.max_seqs = job.engine.max_seqs;
  o.prefix_cache = job.engine.prefix_cache;
  o.threads = job.engine.threads;
  return o;
}

engine::EngineOptions model_engine_options(const std::string& model, const std::string& device) {
  engine::EngineOptions o;
  o.model = model.empty() ? default_model_path() : model;
  o.tokenizer_model = default_tokenizer_path();
  o.device = device;
  return o;
}

std::vector<engine::Completion> drain(engine::Engine& eng) {
  std::vector<engine::Completion> all;
  while (eng.has_work())
    for (auto& c : eng.step()) all.push_back(std::move(c));
  return all;
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
