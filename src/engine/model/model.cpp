// ModelConfig from GGUF metadata, the tensor checklist of each architecture, and dummy models.
#include "flowrank/engine/model.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numbers>
#include <thread>

#include "flowrank/common/error.hpp"
#include "flowrank/common/mix64.hpp"
#include "flowrank/engine/gguf.hpp"
#include "model_internal.hpp"
#include "quant_types.hpp"

namespace flowrank::engine {

namespace {

constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxDim = int64_t{1} << 24;

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

int32_t positive(const GgufFile& f, const std::string& key, int64_t v, int64_t max = kMaxDim) {
  if (v <= 0 || v > max) {
    throw InputError(f.path().string(), "metadata " + key + ": expected 1 to " +
                                            std::to_string(max) + ", found " + std::to_string(v));
  }
  return static_cast<int32_t>(v);
}

// Llama 3's frequency-dependent scaling, as llama.cpp's converter bakes it into rope_freqs.weight.
std::vector<float> llama3_freq_factors(const ModelConfig& c) {
  std::vector<float> out;
  const double low_wavelen = c.rope_orig_context / c.llama3_low_freq_factor;
  const double high_wavelen = c.rope_orig_context / c.llama3_high_freq_factor;
  for (int32_t i = 0; i < c.rope_dim / 2; ++i) {
    const double freq =
        1.0 / std::pow(static_cast<double>(c.rope_base), static_cast<double>(2 * i) / c.rope_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    double factor;
    if (wavelen < high_wavelen) {
      factor = 1.0;
    } else if (wavelen > low_wavelen) {
      factor = c.rope_factor;
    } else {
      const double smooth = (c.rope_orig_context / wavelen - c.llama3_low_freq_factor) /
                            (c.llama3_high_freq_factor - c.llama3_low_freq_factor);
      factor = 1.0 / ((1.0 - smooth) / c.rope_factor + smooth);
    }
    out.push_back(static_cast<float>(factor));
  }
  return out;
}

// Sliding-window layers: either a per-layer bool array or a period p (layer il slides unless
// il % p == p - 1; p = 0: every layer slides), as llama.cpp's set_swa_pattern(p) reads it.
// OLMo-3 GGUFs carry the array; without either key llama.cpp's olmo2 loader assumes p = 4.
std::vector<bool> sliding_pattern(const GgufFile& f, const std::string& key, int32_t n_layer) {
  std::vector<bool> out(static_cast<std::size_t>(n_layer), false);
  const auto it = f.metadata().find(key);
  int64_t period = 4;
  if (it != f.metadata().end()) {
    if (const auto* arr = std::get_if<GgufArray>(&it->second)) {
      if (arr->ints.size() != arr->size()) {
        throw InputError(f.path().string(), "metadata " + key + ": expected bools");
      }
      if (arr->ints.size() != static_cast<std::size_t>(n_layer)) {
        throw InputError(f.path().string(),
                         "metadata " + key + ": expected " + std::to_string(n_layer) +
                             " entries (one per layer), found " + std::to_string(arr->size()));
      }
      for (int32_t il = 0; il < n_layer; ++il) out[il] = arr->ints[il] != 0;
      return out;
    }
    period = f.get_int(key);
    if (period < 0 || period > kMaxLayers) {
      throw InputError(f.path().string(),
                       "metadata " + key + ": period " + std::to_string(period) + " out of range");
    }
  }
  for (int32_t il = 0; il < n_layer; ++il) out[il] = period == 0 || il % period < period - 1;
  return out;
}

// The pieces of a config read from an architecture's keys (`arch.<key>`).
struct ArchKeys {
  const GgufFile& f;
  const std::string& a;
  const std::string path;
  std::string key(const char* k) const { return a + "." + k; }
};

// Layers, widths, heads and head size.
void read_shape(const ArchKeys& k, ModelConfig& c) {
  const GgufFile& f = k.f;
  const std::string& path = k.path;
  c.n_layer = positive(f, k.key("block_count"), f.get_int(k.key("block_count")), kMaxLayers);
  c.n_embd = positive(f, k.key("embedding_length"), f.get_int(k.key("embedding_length")));
  c.n_ff = positive(f, k.key("feed_forward_length"), f.get_int(k.key("feed_forward_length")));
  c.n_head = positive(f, k.key("attention.head_count"), f.get_int(k.key("attention.head_count")));
  c.n_head_kv = c.n_head;
  if (auto v = f.find_int(k.key("attention.head_count_kv"))) {
    c.n_head_kv = positive(f, k.key("attention.head_count_kv"), *v);
  }
  if (c.n_head % c.n_head_kv != 0) {
    throw InputError(path, "metadata " + k.key("attention.head_count_kv") + ": " +
                               std::to_string(c.n_head_kv) + " does not divide head_count " +
                               std::to_string(c.n_head));
  }
  if (auto v = f.find_int(k.key("attention.key_length"))) {
    c.head_dim = positive(f, k.key("attention.key_length"), *v);
  } else {
    if (c.n_embd % c.n_head != 0) {
      throw InputError(path, "metadata " + k.key("embedding_length") + ": " +
                                 std::to_string(c.n_embd) + " is not a multiple of head_count " +
                                 std::to_string(c.n_head));
    }
    c.head_dim = c.n_embd / c.n_head;
  }
  if (auto v = f.find_int(k.key("attention.value_length")); v && *v != c.head_dim) {
    throw InputError(path, "metadata " + k.key("attention.value_length") + ": expected " +
                               std::to_string(c.head_dim) + " (the key length), found " +
                               std::to_string(*v));
  }
}

// Vocabulary size, context length, RMSNorm epsilon.
void read_vocab_context_norm(const ArchKeys& k, ModelConfig& c) {
  const GgufFile& f = k.f;
  const std::string& path = k.path;
  if (auto v = f.find_int(k.key("vocab_size"))) {
    c.n_vocab = positive(f, k.key("vocab_size"), *v, int64_t{1} << 30);
  } else if (f.has("tokenizer.ggml.tokens")) {
    c.n_vocab = positive(f, "tokenizer.ggml.tokens",
                         static_cast<int64_t>(f.get_array("tokenizer.ggml.tokens").size()),
                         int64_t{1} << 30);
  } else if (const auto* t = f.find_tensor("token_embd.weight"); t && t->dims.size() == 2) {
    c.n_vocab = positive(f, "token_embd.weight", t->dims[1], int64_t{1} << 30);
  } else {
    throw InputError(path, "metadata " + k.key("vocab_size") + ": missing (and no token list)");
  }
  c.context_length =
      positive(f, k.key("context_length"), f.get_int(k.key("context_length")), int64_t{1} << 30);
  c.rms_eps = static_cast<float>(f.get_float(k.key("attention.layer_norm_rms_epsilon")));
  if (!(c.rms_eps > 0.0f && c.rms_eps < 1.0f)) {
    throw InputError(path, "metadata " + k.key("attention.layer_norm_rms_epsilon") +
                               ": expected a small positive number, found " +
                               std::to_string(c.rms_eps));
  }
}

// RoPE style, dimensions, base and scaling (YaRN from metadata).
void read_rope(const ArchKeys& k, ModelConfig& c) {
  const GgufFile& f = k.f;
  const std::string& a = k.a;
  const std::string& path = k.path;
  // RoPE. llama GGUFs permute Q/K rows for adjacent-pair rotation; olmo2 and qwen2 keep the HF
  // layout and llama.cpp rotates them NEOX-style (pairs i, i + d/2).
  c.rope_style = a == "llama" ? RopeStyle::kInterleaved : RopeStyle::kNeox;
  c.rope_dim = c.head_dim;
  if (auto v = f.find_int(k.key("rope.dimension_count"))) {
    c.rope_dim = positive(f, k.key("rope.dimension_count"), *v);
  }
  if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    throw InputError(path, "metadata " + k.key("rope.dimension_count") + ": expected an even " +
                               "number up to the head size " + std::to_string(c.head_dim) +
                               ", found " + std::to_string(c.rope_dim));
  }
  c.rope_base = static_cast<float>(f.find_float(k.key("rope.freq_base")).value_or(10000.0));
  if (!(c.rope_base > 1.0f) || !std::isfinite(c.rope_base)) {
    throw InputError(path, "metadata " + k.key("rope.freq_base") + ": expected > 1, found " +
                               std::to_string(c.rope_base));
  }
  const std::string scaling = f.find_string(k.key("rope.scaling.type")).value_or("none");
  if (scaling == "yarn") {
    c.rope_scaling = RopeScaling::kYarn;
    c.rope_factor = static_cast<float>(f.get_float(k.key("rope.scaling.factor")));
    if (!(c.rope_factor >= 1.0f && c.rope_factor <= 1024.0f)) {
      throw InputError(path, "metadata " + k.key("rope.scaling.factor") +
                                 ": expected 1 to 1024, found " + std::to_string(c.rope_factor));
    }
    c.rope_orig_context =
        positive(f, k.key("rope.scaling.original_context_length"),
                 f.get_int(k.key("rope.scaling.original_context_length")), int64_t{1} << 30);
    c.yarn_beta_fast = static_cast<float>(
        f.find_float(k.key("rope.scaling.yarn_beta_fast")).value_or(c.yarn_beta_fast));
    c.yarn_beta_slow = static_cast<float>(
        f.find_float(k.key("rope.scaling.yarn_beta_slow")).value_or(c.yarn_beta_slow));
    if (auto total = f.find_float(k.key("rope.scaling.yarn_attn_factor"))) {
      c.yarn_attn_factor =
          static_cast<float>(*total / (1.0 + 0.1 * std::log(static_cast<double>(c.rope_factor))));
    }
  } else if (scaling != "none") {
    throw InputError(path, "metadata " + k.key("rope.scaling.type") + ": unsupported \"" + scaling +
                               "\", expected none or yarn (llama3 scaling comes as " +
                               "the rope_freqs.weight tensor)");
  }
}

// llama3 scaling: per-frequency factors stored as the rope_freqs.weight tensor.
void read_rope_freqs(const ArchKeys& k, ModelConfig& c) {
  const GgufFile& f = k.f;
  const std::string& path = k.path;
  if (const auto* rf = f.find_tensor("rope_freqs.weight")) {
    const std::vector<int64_t> want{c.rope_dim / 2};
    if (rf->type != TensorType::kF32 || rf->dims != want) {
      throw InputError(path, "tensor rope_freqs.weight: expected F32 shape " + dims_text(want) +
                                 ", found " + tensor_type_name(rf->type) + " " +
                                 dims_text(rf->dims));
    }
    c.rope_freq_factors.resize(static_cast<std::size_t>(want[0]));
    std::memcpy(c.rope_freq_factors.data(), rf->data, c.rope_freq_factors.size() * 4);
    for (float v : c.rope_freq_factors) {
      if (!(v > 0.0f) || !std::isfinite(v)) {
        throw InputError(path, "tensor rope_freqs.weight: factors must be positive and finite");
      }
    }
    if (c.rope_scaling == RopeScaling::kNone) {
      c.rope_scaling = RopeScaling::kLlama3;
      c.rope_factor = *std::max_element(c.rope_freq_factors.begin(), c.rope_freq_factors.end());
    }
  }
}

// Bias, QK-norm, post-norms and the sliding-window layers.
void read_layer_features(const ArchKeys& k, ModelConfig& c) {
  const GgufFile& f = k.f;
  const std::string& a = k.a;
  c.qkv_bias = a == "qwen2";
  c.qk_norm = a == "olmo2";
  c.post_norms = a == "olmo2";
  c.layer_sliding.assign(static_cast<std::size_t>(c.n_layer), false);
  if (auto w = f.find_int(k.key("attention.sliding_window")); w && *w > 0) {
    c.sliding_window = positive(f, k.key("attention.sliding_window"), *w, int64_t{1} << 30);
    if (a == "olmo2") {
      c.layer_sliding = sliding_pattern(f, k.key("attention.sliding_window_pattern"), c.n_layer);
    } else {
      // Qwen2 configs carry a window that HF and llama.cpp leave unused (use_sliding_window off).
      c.sliding_window = 0;
    }
  }
}

}  // namespace

ModelConfig config_from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  const std::string path = f.path().string();
  if (c.arch != "llama" && c.arch != "olmo2" && c.arch != "qwen2") {
    throw InputError(path, "metadata general.architecture: unsupported architecture \"" + c.arch +
                               "\", expected llama, olmo2 or qwen2");
  }
  c.name = f.find_string("general.name").value_or("");
  const ArchKeys k{f, c.arch, path};
  read_shape(k, c);
  read_vocab_context_norm(k, c);
  read_rope(k, c);
  read_rope_freqs(k, c);
  read_layer_features(k, c);
  return c;
}

namespace {

struct Slot {
  std::string name;
  std::vector<int64_t> dims;
  Tensor* dst;
  bool optional;
  bool is_norm;  // dummy: filled with ones
};

std::vector<Slot> tensor_slots(const ModelConfig& c, ModelWeights& w) {
  const int64_t E = c.n_embd, V = c.n_vocab, F = c.n_ff;
  const int64_t Q = int64_t{c.n_head} * c.head_dim, KV = int64_t{c.n_head_kv} * c.head_dim;
  std::vector<Slot> s;
  s.push_back({"token_embd.weight", {E, V}, &w.tok_embd, false, false});
  s.push_back({"output_norm.weight", {E}, &w.output_norm, false, true});
  s.push_back({"output.weight", {E, V}, &w.output, true, false});
  w.layers.assign(static_cast<std::size_t>(c.n_layer), LayerWeights{});
  for (int32_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& L = w.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    if (!c.post_norms) s.push_back({p + "attn_norm.weight", {E}, &L.attn_norm, false, true});
    s.push_back({p + "attn_q.weight", {E, Q}, &L.wq, false, false});
    s.push_back({p + "attn_k.weight", {E, KV}, &L.wk, false, false});
    s.push_back({p + "attn_v.weight", {E, KV}, &L.wv, false, false});
    s.push_back({p + "attn_output.weight", {Q, E}, &L.wo, false, false});
    if (c.qkv_bias) {
      s.push_back({p + "attn_q.bias", {Q}, &L.bq, false, false});
      s.push_back({p + "attn_k.bias", {KV}, &L.bk, false, false});
      s.push_back({p + "attn_v.bias", {KV}, &L.bv, false, false});
    }
    if (c.qk_norm) {
      s.push_back({p + "attn_q_norm.weight", {Q}, &L.q_norm, false, true});
      s.push_back({p + "attn_k_norm.weight", {KV}, &L.k_norm, false, true});
    }
    if (c.post_norms) {
      s.push_back({p + "post_attention_norm.weight", {E}, &L.post_attn_norm, false, true});
    } else {
      s.push_back({p + "ffn_norm.weight", {E}, &L.ffn_norm, false, true});
    }
    s.push_back({p + "ffn_gate.weight", {E, F}, &L.w_gate, false, false});
    s.push_back({p + "ffn_up.weight", {E, F}, &L.w_up, false, false});
    s.push_back({p + "ffn_down.weight", {F, E}, &L.w_down, false, false});
    if (c.post_norms) {
      s.push_back({p + "post_ffw_norm.weight", {E}, &L.post_ffn_norm, false, true});
    }
  }
  return s;
}

}  // namespace

ModelWeights load_model(std::shared_ptr<const GgufFile> file) {
  ModelWeights w;
  w.config = config_from_gguf(*file);
  w.source = file->path().string();
  const std::string path = file->path().string();
  for (const Slot& slot : tensor_slots(w.config, w)) {
    const GgufTensorInfo* ti = file->find_tensor(slot.name);
    if (ti == nullptr) {
      if (slot.optional) continue;
      throw InputError(path, "tensor " + slot.name + ": missing");
    }
    if (ti->dims != slot.dims) {
      throw InputError(path, "tensor " + slot.name + ": expected shape " + dims_text(slot.dims) +
                                 ", found " + dims_text(ti->dims));
    }
    Tensor& t = *slot.dst;
    t.name = ti->name;
    t.type = ti->type;
    t.dims = ti->dims;
    t.data = ti->data;
    t.nbytes = ti->nbytes;
  }
  w.config.tied_embeddings = w.output.empty();
  w.file = std::move(file);
  return w;
}

namespace {

struct DummyShape {
  const char* name;
  ModelConfig (*make)();
};

ModelConfig llama_base() {
  ModelConfig c;
  c.arch = "llama";
  c.rope_style = RopeStyle::kInterleaved;
  c.rms_eps = 1e-5f;
  return c;
}

// HuggingFaceTB/SmolLM2-135M: tied embeddings, rope_theta 1e5.
ModelConfig smollm2_135m() {
  ModelConfig c = llama_base();
  c.name = "dummy SmolLM2-135M";
  c.n_layer = 30, c.n_embd = 576, c.n_ff = 1536, c.n_head = 9, c.n_head_kv = 3, c.head_dim = 64;
  c.n_vocab = 49152, c.context_length = 8192, c.rope_base = 100000.0f;
  c.tied_embeddings = true;
  return c;
}

// meta-llama/Llama-3.2-1B: tied embeddings, llama3 rope scaling factor 32.
ModelConfig llama3_1b() {
  ModelConfig c = llama_base();
  c.name = "dummy Llama-3.2-1B";
  c.n_layer = 16, c.n_embd = 2048, c.n_ff = 8192, c.n_head = 32, c.n_head_kv = 8, c.head_dim = 64;
  c.n_vocab = 128256, c.context_length = 131072, c.rope_base = 500000.0f;
  c.rope_scaling = RopeScaling::kLlama3, c.rope_factor = 32.0f, c.rope_orig_context = 8192;
  c.tied_embeddings = true;
  return c;
}

// meta-llama/Llama-3.1-8B: untied, llama3 rope scaling factor 8.
ModelConfig llama3_8b() {
  ModelConfig c = llama_base();
  c.name = "dummy Llama-3.1-8B";
  c.n_layer = 32, c.n_embd = 4096, c.n_ff = 14336, c.n_head = 32, c.n_head_kv = 8, c.head_dim = 128;
  c.n_vocab = 128256, c.context_length = 131072, c.rope_base = 500000.0f;
  c.rope_scaling = RopeScaling::kLlama3, c.rope_factor = 8.0f, c.rope_orig_context = 8192;
  return c;
}

// allenai/Olmo-3-1025-7B: olmo2 arch, sliding window 4096 on 3 of every 4 layers (every 4th is
// full attention and uses YaRN factor 8 over 8192; sliding layers use plain RoPE).
ModelConfig olmo3_7b() {
  ModelConfig c;
  c.arch = "olmo2";
  c.name = "dummy Olmo-3-7B";
  c.n_layer = 32, c.n_embd = 4096, c.n_ff = 11008, c.n_head = 32, c.n_head_kv = 32,
  c.head_dim = 128;
  c.n_vocab = 100278, c.context_length = 65536, c.rms_eps = 1e-6f;
  c.rope_style = RopeStyle::kNeox, c.rope_base = 500000.0f;
  c.rope_scaling = RopeScaling::kYarn, c.rope_factor = 8.0f, c.rope_orig_context = 8192;
  c.yarn_beta_fast = 32.0f, c.yarn_beta_slow = 1.0f;
  // HF attention_factor 1.2079 = 1 + 0.1 ln 8: exactly ggml's built-in mscale.
  c.yarn_attn_factor = 1.0f;
  c.qk_norm = true, c.post_norms = true;
  c.sliding_window = 4096;
  return c;
}

// Test shapes: four layers of the real models' head layout (head size 128), small enough that
// the CPU backend checks the GPU's logits in seconds, with every architecture feature on.
ModelConfig llama3_mini() {
  ModelConfig c = llama3_8b();
  c.name = "dummy Llama-3 mini (test shape)";
  c.n_layer = 4, c.n_embd = 512, c.n_ff = 1024, c.n_head = 4, c.n_head_kv = 1;
  c.context_length = 8192, c.rope_orig_context = 1024;
  return c;
}

ModelConfig olmo3_mini() {
  ModelConfig c = olmo3_7b();
  c.name = "dummy Olmo-3 mini (test shape)";
  c.n_layer = 4, c.n_embd = 512, c.n_ff = 1024, c.n_head = 4, c.n_head_kv = 4;
  c.context_length = 8192, c.rope_orig_context = 1024;
  c.sliding_window = 64;
  return c;
}

constexpr DummyShape kShapes[] = {
    {"smollm2-135m", smollm2_135m}, {"llama3-1b", llama3_1b},     {"llama3-8b", llama3_8b},
    {"olmo3-7b", olmo3_7b},         {"llama3-mini", llama3_mini}, {"olmo3-mini", olmo3_mini},
};

// splitmix64: a counter-based generator, so any element can be drawn independently.
using flowrank::splitmix64;

// Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
double normal_quantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549671010270800e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  const double lo = 0.02425;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normal_quantile(1 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// Runs `task(k)` for k in [0, n) on all cores, handing out indices in order.
template <class F>
void parallel_for(std::size_t n, const F& task) {
  const unsigned hw = std::max(1u, std::min(64u, std::thread::hardware_concurrency()));
  const auto n_threads = static_cast<unsigned>(std::min<std::size_t>(hw, n));
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t k; (k = next.fetch_add(1)) < n;) task(k);
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& th : threads) th.join();
}

}  // namespace

// N(0, 0.02) as f16 at the 65536 midpoint quantiles: a 16-bit uniform indexes it, so one 64-bit
// hash yields four samples.
const std::vector<uint16_t>& dummy_normal_f16_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (int k = 0; k < 65536; ++k) {
      t[k] = float_to_half(static_cast<float>(0.02 * normal_quantile((k + 0.5) / 65536.0)));
    }
    return t;
  }();
  return table;
}

// Element i is 16-bit lane i % 4 of splitmix64(key + i / 4): independent of how the work is
// split, so the weights do not depend on the thread count (or the device).
void fill_dummy_f16(const Tensor& t, uint16_t* out, int64_t begin, int64_t end) {
  if (t.dummy_ones) {
    std::fill(out + begin, out + end, float_to_half(1.0f));
    return;
  }
  const uint16_t* table = dummy_normal_f16_table().data();
  const uint64_t key = t.dummy_key;
  int64_t i = begin;
  for (; i < end && i % 4 != 0; ++i)
    out[i] = table[(splitmix64(key + static_cast<uint64_t>(i / 4)) >> (16 * (i % 4))) & 0xFFFF];
  for (; i + 4 <= end; i += 4) {
    const uint64_t r = splitmix64(key + static_cast<uint64_t>(i / 4));
    out[i] = table[r & 0xFFFF];
    out[i + 1] = table[(r >> 16) & 0xFFFF];
    out[i + 2] = table[(r >> 32) & 0xFFFF];
    out[i + 3] = table[r >> 48];
  }
  for (; i < end; ++i)
    out[i] = table[(splitmix64(key + static_cast<uint64_t>(i / 4)) >> (16 * (i % 4))) & 0xFFFF];
}

std::vector<std::string> dummy_model_shapes() {
  std::vector<std::string> out;
  for (const auto& s : kShapes) out.push_back(s.name);
  return out;
}

ModelConfig dummy_model_config(const std::string& shape) {
  for (const auto& s : kShapes) {
    if (shape == s.name) {
      ModelConfig c = s.make();
      c.rope_dim = c.head_dim;
      if (c.rope_scaling == RopeScaling::kLlama3) c.rope_freq_factors = llama3_freq_factors(c);
      c.layer_sliding.assign(static_cast<std::size_t>(c.n_layer), false);
      if (c.sliding_window > 0) {
        for (int32_t il = 0; il < c.n_layer; ++il) c.layer_sliding[il] = il % 4 != 3;
      }
      return c;
    }
  }
  std::string known;
  for (const auto& s : kShapes) known += std::string(known.empty() ? "" : ", ") + s.name;
  throw InputError("dummy:" + shape, "unknown dummy shape, known: " + known);
}

// Tensor list of a dummy shape without data (for `model info`).
std::vector<DummyTensor> dummy_tensor_list(const ModelConfig& c) {
  ModelWeights scratch;
  std::vector<DummyTensor> out;
  for (const Slot& s : tensor_slots(c, scratch)) {
    if (s.optional && c.tied_embeddings) continue;
    out.push_back({s.name, s.dims});
  }
  return out;
}

ModelWeights load_model(const std::string& spec, uint64_t dummy_seed, bool generate_dummy) {
  constexpr std::string_view kDummy = "dummy:";
  if (spec.rfind(kDummy, 0) != 0) return load_model(GgufFile::open(spec));

  ModelWeights w;
  w.config = dummy_model_config(spec.substr(kDummy.size()));
  w.source = spec;
  const std::vector<Slot> slots = tensor_slots(w.config, w);
  std::vector<Tensor*> used;
  uint64_t index = 0;
  for (const Slot& slot : slots) {
    ++index;
    if (slot.optional && w.config.tied_embeddings) continue;
    Tensor& t = *slot.dst;
    t.name = slot.name;
    t.type = TensorType::kF16;
    t.dims = slot.dims;
    t.nbytes = static_cast<std::size_t>(t.elements()) * 2;
    t.dummy = true;
    t.dummy_ones = slot.is_norm;
    t.dummy_key = splitmix64(splitmix64(dummy_seed) + index);
    used.push_back(&t);
  }
  if (!generate_dummy) return w;
  // Allocation zero-fills, so it runs in parallel too (a 7B model is 15 GB).
  w.owned.resize(used.size());
  parallel_for(used.size(), [&](std::size_t k) {
    w.owned[k] = std::vector<std::byte>(used[k]->nbytes);
    used[k]->data = w.owned[k].data();
  });
  constexpr int64_t kChunk = int64_t{1} << 20;
  struct Piece {
    std::size_t tensor;
    int64_t begin, end;
  };
  std::vector<Piece> pieces;
  for (std::size_t k = 0; k < used.size(); ++k) {
    const int64_t n = used[k]->elements();
    for (int64_t b = 0; b < n; b += kChunk) pieces.push_back({k, b, std::min(n, b + kChunk)});
  }
  parallel_for(pieces.size(), [&](std::size_t k) {
    const Piece& p = pieces[k];
    fill_dummy_f16(*used[p.tensor], reinterpret_cast<uint16_t*>(w.owned[p.tensor].data()), p.begin,
                   p.end);
  });
  return w;
}

}  // namespace flowrank::engine
