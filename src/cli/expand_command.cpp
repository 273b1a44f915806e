// `flowrank expand JOB [--explain]`: fill the flow cache and say how prompts share text.
#include <cstdio>

#include "cli_common.hpp"
#include "commands.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/tokenizer.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/explain.hpp"
#include "flowrank/flow/flow_cache.hpp"

namespace flowrank::cli {

int expand_command(const ExpandArgs& args) {
  flow::JobSpec job = flow::load_job(args.job);
  flow::JobOverrides ov;
  ov.model = args.model;
  ov.workflows = args.workflows;
  flow::apply_overrides(job, ov);

  std::optional<flow::FlowCache> cache;
  if (!args.no_cache) cache.emplace(flow::default_cache_dir());
  const flow::ExpansionResult r = flow::expand_job(job, cache ? &*cache : nullptr);
  if (r.warning) std::fprintf(stderr, "flowrank: warning: %s\n", r.warning->c_str());
  std::printf(
      "job %s\nkey %s\ncache %s (%s)\ntime %.3f ms\nworkflows %zu\nfixture %llu bytes in %u files "
      "(%u read)\n",
      job.name.c_str(), r.key.c_str(), args.no_cache ? "off" : (r.hit ? "hit" : "miss"),
      cache ? cache->entry_path(r.key).c_str() : "-", r.seconds * 1e3, r.job.workflows.size(),
      static_cast<unsigned long long>(r.job.fixture_bytes), r.job.fixture_files,
      r.fixture_files_read);

  if (args.explain) {
    // Exact token counts need only the tokenizer, not the engine: read it from the model's GGUF
    // (a dummy model's tokenizer comes from the default GGUF).
    const std::string spec = job.model.empty() ? default_model_path() : job.model;
    const std::string vocab = spec.rfind("dummy:", 0) != 0 ? spec
                              : job.tokenizer.empty()      ? default_tokenizer_path()
                                                           : job.tokenizer;
    std::shared_ptr<const engine::Tokenizer> tok;
    try {
      tok = engine::Tokenizer::from_gguf(*engine::GgufFile::open(vocab));
    } catch (const InputError& e) {
      std::fprintf(stderr, "flowrank: warning: %s; counting bytes instead of tokens\n", e.what());
    }
    const std::vector<std::string> prompts = flow::placeholder_prompts(r.job);
    flow::PromptSharing sharing;
    if (tok) {
      sharing = flow::explain_sharing(
          prompts, [&](std::string_view text) { return tok->encode(text, false, false); });
    } else {
      sharing = flow::explain_sharing(prompts);
    }
    if (tok) std::printf("tokenizer %s\n", vocab.c_str());
    std::printf("%s", flow::describe_sharing(r.job, sharing).c_str());
  }
  return 0;
}

}  // namespace flowrank::cli
