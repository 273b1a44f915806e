#include "flowrank/engine/cpu/cpu_model_runner.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <numbers>
#include <sstream>
#include <string>
#include <thread>

#include "flowrank/common/error.hpp"

namespace flowrank::engine {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> out(static_cast<std::size_t>(t.elements()));
  dequantize(t.type, t.data, out.data(), t.elements());
  return out;
}

void append_f32(std::vector<float>& dst, const Tensor& t) {
  const std::size_t at = dst.size();
  dst.resize(at + static_cast<std::size_t>(t.elements()));
  dequantize(t.type, t.data, dst.data() + at, t.elements());
}

// Sum of squares in double, in index order: the same for a row wherever it sits in a batch.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// Fixed 8-way partial sums: vectorizable without -ffast-math, and a fixed order.
float dot(const float* a, const float* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Query heads per KV head that attention keeps on the stack (GQA groups are 1 to 8 in practice).
constexpr int kMaxGroup = 64;

float silu(float x) {
  return x / (1.0f + std::exp(-x));
}

}  // namespace

std::size_t cpu_available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::size_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

void cpu_matmul(const float* x, int64_t m, const float* w, int64_t n, int64_t k, float* y,
                int32_t tile_rows, std::vector<float>& scratch) {
  if (m <= 0) return;
  const auto sgemm = [&](const float* a, int64_t rows, float* c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(k),
                w, static_cast<blasint>(k), 0.0f, c, static_cast<blasint>(n));
  };
  if (tile_rows <= 0) {
    sgemm(x, m, y);
    return;
  }
  // Rows in whole multiples of the tile go straight to sgemm (M a multiple of the tile); the rest
  // is padded with zero rows to one more tile. Either way M is a multiple of the tile. The tile
  // also grows until M*N*K > 1e6, which keeps OpenBLAS's small-matrix kernels (x86-64, taken
  // for M*N*K <= 100^3) out of the picture: they reduce in another order than the blocked
  // kernel, so a batch that crossed the threshold would change its rows (tiny models only).
  int64_t tile = tile_rows;
  while (static_cast<double>(tile) * static_cast<double>(n) * static_cast<double>(k) <= 2.0e6) {
    tile += tile_rows;
  }
  const int64_t whole = m / tile * tile;
  if (whole > 0) sgemm(x, whole, y);
  const int64_t rows = m - whole;
  if (rows == 0) return;
  const std::size_t in_floats = static_cast<std::size_t>(tile * k);
  const std::size_t out_floats = static_cast<std::size_t>(tile * n);
  if (scratch.size() < in_floats + out_floats) scratch.resize(in_floats + out_floats);
  float* a = scratch.data();
  float* c = scratch.data() + in_floats;
  std::memcpy(a, x + whole * k, sizeof(float) * static_cast<std::size_t>(rows * k));
  std::fill(a + rows * k, a + tile * k, 0.0f);
  sgemm(a, tile, c);
  std::memcpy(y + whole * n, c, sizeof(float) * static_cast<std::size_t>(rows * n));
}

CpuModelRunner::CpuModelRunner(ModelWeights weights, CpuRunnerOptions options)
    : weights_(std::move(weights)), options_(options) {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads_ = options_.threads > 0 ? options_.threads : hw;
  memory_budget_ =
      options_.memory_limit_bytes > 0 ? options_.memory_limit_bytes : cpu_available_memory();
  // /proc/meminfo unreadable: no basis to refuse; size the pool as if 16 GiB were free.
  if (memory_budget_ == 0) memory_budget_ = std::size_t{16} << 30;
  const ModelConfig& c = weights_.config;
  if (c.arch != "llama" && c.arch != "olmo2" && c.arch != "qwen2") {
    throw RunError("cpu backend: unsupported architecture '" + c.arch + "'");
  }

  // RoPE inverse frequencies, once, in double: every position's angles come from these.
  const int rope_dim = c.rope_dim > 0 ? c.rope_dim : c.head_dim;
  const int pairs = rope_dim / 2;
  std::vector<double> base(static_cast<std::size_t>(pairs));
  for (int i = 0; i < pairs; ++i) {
    base[static_cast<std::size_t>(i)] =
        1.0 / std::pow(static_cast<double>(c.rope_base), (2.0 * i) / rope_dim);
  }
  rope_plain_.inv_freq = base;
  rope_main_.inv_freq = base;
  if (!c.rope_freq_factors.empty() && c.rope_scaling != RopeScaling::kYarn) {
    // Factors from the GGUF (rope_freqs.weight, llama3): llama.cpp divides each pair's
    // frequency by its factor.
    if (c.rope_freq_factors.size() != static_cast<std::size_t>(pairs)) {
      throw RunError("cpu backend: " + std::to_string(c.rope_freq_factors.size()) +
                     " rope frequency factors for " + std::to_string(pairs) + " rotated pairs");
    }
    for (int i = 0; i < pairs; ++i) {
      rope_main_.inv_freq[static_cast<std::size_t>(i)] /=
          c.rope_freq_factors[static_cast<std::size_t>(i)];
    }
  } else if (c.rope_scaling == RopeScaling::kLlama3) {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, a smooth ramp between.
    const double factor = c.rope_factor;
    const double orig = c.rope_orig_context;
    const double low_wavelen = orig / c.llama3_low_freq_factor;
    const double high_wavelen = orig / c.llama3_high_freq_factor;
    for (double& f : rope_main_.inv_freq) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        f /= factor;
        continue;
      }
      const double smooth = (orig / wavelen - c.llama3_low_freq_factor) /
                            (c.llama3_high_freq_factor - c.llama3_low_freq_factor);
      f = (1.0 - smooth) * f / factor + smooth * f;
    }
  } else if (c.rope_scaling == RopeScaling::kYarn) {
    // YaRN as in HF's _compute_yarn_parameters: interpolate low frequencies by `factor`, keep
    // high ones, linear ramp between the correction dims; cos/sin scaled by the mscale.
    const double factor = c.rope_factor;
    const double orig = c.rope_orig_context;
    const auto corr_dim = [&](double rotations) {
      return (rope_dim * std::log(orig / (rotations * 2.0 * std::numbers::pi))) /
             (2.0 * std::log(static_cast<double>(c.rope_base)));
    };
    double low = std::max(0.0, std::floor(corr_dim(c.yarn_beta_fast)));
    double high =
        std::min(static_cast<double>(rope_dim - 1), std::ceil(corr_dim(c.yarn_beta_slow)));
    if (low == high) high += 0.001;
    for (int i = 0; i < pairs; ++i) {
      const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      const double extrapolation = 1.0 - ramp;
      const double f = base[static_cast<std::size_t>(i)];
      rope_main_.inv_freq[static_cast<std::size_t>(i)] =
          (f / factor) * (1.0 - extrapolation) + f * extrapolation;
    }
    const double mscale = factor > 1.0 ? 0.1 * std::log(factor) + 1.0 : 1.0;
    rope_main_.mscale = static_cast<float>(mscale * c.yarn_attn_factor);
  }
}

CpuModelRunner::~CpuModelRunner() = default;

std::size_t CpuModelRunner::f32_weight_bytes() const {
  const auto el = [](const Tensor& t) -> std::size_t {
    return t.empty() ? 0 : static_cast<std::size_t>(t.elements());
  };
  std::size_t n = el(weights_.tok_embd) + el(weights_.output_norm) + el(weights_.output);
  for (const LayerWeights& l : weights_.layers) {
    for (const Tensor* t :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm,
          &l.post_attn_norm, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down, &l.post_ffn_norm}) {
      n += el(*t);
    }
  }
  return n * sizeof(float);
}

void require_f32_fit(const std::string& source, std::size_t weight_bytes, std::size_t budget) {
  if (weight_bytes > budget) {
    std::ostringstream msg;
    msg.precision(3);
    msg << "out of memory: model " << source << " needs " << weight_bytes / kGiB << " GiB as f32, "
        << budget / kGiB << " GiB available";
    throw RunError(msg.str());
  }
}

std::size_t f32_weight_bytes_of(const ModelConfig& c) {
  const std::size_t e = static_cast<std::size_t>(c.n_embd), v = static_cast<std::size_t>(c.n_vocab);
  const std::size_t q = static_cast<std::size_t>(c.n_head) * c.head_dim;
  const std::size_t kv = static_cast<std::size_t>(c.n_head_kv) * c.head_dim;
  const std::size_t per_layer = e * (q + 2 * kv) + q * e + 3 * e * static_cast<std::size_t>(c.n_ff);
  return sizeof(float) * (v * e * (c.tied_embeddings ? 1 : 2) + per_layer * c.n_layer);
}

void CpuModelRunner::check_weights_fit() const {
  require_f32_fit(weights_.source, f32_weight_bytes(), memory_budget_);
}

int32_t CpuModelRunner::max_kv_blocks(int32_t block_size) const {
  const ModelConfig& c = weights_.config;
  check_weights_fit();  // say why there is no room, rather than "0 blocks"

  const double block_bytes = 2.0 * block_size * c.n_layer * c.n_head_kv * c.head_dim * 4.0;
  const double budget =
      static_cast<double>(memory_budget_) * 0.5 - static_cast<double>(f32_weight_bytes());
  if (budget <= 0 || block_bytes <= 0) return 0;
  // More than 16 full contexts is never useful on a CPU.
  const double cap =
      std::ceil(static_cast<double>(std::max(c.context_length, 1)) / block_size) * 16;
  const double blocks = std::min({std::floor(budget / block_bytes), cap,
                                  static_cast<double>(std::numeric_limits<int32_t>::max())});
  return static_cast<int32_t>(blocks);
}

void CpuModelRunner::preload(int32_t num_blocks, int32_t block_size) {
  const ModelConfig& c = weights_.config;
  if (num_blocks <= 0 || block_size <= 0) {
    throw RunError("cpu backend: KV pool needs at least one block of at least one token");
  }
  const std::size_t weight_bytes = f32_weight_bytes();
  const std::size_t block_floats =
      static_cast<std::size_t>(block_size) * c.n_layer * c.n_head_kv * c.head_dim;
  const std::size_t pool_bytes = 2 * block_floats * sizeof(float) * num_blocks;
  check_weights_fit();
  if (weight_bytes + pool_bytes > memory_budget_) {
    std::ostringstream msg;
    msg.precision(3);
    msg << "out of memory: model needs " << weight_bytes / kGiB << " GiB as f32 and the KV pool of "
        << num_blocks << " blocks " << pool_bytes / kGiB << " GiB, " << memory_budget_ / kGiB
        << " GiB available";
    throw RunError(msg.str());
  }
  openblas_set_num_threads(threads_);
  try {
    tok_embd_ = to_f32(weights_.tok_embd);
    output_norm_ = to_f32(weights_.output_norm);
    if (!c.tied_embeddings && !weights_.output.empty()) output_ = to_f32(weights_.output);
    layers_.resize(static_cast<std::size_t>(c.n_layer));
    for (int32_t il = 0; il < c.n_layer; ++il) {
      const LayerWeights& lw = weights_.layers[static_cast<std::size_t>(il)];
      Layer& l = layers_[static_cast<std::size_t>(il)];
      append_f32(l.wqkv, lw.wq);
      append_f32(l.wqkv, lw.wk);
      append_f32(l.wqkv, lw.wv);
      if (c.qkv_bias) {
        append_f32(l.bqkv, lw.bq);
        append_f32(l.bqkv, lw.bk);
        append_f32(l.bqkv, lw.bv);
      }
      l.wo = to_f32(lw.wo);
      append_f32(l.w_gate_up, lw.w_gate);
      append_f32(l.w_gate_up, lw.w_up);
      l.w_down = to_f32(lw.w_down);
      if (c.post_norms) {
        l.post_attn_norm = to_f32(lw.post_attn_norm);
        l.post_ffn_norm = to_f32(lw.post_ffn_norm);
      } else {
        l.attn_norm = to_f32(lw.attn_norm);
        l.ffn_norm = to_f32(lw.ffn_norm);
      }
      if (c.qk_norm) {
        l.q_norm = to_f32(lw.q_norm);
        l.k_norm = to_f32(lw.k_norm);
      }
    }
    // Left uninitialized: a slot is always written before attention reads it, and untouched
    // pages of a large pool cost no memory until used.
    k_pool_.reset(new float[block_floats * static_cast<std::size_t>(num_blocks)]);
    v_pool_.reset(new float[block_floats * static_cast<std::size_t>(num_blocks)]);
  } catch (const std::bad_alloc&) {
    std::ostringstream msg;
    msg.precision(3);
    msg << "out of memory: model needs " << weight_bytes / kGiB << " GiB as f32 plus "
        << pool_bytes / kGiB << " GiB of KV pool, allocation failed";
    throw RunError(msg.str());
  }
  num_blocks_ = num_blocks;
  block_size_ = block_size;
  block_floats_ = block_floats;
  preloaded_ = true;
}

std::string CpuModelRunner::device_name() const {
  return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread" : " threads") +
         ", OpenBLAS)";
}

void CpuModelRunner::copy_block(int32_t src, int32_t dst) {
  if (!preloaded_ || src < 0 || dst < 0 || src >= num_blocks_ || dst >= num_blocks_) {
    throw RunError("cpu backend: copy_block(" + std::to_string(src) + ", " + std::to_string(dst) +
                   ") outside the pool of " + std::to_string(num_blocks_) + " blocks");
  }
  if (src == dst) return;
  const std::size_t n = block_floats_;
  std::memcpy(k_pool_.get() + n * dst, k_pool_.get() + n * src, n * sizeof(float));
  std::memcpy(v_pool_.get() + n * dst, v_pool_.get() + n * src, n * sizeof(float));
}

void CpuModelRunner::matmul(const float* x, int64_t m, const std::vector<float>& w, int64_t n,
                            float* y) {
  const int64_t k = static_cast<int64_t>(w.size()) / n;
  cpu_matmul(x, m, w.data(), n, k, y, options_.gemm_tile_rows, gemm_scratch_);
}

// cos/sin per row and pair, computed the same way for a position wherever it occurs: angle in
// double from the precomputed inverse frequency, rounded to float once.
void CpuModelRunner::fill_rope(const RopeTable& table, const std::vector<int32_t>& positions,
                               std::vector<float>& cos_sin) const {
  const std::size_t pairs = table.inv_freq.size();
  cos_sin.resize(positions.size() * pairs * 2);
  for (std::size_t r = 0; r < positions.size(); ++r) {
    float* cs = cos_sin.data() + r * pairs * 2;
    for (std::size_t i = 0; i < pairs; ++i) {
      const double angle = static_cast<double>(positions[r]) * table.inv_freq[i];
      cs[2 * i] = static_cast<float>(std::cos(angle)) * table.mscale;
      cs[2 * i + 1] = static_cast<float>(std::sin(angle)) * table.mscale;
    }
  }
}

void CpuModelRunner::apply_rope(float* v, int n_heads, const float* cos_sin) const {
  const ModelConfig& c = weights_.config;
  const int hd = c.head_dim;
  const int rope_dim = c.rope_dim > 0 ? c.rope_dim : hd;
  const int pairs = rope_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + static_cast<std::ptrdiff_t>(h) * hd;
    for (int i = 0; i < pairs; ++i) {
      const float cs = cos_sin[2 * i];
      const float sn = cos_sin[2 * i + 1];
      const int a = c.rope_style == RopeStyle::kInterleaved ? 2 * i : i;
      const int b = c.rope_style == RopeStyle::kInterleaved ? 2 * i + 1 : i + pairs;
      const float x0 = x[a];
      const float x1 = x[b];
      x[a] = x0 * cs - x1 * sn;
      x[b] = x0 * sn + x1 * cs;
    }
  }
}

void CpuModelRunner::forward(const ForwardBatch& batch, std::vector<float>& logits) {
  if (!preloaded_) throw RunError("cpu backend: forward before preload");
  const ModelConfig& c = weights_.config;
  const int64_t E = c.n_embd;
  const int64_t hd = c.head_dim;
  const int64_t nq = static_cast<int64_t>(c.n_head) * hd;
  const int64_t nkv = static_cast<int64_t>(c.n_head_kv) * hd;
  const int64_t nqkv = nq + 2 * nkv;
  const int64_t F = c.n_ff;
  const int64_t V = c.n_vocab;
  const int group = c.n_head / c.n_head_kv;
  if (group > kMaxGroup)
    throw RunError("cpu backend: " + std::to_string(group) + " query heads per KV head, at most " +
                   std::to_string(kMaxGroup) + " supported");

  // Rows = every new token of every item, in item order.
  std::vector<int32_t> row_item, row_pos, row_tok;
  std::vector<int64_t> logit_rows;
  for (std::size_t it = 0; it < batch.items.size(); ++it) {
    const ForwardItem& item = batch.items[it];
    const int64_t n = static_cast<int64_t>(item.tokens.size());
    const int64_t end = item.start_pos + n;
    if (item.start_pos < 0 || static_cast<int64_t>(item.block_table.size()) * block_size_ < end) {
      throw RunError("cpu backend: item " + std::to_string(it) + ": block table of " +
                     std::to_string(item.block_table.size()) +
                     " blocks does not cover positions [0, " + std::to_string(end) + ")");
    }
    for (int64_t b = 0; b < (end + block_size_ - 1) / block_size_; ++b) {
      const int32_t blk = item.block_table[static_cast<std::size_t>(b)];
      if (blk < 0 || blk >= num_blocks_) {
        throw RunError("cpu backend: item " + std::to_string(it) + ": block " +
                       std::to_string(blk) + " outside the pool of " + std::to_string(num_blocks_) +
                       " blocks");
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const int32_t tok = item.tokens[static_cast<std::size_t>(i)];
      if (tok < 0 || tok >= V) {
        throw RunError("cpu backend: item " + std::to_string(it) + ": token id " +
                       std::to_string(tok) + " outside the vocabulary of " + std::to_string(V));
      }
      row_item.push_back(static_cast<int32_t>(it));
      row_tok.push_back(tok);
      row_pos.push_back(static_cast<int32_t>(item.start_pos + i));
    }
    if (item.want_logits && n == 0) {
      throw RunError("cpu backend: item " + std::to_string(it) +
                     ": logits wanted but no tokens to compute");
    }
    if (item.want_logits) logit_rows.push_back(static_cast<int64_t>(row_pos.size()) - 1);
  }
  const int64_t T = static_cast<int64_t>(row_pos.size());
  logits.assign(static_cast<std::size_t>(logit_rows.size() * V), 0.0f);
  if (T == 0) return;

  std::vector<float> x(static_cast<std::size_t>(T * E)), h(static_cast<std::size_t>(T * E));
  std::vector<float> qkv(static_cast<std::size_t>(T * nqkv)), att(static_cast<std::size_t>(T * nq));
  std::vector<float> gu(static_cast<std::size_t>(T * 2 * F)), act(static_cast<std::size_t>(T * F));
  for (int64_t r = 0; r < T; ++r) {
    const int64_t tok = row_tok[static_cast<std::size_t>(r)];
    std::memcpy(x.data() + r * E, tok_embd_.data() + tok * E, sizeof(float) * E);
  }
  std::vector<float> cs_main, cs_plain;
  fill_rope(rope_main_, row_pos, cs_main);
  const bool any_plain = c.rope_scaling == RopeScaling::kYarn;
  if (any_plain) fill_rope(rope_plain_, row_pos, cs_plain);
  const std::size_t cs_stride = rope_main_.inv_freq.size() * 2;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::size_t layer_floats = static_cast<std::size_t>(block_size_) * nkv;
  int32_t max_pos = 0;
  for (int32_t p : row_pos) max_pos = std::max(max_pos, p);
  // OpenMP only where the work is worth waking the team: on few cores, idle OpenMP threads spin
  // against OpenBLAS's own threads and make small (decode) steps several times slower. The
  // result is the same either way: every row's arithmetic is the same serial loop.
  int64_t attention_work = 0;  // (row, head, past position) triples
  for (int32_t p : row_pos) attention_work += static_cast<int64_t>(p + 1) * c.n_head;
  const int nt_rows = T >= 64 ? threads_ : 1;
  const int nt_attention = attention_work * hd >= (int64_t{1} << 22) ? threads_ : 1;

  for (int32_t il = 0; il < c.n_layer; ++il) {
    const Layer& L = layers_[static_cast<std::size_t>(il)];
    const bool sliding = c.sliding_window > 0 &&
                         static_cast<std::size_t>(il) < c.layer_sliding.size() &&
                         c.layer_sliding[static_cast<std::size_t>(il)];
    // Attention input: pre-norm (llama) or the raw residual stream (olmo2).
    if (!c.post_norms) {
      for (int64_t r = 0; r < T; ++r) {
        rms_norm(x.data() + r * E, L.attn_norm.data(), h.data() + r * E, E, c.rms_eps);
      }
      matmul(h.data(), T, L.wqkv, nqkv, qkv.data());
    } else {
      matmul(x.data(), T, L.wqkv, nqkv, qkv.data());
    }
    const float* cs_all = (any_plain && sliding) ? cs_plain.data() : cs_main.data();
#pragma omp parallel for schedule(static) num_threads(nt_rows) if (nt_rows > 1)
    for (int64_t r = 0; r < T; ++r) {
      float* q = qkv.data() + r * nqkv;
      float* k = q + nq;
      float* v = k + nkv;
      if (!L.bqkv.empty()) {
        for (int64_t i = 0; i < nqkv; ++i) q[i] += L.bqkv[static_cast<std::size_t>(i)];
      }
      if (c.qk_norm) {
        rms_norm(q, L.q_norm.data(), q, nq, c.rms_eps);
        rms_norm(k, L.k_norm.data(), k, nkv, c.rms_eps);
      }
      const float* cs = cs_all + static_cast<std::size_t>(r) * cs_stride;
      apply_rope(q, c.n_head, cs);
      apply_rope(k, c.n_head_kv, cs);
      // Store K and V through the block table.
      const ForwardItem& item =
          batch.items[static_cast<std::size_t>(row_item[static_cast<std::size_t>(r)])];
      const int32_t pos = row_pos[static_cast<std::size_t>(r)];
      const int32_t blk = item.block_table[static_cast<std::size_t>(pos / block_size_)];
      const std::size_t off = static_cast<std::size_t>(blk) * block_floats_ +
                              static_cast<std::size_t>(il) * layer_floats +
                              static_cast<std::size_t>(pos % block_size_) * nkv;
      std::memcpy(k_pool_.get() + off, k, sizeof(float) * nkv);
      std::memcpy(v_pool_.get() + off, v, sizeof(float) * nkv);
    }

    // Attention, one (row, KV head) at a time over the row's own past, in position order. The
    // `group` query heads that share a KV head are done together so each K and V row is read
    // once for all of them; each head's arithmetic is still the same serial sequence (dot,
    // exp, accumulate in position order), so results do not depend on the batch.
#pragma omp parallel num_threads(nt_attention) if (nt_attention > 1)
    {
      std::vector<float> scores(static_cast<std::size_t>(group) * (max_pos + 1));
      std::vector<float> acc(static_cast<std::size_t>(group * hd));
#pragma omp for schedule(dynamic, 1)
      for (int64_t job = 0; job < T * c.n_head_kv; ++job) {
        const int64_t r = job / c.n_head_kv;
        const int kvh = static_cast<int>(job % c.n_head_kv);
        const ForwardItem& item =
            batch.items[static_cast<std::size_t>(row_item[static_cast<std::size_t>(r)])];
        const int32_t pos = row_pos[static_cast<std::size_t>(r)];
        const int32_t first = sliding ? std::max(0, pos - c.sliding_window + 1) : 0;
        const int32_t n_ctx = pos - first + 1;
        const float* q0 = qkv.data() + r * nqkv + static_cast<int64_t>(kvh) * group * hd;
        const std::size_t head_off =
            static_cast<std::size_t>(il) * layer_floats + static_cast<std::size_t>(kvh) * hd;
        // Visits positions [first, pos] block by block: fn(j, offset of row j in the pools).
        auto for_each_position = [&](auto&& fn) {
          for (int32_t j = first; j <= pos;) {
            const int32_t b = j / block_size_;
            const std::size_t base =
                static_cast<std::size_t>(item.block_table[static_cast<std::size_t>(b)]) *
                    block_floats_ +
                head_off;
            const int32_t end = std::min(pos, (b + 1) * block_size_ - 1);
            for (; j <= end; ++j) fn(j, base + static_cast<std::size_t>(j - b * block_size_) * nkv);
          }
        };
        float mx[kMaxGroup];
        for (int g = 0; g < group; ++g) mx[g] = -std::numeric_limits<float>::infinity();
        for_each_position([&](int32_t j, std::size_t off) {
          const float* kj = k_pool_.get() + off;
          for (int g = 0; g < group; ++g) {
            const float sc = dot(q0 + g * hd, kj, static_cast<int>(hd)) * scale;
            scores[static_cast<std::size_t>(g) * n_ctx + (j - first)] = sc;
            mx[g] = std::max(mx[g], sc);
          }
        });
        float sum[kMaxGroup];
        for (int g = 0; g < group; ++g) {
          sum[g] = 0.0f;
          float* sg = scores.data() + static_cast<std::size_t>(g) * n_ctx;
          for (int32_t i = 0; i < n_ctx; ++i) sg[i] = std::exp(sg[i] - mx[g]);
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        for_each_position([&](int32_t j, std::size_t off) {
          const float* __restrict vj = v_pool_.get() + off;
          for (int g = 0; g < group; ++g) {
            const float e = scores[static_cast<std::size_t>(g) * n_ctx + (j - first)];
            sum[g] += e;
            float* __restrict ag = acc.data() + static_cast<std::size_t>(g) * hd;
            for (int64_t d = 0; d < hd; ++d) ag[d] += e * vj[d];
          }
        });
        for (int g = 0; g < group; ++g) {
          float* out = att.data() + r * nq + (static_cast<int64_t>(kvh) * group + g) * hd;
          const float inv = 1.0f / sum[g];
          const float* ag = acc.data() + static_cast<std::size_t>(g) * hd;
          for (int64_t d = 0; d < hd; ++d) out[d] = ag[d] * inv;
        }
      }
    }

    matmul(att.data(), T, L.wo, E, h.data());
    if (c.post_norms) {
      for (int64_t r = 0; r < T; ++r) {
        float* hr = h.data() + r * E;
        rms_norm(hr, L.post_attn_norm.data(), hr, E, c.rms_eps);
      }
    }
    for (int64_t i = 0; i < T * E; ++i)
      x[static_cast<std::size_t>(i)] += h[static_cast<std::size_t>(i)];

    // Feed-forward: SwiGLU.
    if (!c.post_norms) {
      for (int64_t r = 0; r < T; ++r) {
        rms_norm(x.data() + r * E, L.ffn_norm.data(), h.data() + r * E, E, c.rms_eps);
      }
      matmul(h.data(), T, L.w_gate_up, 2 * F, gu.data());
    } else {
      matmul(x.data(), T, L.w_gate_up, 2 * F, gu.data());
    }
    for (int64_t r = 0; r < T; ++r) {
      const float* g = gu.data() + r * 2 * F;
      const float* u = g + F;
      float* a = act.data() + r * F;
      for (int64_t i = 0; i < F; ++i) a[i] = silu(g[i]) * u[i];
    }
    matmul(act.data(), T, L.w_down, E, h.data());
    if (c.post_norms) {
      for (int64_t r = 0; r < T; ++r) {
        float* hr = h.data() + r * E;
        rms_norm(hr, L.post_ffn_norm.data(), hr, E, c.rms_eps);
      }
    }
    for (int64_t i = 0; i < T * E; ++i)
      x[static_cast<std::size_t>(i)] += h[static_cast<std::size_t>(i)];
  }

  if (logit_rows.empty()) return;
  const int64_t nl = static_cast<int64_t>(logit_rows.size());
  std::vector<float> last(static_cast<std::size_t>(nl * E));
  for (int64_t i = 0; i < nl; ++i) {
    rms_norm(x.data() + logit_rows[static_cast<std::size_t>(i)] * E, output_norm_.data(),
             last.data() + i * E, E, c.rms_eps);
  }
  const std::vector<float>& out_w = output_.empty() ? tok_embd_ : output_;
  matmul(last.data(), nl, out_w, V, logits.data());
}

}  // namespace flowrank::engine
