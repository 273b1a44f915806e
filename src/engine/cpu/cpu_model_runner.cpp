#include "flowrank/engine/cpu/cpu_model_runner.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "flowrank/common/error.hpp"
#include "flowrank/engine/cpu/cpu_ops.hpp"

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

// Query heads per KV head that attention keeps on the stack (GQA groups are 1 to 8 in practice).
constexpr int kMaxGroup = 64;

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
  try {
    plan_ = ModelPlan::build(c);
  } catch (const RunError& e) {
    throw RunError(std::string("cpu backend: ") + e.what());
  }
  const int group = c.n_head / c.n_head_kv;
  if (group > kMaxGroup)
    throw RunError("cpu backend: " + std::to_string(group) + " query heads per KV head, at most " +
                   std::to_string(kMaxGroup) + " supported");
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

int32_t CpuModelRunner::pool_blocks(const RunnerLimits& limits) const {
  if (limits.kv_blocks > 0) return limits.kv_blocks;
  const ModelConfig& c = weights_.config;
  const int32_t bs = limits.block_size;
  const double block_bytes = 2.0 * bs * c.n_layer * c.n_head_kv * c.head_dim * 4.0;
  const double budget =
      static_cast<double>(memory_budget_) * 0.5 - static_cast<double>(f32_weight_bytes());
  if (budget <= 0 || block_bytes <= 0) return 0;
  // More than 16 full contexts is never useful on a CPU.
  double cap = std::ceil(static_cast<double>(std::max(c.context_length, 1)) / bs) * 16;
  if (limits.kv_blocks_cap > 0) cap = std::min(cap, static_cast<double>(limits.kv_blocks_cap));
  const double blocks = std::min({std::floor(budget / block_bytes), cap,
                                  static_cast<double>(std::numeric_limits<int32_t>::max())});
  return static_cast<int32_t>(blocks);
}

void CpuModelRunner::load_weights() {
  const ModelConfig& c = weights_.config;
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
    for (auto [dst, src] : {std::pair{&l.attn_norm, &lw.attn_norm},
                            {&l.ffn_norm, &lw.ffn_norm},
                            {&l.post_attn_norm, &lw.post_attn_norm},
                            {&l.post_ffn_norm, &lw.post_ffn_norm},
                            {&l.q_norm, &lw.q_norm},
                            {&l.k_norm, &lw.k_norm}}) {
      if (!src->empty()) *dst = to_f32(*src);
    }
  }
}

int32_t CpuModelRunner::preload(const RunnerLimits& limits) {
  const ModelConfig& c = weights_.config;
  check_weights_fit();  // say why there is no room, rather than "0 blocks"
  const int32_t num_blocks = pool_blocks(limits);
  const int32_t block_size = limits.block_size;
  if (num_blocks <= 0 || block_size <= 0) {
    throw RunError("cpu backend: KV pool needs at least one block of at least one token");
  }
  const std::size_t weight_bytes = f32_weight_bytes();
  const std::size_t block_floats =
      static_cast<std::size_t>(block_size) * c.n_layer * c.n_head_kv * c.head_dim;
  const std::size_t pool_bytes = 2 * block_floats * sizeof(float) * num_blocks;
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
    load_weights();
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
  return num_blocks;
}

std::string CpuModelRunner::device_name() const {
  return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread" : " threads") +
         ", OpenBLAS)";
}

const std::vector<float>& CpuModelRunner::weight(int32_t layer, WeightSlot slot) const {
  if (slot == WeightSlot::kTokenEmbd) return tok_embd_;
  if (slot == WeightSlot::kOutputNorm) return output_norm_;
  if (slot == WeightSlot::kOutput) return output_.empty() ? tok_embd_ : output_;
  const std::vector<float>* w = layer_slot(layers_[static_cast<std::size_t>(layer)], slot);
  if (w != nullptr) return *w;
  throw std::logic_error("cpu backend: no weight for this slot");
}

void CpuModelRunner::matmul(const float* x, int64_t m, const std::vector<float>& w, int64_t n,
                            float* y) {
  const int64_t k = static_cast<int64_t>(w.size()) / n;
  cpu_matmul(x, m, w.data(), n, k, y, options_.gemm_tile_rows, gemm_scratch_);
}

void CpuModelRunner::validate(const StepBatch& batch) const {
  if (!preloaded_) throw RunError("cpu backend: step before preload");
  const int32_t vocab = weights_.config.n_vocab;
  for (int32_t s = 0; s < batch.num_seqs(); ++s) {
    const auto need = static_cast<int32_t>(
        (batch.seq_lens[static_cast<std::size_t>(s)] + block_size_ - 1) / block_size_);
    const int32_t have = batch.page_start[static_cast<std::size_t>(s) + 1] -
                         batch.page_start[static_cast<std::size_t>(s)];
    if (have < need)
      throw RunError("cpu backend: sequence " + std::to_string(s) + ": " + std::to_string(have) +
                     " KV pages do not cover " +
                     std::to_string(batch.seq_lens[static_cast<std::size_t>(s)]) + " tokens");
  }
  for (int32_t p : batch.pages) {
    if (p < 0 || p >= num_blocks_)
      throw RunError("cpu backend: block " + std::to_string(p) + " outside the pool of " +
                     std::to_string(num_blocks_) + " blocks");
  }
  for (const BlockCopy& c : batch.copies) {
    if (c.src < 0 || c.dst < 0 || c.src >= num_blocks_ || c.dst >= num_blocks_)
      throw RunError("cpu backend: copy of block " + std::to_string(c.src) + " to " +
                     std::to_string(c.dst) + " outside the pool of " + std::to_string(num_blocks_) +
                     " blocks");
  }
  for (int32_t t : batch.input_ids) {
    if (t < 0 || t >= vocab)
      throw RunError("cpu backend: token id " + std::to_string(t) + " outside the vocabulary of " +
                     std::to_string(vocab));
  }
}

// Sizes the buffers for the step's rows and computes each RoPE table's cos/sin per row.
void CpuModelRunner::prepare(const StepBatch& batch) {
  const ModelConfig& c = weights_.config;
  const int64_t T = batch.num_tokens();
  rows_ = T;
  const int64_t nq = int64_t{c.n_head} * c.head_dim, nkv = int64_t{c.n_head_kv} * c.head_dim;
  const auto size = [&](std::vector<float>& v, int64_t per_row) {
    v.resize(static_cast<std::size_t>(T * per_row));
  };
  size(buf_.x, c.n_embd);
  size(buf_.h, c.n_embd);
  size(buf_.qkv, nq + 2 * nkv);
  size(buf_.attn, nq);
  size(buf_.proj, c.n_embd);
  size(buf_.gate_up, 2 * int64_t{c.n_ff});
  size(buf_.act, c.n_ff);
  buf_.row_seq.resize(static_cast<std::size_t>(T));
  for (int32_t s = 0; s < batch.num_seqs(); ++s) {
    for (int32_t r = batch.query_start[static_cast<std::size_t>(s)];
         r < batch.query_start[static_cast<std::size_t>(s) + 1]; ++r)
      buf_.row_seq[static_cast<std::size_t>(r)] = s;
  }
  buf_.cos_sin.resize(plan_.ropes.size());
  for (std::size_t t = 0; t < plan_.ropes.size(); ++t) {
    const std::size_t stride = plan_.ropes[t].inv_freq.size() * 2;
    buf_.cos_sin[t].resize(static_cast<std::size_t>(T) * stride);
    for (int64_t r = 0; r < T; ++r)
      cpu::rope_cos_sin(plan_.ropes[t], batch.positions[static_cast<std::size_t>(r)],
                        buf_.cos_sin[t].data() + static_cast<std::size_t>(r) * stride);
  }
}

void CpuModelRunner::launch(const StepBatch& batch) {
  validate(batch);
  for (const BlockCopy& c : batch.copies) {
    if (c.src == c.dst) continue;
    const std::size_t n = block_floats_;
    std::memcpy(k_pool_.get() + n * c.dst, k_pool_.get() + n * c.src, n * sizeof(float));
    std::memcpy(v_pool_.get() + n * c.dst, v_pool_.get() + n * c.src, n * sizeof(float));
  }
  result_.tokens.clear();
  result_.logits.clear();
  if (batch.num_tokens() == 0) return;
  prepare(batch);
  const ModelConfig& c = weights_.config;
  const int64_t E = c.n_embd, F = c.n_ff;
  for (const PlanOp& op : plan_.ops) {
    switch (op.kind) {
      case OpKind::kEmbed:
        embed(batch, op);
        break;
      case OpKind::kQkvProj:
        qkv_proj(op);
        break;
      case OpKind::kQkNorm:
        qk_norm(op);
        break;
      case OpKind::kRope:
        rope(op);
        break;
      case OpKind::kAttention:
        attention(batch, op);
        break;
      case OpKind::kOutProj:
        matmul(buf_.attn.data(), rows_, weight(op.layer, WeightSlot::kWo), E, buf_.proj.data());
        break;
      case OpKind::kResidual:
        residual(op);
        break;
      case OpKind::kGateUpProj:
        matmul(buf_.h.data(), rows_, weight(op.layer, WeightSlot::kWGateUp), 2 * F,
               buf_.gate_up.data());
        break;
      case OpKind::kSwiGlu:
        swiglu_rows();
        break;
      case OpKind::kDownProj:
        matmul(buf_.act.data(), rows_, weight(op.layer, WeightSlot::kWDown), E, buf_.proj.data());
        break;
      case OpKind::kLogits:
        logits(batch);
        break;
    }
  }
  sample(batch);
}

void CpuModelRunner::finish(StepResult& result) {
  std::swap(result.tokens, result_.tokens);
  std::swap(result.logits, result_.logits);
}

void CpuModelRunner::embed(const StepBatch& batch, const PlanOp& op) {
  const int64_t E = weights_.config.n_embd;
  for (int64_t r = 0; r < rows_; ++r) {
    const int64_t tok = batch.input_ids[static_cast<std::size_t>(r)];
    std::memcpy(buf_.x.data() + r * E, tok_embd_.data() + tok * E, sizeof(float) * E);
  }
  const float* w = op.norm == WeightSlot::kNone ? nullptr : weight(op.norm_layer, op.norm).data();
  for (int64_t r = 0; r < rows_; ++r) {
    float* xr = buf_.x.data() + r * E;
    float* hr = buf_.h.data() + r * E;
    if (w != nullptr) {
      cpu::rms_norm(xr, w, hr, E, plan_.rms_eps);
    } else {
      std::memcpy(hr, xr, sizeof(float) * E);
    }
  }
}

void CpuModelRunner::qkv_proj(const PlanOp& op) {
  const ModelConfig& c = weights_.config;
  const int64_t nqkv = int64_t{c.n_head + 2 * c.n_head_kv} * c.head_dim;
  matmul(buf_.h.data(), rows_, weight(op.layer, WeightSlot::kWqkv), nqkv, buf_.qkv.data());
  if (!op.bias) return;
  const std::vector<float>& b = weight(op.layer, WeightSlot::kBqkv);
  for (int64_t r = 0; r < rows_; ++r) {
    float* q = buf_.qkv.data() + r * nqkv;
    for (int64_t i = 0; i < nqkv; ++i) q[i] += b[static_cast<std::size_t>(i)];
  }
}

void CpuModelRunner::qk_norm(const PlanOp& op) {
  const ModelConfig& c = weights_.config;
  const int64_t nq = int64_t{c.n_head} * c.head_dim, nkv = int64_t{c.n_head_kv} * c.head_dim;
  const float* wq = weight(op.layer, WeightSlot::kQNorm).data();
  const float* wk = weight(op.layer, WeightSlot::kKNorm).data();
  for (int64_t r = 0; r < rows_; ++r) {
    float* q = buf_.qkv.data() + r * (nq + 2 * nkv);
    cpu::rms_norm(q, wq, q, nq, plan_.rms_eps);
    cpu::rms_norm(q + nq, wk, q + nq, nkv, plan_.rms_eps);
  }
}

void CpuModelRunner::rope(const PlanOp& op) {
  const ModelConfig& c = weights_.config;
  const int64_t nq = int64_t{c.n_head} * c.head_dim, nkv = int64_t{c.n_head_kv} * c.head_dim;
  const RopeTable& table = plan_.ropes[static_cast<std::size_t>(op.rope)];
  const std::vector<float>& cs = buf_.cos_sin[static_cast<std::size_t>(op.rope)];
  const std::size_t stride = table.inv_freq.size() * 2;
  for (int64_t r = 0; r < rows_; ++r) {
    float* q = buf_.qkv.data() + r * (nq + 2 * nkv);
    const float* row_cs = cs.data() + static_cast<std::size_t>(r) * stride;
    cpu::rope_apply(table, q, c.n_head, c.head_dim, row_cs);
    cpu::rope_apply(table, q + nq, c.n_head_kv, c.head_dim, row_cs);
  }
}

void CpuModelRunner::store_kv(const StepBatch& batch, int32_t layer) {
  const ModelConfig& c = weights_.config;
  const int64_t nq = int64_t{c.n_head} * c.head_dim, nkv = int64_t{c.n_head_kv} * c.head_dim;
  const std::size_t layer_floats = static_cast<std::size_t>(block_size_) * nkv;
  for (int64_t r = 0; r < rows_; ++r) {
    const float* k = buf_.qkv.data() + r * (nq + 2 * nkv) + nq;
    const int32_t slot = batch.slot_mapping[static_cast<std::size_t>(r)];
    const std::size_t off = static_cast<std::size_t>(slot / block_size_) * block_floats_ +
                            static_cast<std::size_t>(layer) * layer_floats +
                            static_cast<std::size_t>(slot % block_size_) * nkv;
    std::memcpy(k_pool_.get() + off, k, sizeof(float) * nkv);
    std::memcpy(v_pool_.get() + off, k + nkv, sizeof(float) * nkv);
  }
}

// One (row, KV head) job at a time over the row's own past, in position order: the `group`
// query heads sharing a KV head are done together so each K and V row is read once for all of
// them; each head's arithmetic is the same serial sequence whatever the batch.
void CpuModelRunner::attention(const StepBatch& batch, const PlanOp& op) {
  store_kv(batch, op.layer);
  const ModelConfig& c = weights_.config;
  const int64_t hd = c.head_dim;
  const int64_t nq = int64_t{c.n_head} * hd, nkv = int64_t{c.n_head_kv} * hd;
  const int group = c.n_head / c.n_head_kv;
  cpu::PagedKv kv;
  kv.k = k_pool_.get() + static_cast<std::size_t>(op.layer) * block_size_ * nkv;
  kv.v = v_pool_.get() + static_cast<std::size_t>(op.layer) * block_size_ * nkv;
  kv.block_stride = block_floats_;
  kv.block_size = block_size_;
  kv.n_head_kv = c.n_head_kv;
  kv.head_dim = c.head_dim;
  // OpenMP only where the work is worth waking the team: on few cores, idle OpenMP threads spin
  // against OpenBLAS's own threads and make small (decode) steps several times slower.
  int64_t work = 0;  // (row, head, past position) triples
  for (int32_t p : batch.positions) work += static_cast<int64_t>(p + 1) * c.n_head;
  const int nt = work * hd >= (int64_t{1} << 22) ? threads_ : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<float> scores;
#pragma omp for schedule(dynamic, 1)
    for (int64_t job = 0; job < rows_ * c.n_head_kv; ++job) {
      const int64_t r = job / c.n_head_kv;
      const auto kvh = static_cast<int32_t>(job % c.n_head_kv);
      const auto s = static_cast<std::size_t>(buf_.row_seq[static_cast<std::size_t>(r)]);
      const int32_t pos = batch.positions[static_cast<std::size_t>(r)];
      const int32_t first = op.window > 0 ? std::max(0, pos - op.window + 1) : 0;
      const std::span<const int32_t> pages(
          batch.pages.data() + batch.page_start[s],
          static_cast<std::size_t>(batch.page_start[s + 1] - batch.page_start[s]));
      const int64_t head0 = static_cast<int64_t>(kvh) * group * hd;
      cpu::attend(buf_.qkv.data() + r * (nq + 2 * nkv) + head0, group, kvh, pages, first, pos, kv,
                  plan_.attn_scale, buf_.attn.data() + r * nq + head0, scores);
    }
  }
}

void CpuModelRunner::residual(const PlanOp& op) {
  const int64_t E = weights_.config.n_embd;
  const float* post =
      op.post_norm == WeightSlot::kNone ? nullptr : weight(op.layer, op.post_norm).data();
  const float* norm =
      op.norm == WeightSlot::kNone ? nullptr : weight(op.norm_layer, op.norm).data();
  for (int64_t r = 0; r < rows_; ++r) {
    float* p = buf_.proj.data() + r * E;
    float* x = buf_.x.data() + r * E;
    float* h = buf_.h.data() + r * E;
    if (post != nullptr) cpu::rms_norm(p, post, p, E, plan_.rms_eps);
    for (int64_t i = 0; i < E; ++i) x[i] += p[i];
    if (norm != nullptr) {
      cpu::rms_norm(x, norm, h, E, plan_.rms_eps);
    } else {
      std::memcpy(h, x, sizeof(float) * E);
    }
  }
}

void CpuModelRunner::swiglu_rows() {
  const int64_t F = weights_.config.n_ff;
  for (int64_t r = 0; r < rows_; ++r) {
    const float* g = buf_.gate_up.data() + r * 2 * F;
    cpu::swiglu(g, g + F, buf_.act.data() + r * F, F);
  }
}

void CpuModelRunner::logits(const StepBatch& batch) {
  const int64_t nl = batch.num_samples();
  if (nl == 0) return;
  const ModelConfig& c = weights_.config;
  const int64_t E = c.n_embd, V = c.n_vocab;
  std::vector<float> last(static_cast<std::size_t>(nl * E));
  for (int64_t i = 0; i < nl; ++i) {
    const int32_t seq = batch.sample_seqs[static_cast<std::size_t>(i)];
    const int64_t row = batch.query_start[static_cast<std::size_t>(seq) + 1] - 1;
    cpu::rms_norm(buf_.x.data() + row * E, output_norm_.data(), last.data() + i * E, E,
                  plan_.rms_eps);
  }
  buf_.logits.resize(static_cast<std::size_t>(nl * V));
  matmul(last.data(), nl, weight(-1, WeightSlot::kOutput), V, buf_.logits.data());
}

void CpuModelRunner::sample(const StepBatch& batch) {
  const auto V = static_cast<std::size_t>(weights_.config.n_vocab);
  result_.tokens.resize(batch.sampling.size());
  for (std::size_t i = 0; i < batch.sampling.size(); ++i) {
    const std::span<const float> row(buf_.logits.data() + i * V, V);
    result_.tokens[i] = sampler_.sample(row, batch.sampling[i]);
  }
  if (batch.return_logits) result_.logits = buf_.logits;
}

}  // namespace flowrank::engine
