#include <thread>

#include "flowrank/common/error.hpp"
#include "flowrank/engine/cpu/cpu_model_runner.hpp"
#include "flowrank/engine/engine.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/llm_engine.hpp"
#include "flowrank/engine/tokenizer.hpp"

namespace flowrank::engine {

std::unique_ptr<Engine> make_engine(const EngineOptions& options) {
  if (options.device != "auto" && options.device != "cpu" && options.device != "cuda")
    throw InputError("device '" + options.device + "'", "expected auto, cpu or cuda");
  // The CUDA backend is not part of this build yet: "auto" falls back to the CPU engine, an
  // explicit "cuda" is refused rather than silently run elsewhere.
  if (options.device == "cuda")
    throw InputError("device 'cuda'", "this build has no CUDA backend; use --device cpu or auto");

  // Dummy weights are generated in memory: refuse a shape the CPU cannot hold before making
  // gigabytes of them (olmo3-7b is 27 GiB as f32).
  if (options.model.rfind("dummy:", 0) == 0) {
    const std::size_t budget = cpu_available_memory();
    if (budget > 0)
      require_f32_fit(options.model,
                      f32_weight_bytes_of(dummy_model_config(options.model.substr(6))), budget);
  }
  ModelWeights weights = load_model(options.model);
  std::shared_ptr<const GgufFile> vocab_file = weights.file;
  if (!vocab_file) {  // dummy weights: the tokenizer comes from a real GGUF
    if (options.tokenizer_model.empty())
      throw InputError(options.model, "a dummy model needs a tokenizer GGUF (tokenizer_model)");
    vocab_file = GgufFile::open(options.tokenizer_model);
  }
  std::shared_ptr<const Tokenizer> tokenizer = Tokenizer::from_gguf(*vocab_file);

  EngineInfo info;
  info.backend = "cpu";
  info.model = options.model;
  info.model_name = weights.config.name;
  CpuRunnerOptions runner_options;
  runner_options.threads = options.threads;
  if (!options.batch_invariant) runner_options.gemm_tile_rows = 0;
  auto runner = std::make_unique<CpuModelRunner>(std::move(weights), runner_options);
  return std::make_unique<LlmEngine>(std::move(runner), std::move(tokenizer), options, info);
}

}  // namespace flowrank::engine
