#pragma once
// The Engine interface: what the executor (run) sees of any backend. A backend is preloaded once,
// then fed requests; step() runs one scheduler iteration (continuous batching over every request
// submitted so far) and returns the requests that finished in it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowrank/common/clock.hpp"

namespace flowrank::engine {

struct SamplingParams {
  int32_t max_tokens = 256;
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;
  int32_t top_k = 0;  // 0 = off
  uint64_t seed = 0;
  std::vector<std::string> stop;  // stop strings; the stop string is not part of the output
  bool ignore_eos = false;        // benchmarks: always generate max_tokens
};

// The random stream of a request is keyed by (seed, stream.workflow, stream.step, token index),
// so an output never depends on batch composition, order or rank count.
struct StreamKey {
  uint64_t workflow = 0;
  uint64_t step = 0;
};

struct Request {
  uint64_t id = 0;  // unique among the requests of one engine
  std::string prompt;
  bool chat = false;  // wrap the prompt in the model's chat template as one user turn
  SamplingParams sampling;
  StreamKey stream;
};

enum class FinishReason { kLength, kStop, kEos };

struct RequestTiming {
  Clock::time_point submitted{};
  Clock::time_point first_scheduled{};  // first iteration that computed any of its tokens
  Clock::time_point first_token{};      // first generated token sampled
  Clock::time_point finished{};
};

struct Completion {
  uint64_t id = 0;
  std::string text;             // generated text (stop string removed)
  std::vector<int32_t> tokens;  // generated token ids
  int32_t prompt_tokens = 0;
  int32_t cached_tokens = 0;  // prompt tokens served from the prefix cache (not recomputed)
  int32_t decode_tokens = 0;
  int32_t preemptions = 0;
  FinishReason finish = FinishReason::kLength;
  RequestTiming timing;
};

// The model's numbers a benchmark needs to put a measured rate beside its limit (bytes a decode
// step must read, FLOPs a token costs).
struct ModelShape {
  int32_t n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_vocab = 0;
  int32_t sliding_window = 0;      // 0 = none
  int32_t sliding_layers = 0;      // layers that use it
  int64_t matmul_params = 0;       // weights a token multiplies through, output layer included
  int64_t kv_bytes_per_token = 0;  // all layers, K and V, as the backend stores them
  int64_t weight_bytes = 0;        // as the backend holds them
};

struct EngineInfo {
  std::string backend;     // "cpu", "cuda"
  std::string device;      // e.g. "cpu (2 threads)", "NVIDIA H200"
  std::string model;       // path or dummy:<shape>
  std::string model_name;  // from metadata
  int32_t context_length = 0;
  int32_t kv_blocks = 0;
  int32_t block_size = 0;
  ModelShape shape;
  // A sequence's logits are bitwise the same whatever shares its batch (the CPU backend); the
  // CUDA backend's GEMM and attention kernels pick their split by batch shape, so it is not.
  bool batch_invariant = false;
};

// Counters over the engine's life (for the report and tests).
struct EngineStats {
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t evictions = 0;        // cached blocks evicted to make room
  int64_t computed_tokens = 0;  // tokens fed to forward
  int64_t cached_tokens = 0;    // prompt tokens skipped thanks to the prefix cache
  int32_t max_batch_tokens_seen = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Loads weights, allocates the KV pool, warms up. Everything expensive happens here, before
  // the first request; the caller times it as its own phase.
  virtual void preload() = 0;
  virtual EngineInfo info() const = 0;
  // Token ids the engine would feed for `text` (no chat template, no BOS): for --explain.
  virtual std::vector<int32_t> tokenize(std::string_view text) const = 0;
  // Queues a request. Throws InputError if its prompt cannot fit the context.
  virtual void submit(Request request) = 0;
  // One iteration; returns the requests that finished in it.
  virtual std::vector<Completion> step() = 0;
  virtual bool has_work() const = 0;
  virtual EngineStats stats() const = 0;
  // Diagnostics (tests, `generate --logits`): keep the logits every token was sampled from; they
  // leave the device only then. take_logits hands back a request's rows (n_vocab each, one per
  // generated token) and forgets them.
  // An engine without them (a test double) keeps nothing.
  virtual void keep_logits(bool /*on*/) {}
  virtual std::vector<float> take_logits(uint64_t /*id*/) { return {}; }
};

struct EngineOptions {
  std::string model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";  // path or dummy:<shape>
  std::string tokenizer_model;  // GGUF whose tokenizer a dummy model uses (default: bundled)
  std::string device = "auto";  // auto | cpu | cuda
  int32_t block_size = 16;
  int32_t kv_blocks = 0;  // 0 = size from memory / context
  // Tokens per engine step and sequences per step; 0 = the backend's default (CPU 2048 and 64,
  // CUDA 8192 and 256: a GPU step needs thousands of tokens to reach its GEMM rate).
  int32_t max_batch_tokens = 0;
  int32_t max_seqs = 0;
  bool prefix_cache = true;
  int32_t threads = 0;  // 0 = all cores
  // CUDA: the device (-1 = the local rank's GPU, else 0), the share of its memory this process
  // may take (weights + activations + KV pool), shared-prefix (cascade) attention, CUDA graphs.
  int32_t gpu = -1;
  float gpu_memory_fraction = 0.90f;
  bool cascade_attention = true;
  bool cuda_graphs = true;
  // Many ranks: false = this rank does not read the weight file, its device buffers are filled by
  // broadcast_weights. If set, the runner calls broadcast_weights at preload once per device
  // weight buffer, in the same order on every rank; on rank 0 the buffer holds the loaded weights.
  bool read_weights = true;
  std::function<void(void* device_ptr, std::size_t bytes)> broadcast_weights;
};

// The device's own ceilings, measured in the same run as a benchmark: bytes moved per second by
// a large device-to-device copy (read + written) and a large bf16 GEMM's FLOP/s. Empty for the
// CPU backend (its ceilings are not measured here).
struct DeviceLimits {
  double copy_bytes_per_s = 0;
  double bf16_gemm_flops = 0;
};
std::optional<DeviceLimits> measure_device_limits(const EngineOptions& options);

// Picks the backend for options.device ("auto": CUDA when built and a GPU exists, else CPU).
std::unique_ptr<Engine> make_engine(const EngineOptions& options);

}  // namespace flowrank::engine
