// flowrank: distributed batch runner for multi-step LLM workflows.
#include <CLI/CLI.hpp>

#include "cli_common.hpp"
#include "commands.hpp"

using namespace flowrank::cli;

namespace {

void add_engine_flags(CLI::App* cmd, EngineFlags& f) {
  cmd->add_option("--tokenizer", f.tokenizer, "Tokenizer GGUF of a dummy model");
  cmd->add_option("--gpu", f.gpu, "CUDA device (default: the local rank's)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--gpu-memory-fraction", f.gpu_memory_fraction,
                  "Share of the GPU's memory to use (default 0.90)")
      ->check(CLI::Range(0.01, 1.0));
  cmd->add_flag("--no-cascade", f.no_cascade, "Plain decode attention even over shared prefixes");
  cmd->add_flag("--no-cuda-graphs", f.no_cuda_graphs, "Launch decode steps kernel by kernel");
}

CLI::App* add_run(CLI::App& app, RunArgs& run) {
  auto* run_cmd =
      app.add_subcommand("run", "Expand a job's workflows, run them, write the HDF5 report");
  run_cmd->add_option("job", run.job, "Job file (TOML)")->required();
  run_cmd->add_option("--out", run.out, "Report path (overrides the job's output)");
  run_cmd->add_option("--device", run.device, "auto | cpu | cuda");
  run_cmd->add_option("--model", run.model, "GGUF path or dummy:<shape>");
  run_cmd->add_option("--workflows", run.workflows, "Run only the first N workflows");
  run_cmd->add_flag("--keep-outputs", run.keep_outputs, "Store generated texts under /outputs");
  run_cmd->add_flag("--no-cache", run.no_cache, "Expand without the flow cache");
  run_cmd->add_flag("--no-prefix-cache", run.no_prefix_cache,
                    "Compute every prompt in full (for measuring the prefix cache)");
  run_cmd->add_option("--progress", run.progress, "auto | live | lines | off")
      ->check(CLI::IsMember({"auto", "live", "lines", "off"}));
  add_engine_flags(run_cmd, run.engine);
  run_cmd
      ->add_option("--weights-from", run.weights_from,
                   "rank0 (default with several ranks on GPUs of their own: rank 0 reads, NCCL "
                   "broadcasts) | disk (every rank reads)")
      ->check(CLI::IsMember({"rank0", "disk"}));
  run_cmd->add_flag("--resume", run.resume,
                    "Skip steps journaled by an earlier run of the same job (see --journal)");
  run_cmd->add_option("--journal", run.journal,
                      "Journal directory (default: the report path + .journal)");
  run_cmd
      ->add_option("--grace", run.grace_s,
                   "Seconds in-flight steps may take to finish after SIGTERM (default 30)")
      ->check(CLI::NonNegativeNumber);
  run_cmd->add_flag("--seed-log", run.seed_log,
                    "Print the seed harness's [INPUT] (stdout) and [TIMING]/[TARGET] (stderr) "
                    "lines as the run goes");
  run_cmd
      ->add_option("--energy", run.energy,
                   "auto (board power when the engine runs on a GPU) | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  return run_cmd;
}

CLI::App* add_expand(CLI::App& app, ExpandArgs& expand) {
  auto* expand_cmd = app.add_subcommand("expand", "Expand a job's workflows into the flow cache");
  expand_cmd->add_option("job", expand.job, "Job file (TOML)")->required();
  expand_cmd->add_flag("--explain", expand.explain, "Report how prompts share tokens");
  expand_cmd->add_option("--model", expand.model, "Model whose tokenizer --explain counts with");
  expand_cmd->add_option("--workflows", expand.workflows, "Expand only the first N workflows");
  expand_cmd->add_flag("--no-cache", expand.no_cache, "Do not read or write the flow cache");
  expand_cmd->add_option("--dump", expand.dump_dir,
                         "Write each prompt to DIR/<workflow>-<step>.txt (workflows from 1)");
  expand_cmd->add_flag("--hashes", expand.hashes,
                       "Print each prompt's sha256 as sha256sum would for the --dump files");
  expand_cmd->add_option("--outputs", expand.outputs,
                         "Report written with --keep-outputs: earlier steps' outputs for the "
                         "prompts that use them");
  return expand_cmd;
}

CLI::App* add_report(CLI::App& app, ReportArgs& rep) {
  auto* report_cmd = app.add_subcommand("report", "Summarise a run's HDF5 report");
  report_cmd->add_option("file", rep.file, "Report file (.h5)");
  report_cmd->add_option("--trace", rep.trace,
                         "Write Chrome trace-event JSON (Perfetto, chrome://tracing) here");
  report_cmd->add_option("--recover", rep.recover,
                         "Rebuild the report from a run's journal directory (FILE not needed)");
  report_cmd->add_option("--out", rep.out,
                         "With --recover: the report to write (default: the run's report path)");
  report_cmd->add_flag("--keep-outputs", rep.keep_outputs,
                       "With --recover: store the journaled outputs under /outputs");
  report_cmd->add_option("--format", rep.format, "table | json")
      ->check(CLI::IsMember({"table", "json"}));
  report_cmd->add_flag("--seed-log", rep.seed_log,
                       "Print the seed harness's [INPUT] (stdout) and [TIMING]/[TARGET] (stderr) "
                       "lines");
  return report_cmd;
}

CLI::App* add_model_info(CLI::App& app, std::string& model_spec) {
  auto* model_cmd = app.add_subcommand("model", "Inspect models");
  model_cmd->require_subcommand(1);
  auto* info_cmd =
      model_cmd->add_subcommand("info", "Architecture, shapes, tensor types, tokenizer");
  info_cmd->add_option("file", model_spec, "GGUF path or dummy:<shape>")->required();
  return info_cmd;
}

CLI::App* add_generate(CLI::App& app, GenerateArgs& gen) {
  auto* gen_cmd = app.add_subcommand("generate", "Generate from one prompt");
  gen_cmd->add_option("--model", gen.model,
                      "GGUF path or dummy:<shape> (default: bundled SmolLM2)");
  gen_cmd->add_option("--prompt", gen.prompt, "Prompt text")->required();
  gen_cmd->add_flag("--chat", gen.chat, "Wrap the prompt in the model's chat template");
  gen_cmd->add_option("--max-tokens", gen.max_tokens, "Tokens to generate")
      ->check(CLI::PositiveNumber);
  gen_cmd->add_option("--temperature", gen.temperature, "0 = greedy")
      ->check(CLI::NonNegativeNumber);
  gen_cmd->add_option("--top-p", gen.top_p, "Nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  gen_cmd->add_option("--seed", gen.seed, "Sampling seed");
  gen_cmd->add_option("--device", gen.device, "auto | cpu | cuda");
  gen_cmd->add_option("--logits", gen.logits,
                      "Write the logits of each generated token here (f32, n_vocab per token)");
  add_engine_flags(gen_cmd, gen.engine);
  return gen_cmd;
}

CLI::App* add_bench(CLI::App& app, BenchArgs& bench) {
  auto* bench_cmd =
      app.add_subcommand("bench", "Prefill and decode throughput (llama-bench style)");
  bench_cmd->add_option("--model", bench.model,
                        "GGUF path or dummy:<shape> (default: bundled SmolLM2)");
  bench_cmd->add_option("--device", bench.device, "auto | cpu | cuda");
  bench_cmd->add_option("-p,--prompt-tokens", bench.prompt_tokens, "Prompt lengths")
      ->delimiter(',');
  bench_cmd->add_option("-n,--gen-tokens", bench.gen_tokens, "Generation lengths")->delimiter(',');
  bench_cmd->add_option("-b,--batch", bench.batch, "Concurrent sequences")->delimiter(',');
  bench_cmd->add_option("-t,--threads", bench.threads, "CPU threads (0 = all cores)");
  bench_cmd->add_option("-c,--context", bench.context, "Prompt tokens of each decode request")
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--max-batch-tokens", bench.max_batch_tokens, "Tokens per engine step")
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--max-seqs", bench.max_seqs, "Sequences per engine step")
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--offline", bench.offline,
                        "N:P:G: N requests of P prompt and G output tokens at once (throughput)");
  bench_cmd->add_flag("--limits", bench.limits,
                      "Measure the GPU's copy bandwidth and GEMM rate; rates become % of them");
  bench_cmd->add_option("--format", bench.format, "table | json")
      ->check(CLI::IsMember({"table", "json"}));
  add_engine_flags(bench_cmd, bench.engine);
  return bench_cmd;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flowrank: batch runner for multi-step LLM workflows", "flowrank"};
  app.set_version_flag("--version", std::string("flowrank ") + FLOWRANK_VERSION);
  app.require_subcommand(1);
  RunArgs run;
  ExpandArgs expand;
  ReportArgs rep;
  std::string model_spec;
  GenerateArgs gen;
  BenchArgs bench;
  const CLI::App* run_cmd = add_run(app, run);
  const CLI::App* expand_cmd = add_expand(app, expand);
  const CLI::App* report_cmd = add_report(app, rep);
  const CLI::App* info_cmd = add_model_info(app, model_spec);
  const CLI::App* gen_cmd = add_generate(app, gen);
  const CLI::App* bench_cmd = add_bench(app, bench);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*run_cmd) return guarded([&] { return run_command(run); });
  if (*expand_cmd) return guarded([&] { return expand_command(expand); });
  if (*report_cmd) return guarded([&] { return report_command(rep); });
  if (*info_cmd) return guarded([&] { return model_info_command(model_spec); });
  if (*gen_cmd) return guarded([&] { return generate_command(gen); });
  if (*bench_cmd) return guarded([&] { return bench_command(bench); });
  return 2;
}
