#include <thread>

#include "flowrank/common/error.hpp"
#include "flowrank/engine/cpu/cpu_model_runner.hpp"
#include "flowrank/engine/engine.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/llm_engine.hpp"
#include "flowrank/engine/tokenizer.hpp"
#if FLOWRANK_HAVE_CUDA
#include "flowrank/engine/cuda/cuda_model_runner.hpp"
#endif

namespace flowrank::engine {
namespace {

bool is_dummy(const std::string& model) {
  return model.rfind("dummy:", 0) == 0;
}

std::shared_ptr<const Tokenizer> load_tokenizer(const EngineOptions& options,
                                                const ModelWeights& weights) {
  std::shared_ptr<const GgufFile> vocab_file = weights.file;
  if (!vocab_file) {  // dummy weights: the tokenizer comes from a real GGUF
    if (options.tokenizer_model.empty())
      throw InputError(options.model, "a dummy model needs a tokenizer GGUF (tokenizer_model)");
    vocab_file = GgufFile::open(options.tokenizer_model);
  }
  return Tokenizer::from_gguf(*vocab_file);
}

// What a backend is, where the engine's description and defaults differ between backends.
struct Backend {
  const char* name;
  bool batch_invariant;
  int32_t default_batch_tokens;  // when EngineOptions leaves them 0
  int32_t default_seqs;
};
constexpr Backend kCpuBackend{"cpu", true, 2048, 64};
constexpr Backend kCudaBackend{"cuda", false, 8192, 256};

// The engine over a backend's runner: the tokenizer (the model's, or a dummy's own GGUF), the
// engine's description, and the step sizes the options left to the backend.
template <class MakeRunner>
std::unique_ptr<Engine> assemble(const EngineOptions& options, ModelWeights weights,
                                 const Backend& backend, MakeRunner make_runner) {
  std::shared_ptr<const Tokenizer> tokenizer = load_tokenizer(options, weights);
  EngineOptions resolved = options;
  if (resolved.max_batch_tokens == 0) resolved.max_batch_tokens = backend.default_batch_tokens;
  if (resolved.max_seqs == 0) resolved.max_seqs = backend.default_seqs;
  EngineInfo info;
  info.backend = backend.name;
  info.model = options.model;
  info.model_name = weights.config.name;
  info.batch_invariant = backend.batch_invariant;
  return std::make_unique<LlmEngine>(make_runner(std::move(weights)), std::move(tokenizer),
                                     resolved, info);
}

// "auto": CUDA when this build has it and a device exists, else the CPU.
bool use_cuda(const EngineOptions& options) {
  if (options.device != "auto" && options.device != "cpu" && options.device != "cuda")
    throw InputError("device '" + options.device + "'", "expected auto, cpu or cuda");
#if FLOWRANK_HAVE_CUDA
  if (options.device == "cpu") return false;
  const int devices = cuda_device_count();
  if (options.device == "cuda" && devices == 0)
    throw RunError("device 'cuda': no CUDA device found (use --device cpu or auto)");
  return devices > 0;
#else
  if (options.device == "cuda")
    throw InputError("device 'cuda'", "this build has no CUDA backend; use --device cpu or auto");
  return false;
#endif
}

std::unique_ptr<Engine> make_cpu_engine(const EngineOptions& options) {
  // Dummy weights are generated in memory (f16): refuse a shape the CPU cannot hold before
  // making gigabytes of them (olmo3-7b is 14 GiB).
  if (is_dummy(options.model)) {
    const std::size_t budget = cpu_available_memory();
    if (budget > 0)
      require_weights_fit(
          options.model,
          weight_bytes_of(dummy_model_config(options.model.substr(6)), TensorType::kF16), budget);
  }
  CpuRunnerOptions runner_options;
  runner_options.threads = options.threads;  // batch invariance costs the CPU kernels nothing
  return assemble(options, load_model(options.model), kCpuBackend, [&](ModelWeights w) {
    return std::make_unique<CpuModelRunner>(std::move(w), runner_options);
  });
}

#if FLOWRANK_HAVE_CUDA
std::unique_ptr<Engine> make_cuda_engine(const EngineOptions& options) {
  if (!(options.gpu_memory_fraction > 0.0f && options.gpu_memory_fraction <= 1.0f))
    throw InputError("engine options", "gpu_memory_fraction must be in (0, 1]");
  CudaRunnerOptions runner_options;
  runner_options.device = options.gpu < 0 ? 0 : options.gpu;
  runner_options.memory_fraction = options.gpu_memory_fraction;
  runner_options.cascade_attention = options.cascade_attention;
  runner_options.cuda_graphs = options.cuda_graphs;
  runner_options.read_weights = options.read_weights;
  runner_options.broadcast_weights = options.broadcast_weights;
  // Dummy weights are generated on the device: the host holds only their keys.
  return assemble(options, load_model(options.model, 0, /*generate_dummy=*/false), kCudaBackend,
                  [&](ModelWeights w) { return make_cuda_runner(std::move(w), runner_options); });
}
#endif

}  // namespace

std::optional<DeviceLimits> measure_device_limits(const EngineOptions& options) {
#if FLOWRANK_HAVE_CUDA
  if (use_cuda(options)) return measure_cuda_limits(options.gpu < 0 ? 0 : options.gpu);
#else
  (void)options;
#endif
  return std::nullopt;
}

std::unique_ptr<Engine> make_engine(const EngineOptions& options) {
#if FLOWRANK_HAVE_CUDA
  if (use_cuda(options)) return make_cuda_engine(options);
#else
  (void)use_cuda(options);
#endif
  return make_cpu_engine(options);
}

}  // namespace flowrank::engine
