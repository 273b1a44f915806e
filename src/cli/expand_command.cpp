// `flowrank expand JOB [--explain] [--dump DIR] [--hashes]`: fill the flow cache, say how prompts
// share text, and show the prompts themselves.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>

#include "cli_common.hpp"
#include "commands.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/tokenizer.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/explain.hpp"
#include "flowrank/flow/flow_cache.hpp"
#include "flowrank/report/hdf5_report.hpp"

namespace flowrank::cli {
namespace {

bool plain_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  return true;
}

// "01-planner.txt": workflows numbered from 1 as the harness numbered its flows, zero-padded so
// the files sort; the step by name when that is a plain file name, else "step<n>" from 1.
std::string prompt_file_name(const flow::ExpandedJob& job, const flow::Workflow& wf,
                             std::size_t step) {
  const std::size_t width = std::max<std::size_t>(2, std::to_string(job.workflows.size()).size());
  std::string number = std::to_string(wf.index + 1);
  number.insert(0, width - std::min(width, number.size()), '0');
  const std::string& name = wf.steps[step].name;
  return number + "-" + (plain_file_name(name) ? name : "step" + std::to_string(step + 1)) + ".txt";
}

using StepOutputs = std::map<std::pair<int32_t, int32_t>, std::string>;

// Calls `emit(file name, prompt, workflow, step)` for every prompt whose earlier outputs are
// known (from `outputs`); returns how many prompts could not be built for want of them.
std::size_t for_each_prompt(
    const flow::ExpandedJob& job, const StepOutputs& outputs,
    const std::function<void(const std::string&, const std::string&, int32_t, int32_t)>& emit) {
  std::size_t missing = 0;
  for (const flow::Workflow& wf : job.workflows) {
    std::vector<std::optional<std::string>> earlier(wf.steps.size());
    for (std::size_t s = 0; s < wf.steps.size(); ++s)
      if (auto it = outputs.find({wf.index, static_cast<int32_t>(s)}); it != outputs.end())
        earlier[s] = it->second;
    for (std::size_t s = 0; s < wf.steps.size(); ++s) {
      bool known = true;
      for (int32_t u : wf.steps[s].uses) known = known && earlier[static_cast<std::size_t>(u)];
      if (!known) {
        ++missing;
        continue;
      }
      emit(prompt_file_name(job, wf, s), flow::step_prompt(job, wf, s, earlier), wf.index,
           static_cast<int32_t>(s));
    }
  }
  return missing;
}

void show_prompts(const ExpandArgs& args, const flow::ExpandedJob& job) {
  StepOutputs outputs;
  std::map<std::pair<int32_t, int32_t>, std::string> run_hashes;
  if (args.outputs) {
    const report::RunReport rep = report::read_report_hdf5(*args.outputs);
    if (rep.outputs.empty())
      throw InputError(*args.outputs, "has no /outputs (run the job with --keep-outputs)");
    outputs = rep.outputs;
    for (const report::StepRecord& s : rep.steps)
      if (!s.prompt_sha256_8.empty()) run_hashes[{s.workflow, s.step}] = s.prompt_sha256_8;
  }
  if (args.dump_dir) std::filesystem::create_directories(*args.dump_dir);
  std::size_t differ = 0;
  const std::size_t missing = for_each_prompt(
      job, outputs,
      [&](const std::string& file, const std::string& prompt, int32_t wf, int32_t step) {
        const std::string hash = sha256_hex(prompt);
        if (args.hashes) std::printf("%s  %s\n", hash.c_str(), file.c_str());
        if (args.dump_dir) write_file_atomic(std::filesystem::path(*args.dump_dir) / file, prompt);
        auto ran = run_hashes.find({wf, step});
        if (ran != run_hashes.end() && ran->second != hash.substr(0, 8)) {
          std::fprintf(stderr, "flowrank: warning: %s: prompt_sha256_8 in %s is %s, built %.8s\n",
                       file.c_str(), args.outputs->c_str(), ran->second.c_str(), hash.c_str());
          ++differ;
        }
      });
  if (missing > 0)
    std::fprintf(stderr,
                 "flowrank: note: %zu prompts use earlier steps' outputs, known only after a run; "
                 "pass --outputs REPORT.h5 (a run with --keep-outputs) to build them\n",
                 missing);
  if (differ > 0)
    throw RunError(std::to_string(differ) + " prompts differ from the ones the run hashed");
}

}  // namespace

int expand_command(const ExpandArgs& args) {
  flow::JobSpec job = flow::load_job(args.job);
  flow::JobOverrides ov;
  ov.model = args.model;
  ov.workflows = args.workflows;
  flow::apply_overrides(job, ov);

  std::optional<flow::FlowCache> cache;
  if (!args.no_cache) cache.emplace(flow::default_cache_dir());
  const flow::ExpansionResult r = flow::expand_job(job, cache ? &*cache : nullptr);
  print_expansion_warnings(job, r);
  // With --hashes, stdout carries only the hash lines (so it diffs against sha256sum output).
  std::FILE* info = args.hashes ? stderr : stdout;
  std::fprintf(
      info,
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
    if (tok) std::fprintf(info, "tokenizer %s\n", vocab.c_str());
    std::fprintf(info, "%s", flow::describe_sharing(r.job, sharing).c_str());
  }
  if (args.dump_dir || args.hashes) show_prompts(args, r.job);
  return 0;
}

}  // namespace flowrank::cli
