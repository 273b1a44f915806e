#pragma once
// A model as the backends see it: the architecture's numbers (ModelConfig) and its tensors, still
// in their file types (a backend converts them at preload: f32 on the CPU, bf16 on the GPU).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace flowrank::engine {

enum class TensorType : uint32_t {  // values are GGUF's ggml_type ids
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ6_K = 14,
  kBF16 = 30,
};

const char* tensor_type_name(TensorType t);

enum class RopeStyle {
  kInterleaved,  // llama GGUFs: pairs (2i, 2i+1); their Q/K rows are permuted for this
  kNeox,         // olmo2 / HF layout: pairs (i, i + d/2)
};

enum class RopeScaling { kNone, kLlama3, kYarn };

struct ModelConfig {
  std::string arch;  // "llama" | "olmo2" | "qwen2"
  std::string name;  // general.name
  int32_t n_layer = 0;
  int32_t n_embd = 0;
  int32_t n_ff = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_vocab = 0;
  int32_t context_length = 0;
  float rms_eps = 1e-5f;
  // RoPE
  RopeStyle rope_style = RopeStyle::kInterleaved;
  int32_t rope_dim = 0;  // rotated dims per head (== head_dim for these models)
  float rope_base = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::kNone;
  float rope_factor = 1.0f;
  int32_t rope_orig_context = 0;
  float llama3_low_freq_factor = 1.0f;
  float llama3_high_freq_factor = 4.0f;
  float yarn_beta_fast = 32.0f;
  float yarn_beta_slow = 1.0f;
  // ggml semantics: YaRN layers scale cos/sin by yarn_attn_factor * (1 + 0.1 * ln(rope_factor)).
  // GGUF's rope.scaling.yarn_attn_factor (HF attention_factor) is the total, so it is stored
  // divided by (1 + 0.1 ln factor); OLMo-3's 1.2079 becomes 1.0.
  float yarn_attn_factor = 1.0f;
  // Per rotated pair i (size rope_dim / 2): theta_i = pos * base^(-2i/rope_dim) / factor[i].
  // Filled for llama3 scaling (GGUF tensor rope_freqs.weight, or computed for dummy shapes);
  // empty means all ones.
  std::vector<float> rope_freq_factors;
  // Architecture switches
  bool qkv_bias = false;            // Qwen2
  bool qk_norm = false;             // olmo2: RMSNorm over the whole q / k projection
  bool post_norms = false;          // olmo2: norms after attention and FFN instead of before
  bool tied_embeddings = false;     // output = token embedding
  int32_t sliding_window = 0;       // 0 = none
  std::vector<bool> layer_sliding;  // per layer: uses the sliding window (and no YaRN)
};

struct Tensor {
  std::string name;
  TensorType type = TensorType::kF32;
  // GGUF order: dims[0] is the contiguous one. A weight matrix has dims {in, out}: `out` rows of
  // `in` values each, so y = W x is a row-wise dot product.
  std::vector<int64_t> dims;
  const void* data = nullptr;  // into the mmap'd file or into ModelWeights::owned
  std::size_t nbytes = 0;
  // A dummy tensor left for its backend to generate (data null): its generator stream key, or
  // all ones (a norm weight). See fill_dummy_f16.
  bool dummy = false;
  bool dummy_ones = false;
  uint64_t dummy_key = 0;
  int64_t elements() const;
  bool empty() const { return data == nullptr && !dummy; }
};

struct LayerWeights {
  Tensor attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, post_attn_norm;
  Tensor ffn_norm, w_gate, w_up, w_down, post_ffn_norm;
};

class GgufFile;

struct ModelWeights {
  ModelConfig config;
  Tensor tok_embd, output_norm, output;  // output empty when tied
  std::vector<LayerWeights> layers;
  std::string source;                         // path or dummy:<shape>
  std::shared_ptr<const GgufFile> file;       // keeps the mmap alive
  std::vector<std::vector<std::byte>> owned;  // storage of generated (dummy) tensors
};

// Opens `spec` (a GGUF path or "dummy:<shape>") and checks every tensor the architecture needs:
// present, right type, right shape. Throws InputError naming file, tensor, expected vs found.
// A dummy model takes the shape's numbers, seeded random weights (F16) and keeps its own vocab
// size; with generate_dummy = false its tensors carry only their generator keys (a GPU backend
// generates them on the device, no host copy).
ModelWeights load_model(const std::string& spec, uint64_t dummy_seed = 0,
                        bool generate_dummy = true);
// The dummy generator: N(0, 0.02) as f16 bit patterns at the 65536 midpoint quantiles. Element i
// of a tensor with key k is table[(splitmix64(k + i / 4) >> (16 * (i % 4))) & 0xFFFF].
const std::vector<uint16_t>& dummy_normal_f16_table();
// Fills elements [begin, end) of a dummy tensor (F16 bit patterns) as load_model does.
void fill_dummy_f16(const Tensor& t, uint16_t* out, int64_t begin, int64_t end);
// Same checks over an already opened file (tests, fuzzer, `model info`).
ModelWeights load_model(std::shared_ptr<const GgufFile> file);
// The architecture numbers of a dummy shape, without generating weights; InputError listing the
// known shapes when `shape` is unknown.
ModelConfig dummy_model_config(const std::string& shape);
std::vector<std::string> dummy_model_shapes();

// Dequantizes `n` elements starting at element 0 of a tensor of type `t` into `out`.
// n must be a multiple of the type's block size.
void dequantize(TensorType t, const void* data, float* out, int64_t n);
// Bytes taken by n elements of type t (n a multiple of the block size).
std::size_t tensor_bytes(TensorType t, int64_t n);
int64_t block_elements(TensorType t);

}  // namespace flowrank::engine
