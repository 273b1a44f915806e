#include "flowrank/engine/cpu/cpu_model_runner.hpp"

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

// A weight matrix of the file as the kernels read it: dims {k, rows}.
cpu::WeightRows rows_of(const Tensor& t) {
  cpu::WeightRows w;
  w.type = t.type;
  w.data = t.data;
  w.k = t.dims.empty() ? 0 : t.dims[0];
  w.rows = t.dims.size() < 2 ? 1 : t.elements() / w.k;
  return w;
}

std::size_t bytes_of(const Tensor& t) {
  return t.empty() ? 0 : tensor_bytes(t.type, t.elements());
}

// Query heads per KV head that attention tiles hold (GQA groups are 1 to 8 in practice).
constexpr int kMaxGroup = 64;
// (query, head) pairs per attention tile: K and V rows are read once per tile.
constexpr int kTilePairs = 24;
// Row-wise ops (norms, rope, swiglu) go parallel from this many token rows.
constexpr int64_t kParallelRows = 32;

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

CpuModelRunner::CpuModelRunner(ModelWeights weights, CpuRunnerOptions options)
    : weights_(std::move(weights)), options_(options) {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads_ = options_.threads > 0 ? options_.threads : hw;
  pool_ = std::make_unique<cpu::ThreadPool>(threads_);
  cpu::kernel_isa();  // a bad FLOWRANK_CPU_KERNELS is an InputError now, not mid-step
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

std::size_t CpuModelRunner::weight_bytes() const {
  std::size_t n =
      bytes_of(weights_.tok_embd) + bytes_of(weights_.output_norm) + bytes_of(weights_.output);
  for (const LayerWeights& l : weights_.layers) {
    for (const Tensor* t :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm,
          &l.post_attn_norm, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down, &l.post_ffn_norm}) {
      n += bytes_of(*t);
    }
  }
  return n;
}

void require_weights_fit(const std::string& source, std::size_t weight_bytes, std::size_t budget) {
  if (weight_bytes > budget) {
    std::ostringstream msg;
    msg.precision(3);
    msg << "out of memory: model " << source << " needs " << weight_bytes / kGiB
        << " GiB of weights, " << budget / kGiB << " GiB available";
    throw RunError(msg.str());
  }
}

std::size_t weight_bytes_of(const ModelConfig& c, TensorType type) {
  const std::size_t e = static_cast<std::size_t>(c.n_embd), v = static_cast<std::size_t>(c.n_vocab);
  const std::size_t q = static_cast<std::size_t>(c.n_head) * c.head_dim;
  const std::size_t kv = static_cast<std::size_t>(c.n_head_kv) * c.head_dim;
  const std::size_t per_layer = e * (q + 2 * kv) + q * e + 3 * e * static_cast<std::size_t>(c.n_ff);
  const std::size_t elements = v * e * (c.tied_embeddings ? 1 : 2) + per_layer * c.n_layer;
  return elements / static_cast<std::size_t>(block_elements(type)) *
         tensor_bytes(type, block_elements(type));
}

void CpuModelRunner::check_weights_fit() const {
  require_weights_fit(weights_.source, weight_bytes(), memory_budget_);
}

int32_t CpuModelRunner::pool_blocks(const RunnerLimits& limits) const {
  if (limits.kv_blocks > 0) return limits.kv_blocks;
  const ModelConfig& c = weights_.config;
  const int32_t bs = limits.block_size;
  const double block_bytes = 2.0 * bs * c.n_layer * c.n_head_kv * c.head_dim * 4.0;
  const double budget =
      static_cast<double>(memory_budget_) * 0.5 - static_cast<double>(weight_bytes());
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
  tok_embd_ = rows_of(weights_.tok_embd);
  output_ = (!c.tied_embeddings && !weights_.output.empty()) ? rows_of(weights_.output) : tok_embd_;
  output_norm_ = to_f32(weights_.output_norm);
  std::vector<const cpu::WeightRows*> all = {&tok_embd_, &output_};
  layers_.resize(static_cast<std::size_t>(c.n_layer));
  for (int32_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = weights_.layers[static_cast<std::size_t>(il)];
    Layer& l = layers_[static_cast<std::size_t>(il)];
    l.wqkv[0] = rows_of(lw.wq);
    l.wqkv[1] = rows_of(lw.wk);
    l.wqkv[2] = rows_of(lw.wv);
    if (c.qkv_bias) {
      append_f32(l.bqkv, lw.bq);
      append_f32(l.bqkv, lw.bk);
      append_f32(l.bqkv, lw.bv);
    }
    l.wo = rows_of(lw.wo);
    l.w_gate_up[0] = rows_of(lw.w_gate);
    l.w_gate_up[1] = rows_of(lw.w_up);
    l.w_down = rows_of(lw.w_down);
    for (const cpu::WeightRows* w :
         {&l.wqkv[0], &l.wqkv[1], &l.wqkv[2], &l.wo, &l.w_gate_up[0], &l.w_gate_up[1], &l.w_down})
      all.push_back(w);
    for (auto [dst, src] : {std::pair{&l.attn_norm, &lw.attn_norm},
                            {&l.ffn_norm, &lw.ffn_norm},
                            {&l.post_attn_norm, &lw.post_attn_norm},
                            {&l.post_ffn_norm, &lw.post_ffn_norm},
                            {&l.q_norm, &lw.q_norm},
                            {&l.k_norm, &lw.k_norm}}) {
      if (!src->empty()) *dst = to_f32(*src);
    }
  }
  // Read every weight page once now, so the first step does not pay the page faults.
  unsigned sum = 0;
  for (const cpu::WeightRows* w : all) {
    const auto* p = static_cast<const volatile unsigned char*>(w->data);
    const std::size_t n = w->row_bytes() * static_cast<std::size_t>(w->rows);
    for (std::size_t i = 0; i < n; i += 4096) sum += p[i];
  }
  (void)sum;
}

int32_t CpuModelRunner::preload(const RunnerLimits& limits) {
  const ModelConfig& c = weights_.config;
  check_weights_fit();  // say why there is no room, rather than "0 blocks"
  const int32_t num_blocks = pool_blocks(limits);
  const int32_t block_size = limits.block_size;
  if (num_blocks <= 0 || block_size <= 0) {
    throw RunError("cpu backend: KV pool needs at least one block of at least one token");
  }
  const std::size_t weight_bytes = this->weight_bytes();
  const std::size_t block_floats =
      static_cast<std::size_t>(block_size) * c.n_layer * c.n_head_kv * c.head_dim;
  const std::size_t pool_bytes = 2 * block_floats * sizeof(float) * num_blocks;
  if (weight_bytes + pool_bytes > memory_budget_) {
    std::ostringstream msg;
    msg.precision(3);
    msg << "out of memory: model needs " << weight_bytes / kGiB
        << " GiB of weights and the KV pool of " << num_blocks << " blocks " << pool_bytes / kGiB
        << " GiB, " << memory_budget_ / kGiB << " GiB available";
    throw RunError(msg.str());
  }
  try {
    load_weights();
    // Left uninitialized: a slot is always written before attention reads it, and untouched
    // pages of a large pool cost no memory until used.
    k_pool_.reset(new float[block_floats * static_cast<std::size_t>(num_blocks)]);
    v_pool_.reset(new float[block_floats * static_cast<std::size_t>(num_blocks)]);
  } catch (const std::bad_alloc&) {
    std::ostringstream msg;
    msg.precision(3);
    msg << "out of memory: model needs " << weight_bytes / kGiB << " GiB of weights plus "
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
  return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread, " : " threads, ") +
         cpu::isa_name(cpu::kernel_isa()) + " kernels)";
}

const std::vector<float>& CpuModelRunner::vector_weight(int32_t layer, WeightSlot slot) const {
  if (slot == WeightSlot::kOutputNorm) return output_norm_;
  const std::vector<float>* w =
      layer_slot_as<std::vector<float>>(layers_[static_cast<std::size_t>(layer)], slot);
  if (w != nullptr) return *w;
  throw std::logic_error("cpu backend: no vector weight for this slot");
}

void CpuModelRunner::matmul(const float* x, std::span<const cpu::WeightRows> parts, float* y,
                            int64_t n) {
  cpu::matmul(x, rows_, parts[0].k, parts, y, n, *pool_);
}

template <typename Fn>
void CpuModelRunner::for_rows(Fn&& fn) {
  const auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r);
  };
  if (rows_ >= kParallelRows) {
    pool_->for_ranges(rows_, rows);
  } else {
    rows(0, rows_);
  }
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
  // Attention jobs: tiles of consecutive query rows of a sequence, per KV head.
  const int group = c.n_head / c.n_head_kv;
  const int32_t tile_rows = std::max(1, kTilePairs / group);
  jobs_.clear();
  for (int32_t s = 0; s < batch.num_seqs(); ++s) {
    const int32_t q0 = batch.query_start[static_cast<std::size_t>(s)];
    const int32_t q1 = batch.query_start[static_cast<std::size_t>(s) + 1];
    for (int32_t r = q0; r < q1; r += tile_rows)
      for (int32_t h = 0; h < c.n_head_kv; ++h)
        jobs_.push_back({s, r, std::min(tile_rows, q1 - r), h});
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
    const Layer* l = op.layer >= 0 ? &layers_[static_cast<std::size_t>(op.layer)] : nullptr;
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
        matmul(buf_.attn.data(), {&l->wo, 1}, buf_.proj.data(), E);
        break;
      case OpKind::kResidual:
        residual(op);
        break;
      case OpKind::kGateUpProj:
        matmul(buf_.h.data(), l->w_gate_up, buf_.gate_up.data(), 2 * F);
        break;
      case OpKind::kSwiGlu:
        for_rows([&](int64_t r) {
          cpu::swiglu_rows(buf_.gate_up.data() + r * 2 * F, buf_.act.data() + r * F, 1, F);
        });
        break;
      case OpKind::kDownProj:
        matmul(buf_.act.data(), {&l->w_down, 1}, buf_.proj.data(), E);
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
  const float* w =
      op.norm == WeightSlot::kNone ? nullptr : vector_weight(op.norm_layer, op.norm).data();
  for_rows([&](int64_t r) {
    float* xr = buf_.x.data() + r * E;
    float* hr = buf_.h.data() + r * E;
    cpu::dequantize_rows(tok_embd_, batch.input_ids[static_cast<std::size_t>(r)], 1, xr);
    if (w != nullptr) {
      cpu::rms_norm(xr, w, hr, E, plan_.rms_eps);
    } else {
      std::memcpy(hr, xr, sizeof(float) * E);
    }
  });
}

void CpuModelRunner::qkv_proj(const PlanOp& op) {
  const ModelConfig& c = weights_.config;
  const int64_t nqkv = int64_t{c.n_head + 2 * c.n_head_kv} * c.head_dim;
  const Layer& l = layers_[static_cast<std::size_t>(op.layer)];
  matmul(buf_.h.data(), l.wqkv, buf_.qkv.data(), nqkv);
  if (!op.bias) return;
  for (int64_t r = 0; r < rows_; ++r) {
    float* q = buf_.qkv.data() + r * nqkv;
    for (int64_t i = 0; i < nqkv; ++i) q[i] += l.bqkv[static_cast<std::size_t>(i)];
  }
}

void CpuModelRunner::qk_norm(const PlanOp& op) {
  const ModelConfig& c = weights_.config;
  const int64_t nq = int64_t{c.n_head} * c.head_dim, nkv = int64_t{c.n_head_kv} * c.head_dim;
  const float* wq = vector_weight(op.layer, WeightSlot::kQNorm).data();
  const float* wk = vector_weight(op.layer, WeightSlot::kKNorm).data();
  for_rows([&](int64_t r) {
    float* q = buf_.qkv.data() + r * (nq + 2 * nkv);
    cpu::rms_norm(q, wq, q, nq, plan_.rms_eps);
    cpu::rms_norm(q + nq, wk, q + nq, nkv, plan_.rms_eps);
  });
}

void CpuModelRunner::rope(const PlanOp& op) {
  const ModelConfig& c = weights_.config;
  const int64_t nq = int64_t{c.n_head} * c.head_dim, nkv = int64_t{c.n_head_kv} * c.head_dim;
  const RopeTable& table = plan_.ropes[static_cast<std::size_t>(op.rope)];
  const std::vector<float>& cs = buf_.cos_sin[static_cast<std::size_t>(op.rope)];
  const std::size_t stride = table.inv_freq.size() * 2;
  for_rows([&](int64_t r) {
    float* q = buf_.qkv.data() + r * (nq + 2 * nkv);
    const float* row_cs = cs.data() + static_cast<std::size_t>(r) * stride;
    cpu::rope_apply(table, q, c.n_head, c.head_dim, row_cs);
    cpu::rope_apply(table, q + nq, c.n_head_kv, c.head_dim, row_cs);
  });
}

// K goes in transposed within its block (cpu::PagedKv), V as a row per slot.
void CpuModelRunner::store_kv(const StepBatch& batch, int32_t layer) {
  const ModelConfig& c = weights_.config;
  const int64_t hd = c.head_dim;
  const int64_t nq = int64_t{c.n_head} * hd, nkv = int64_t{c.n_head_kv} * hd;
  const std::size_t layer_floats = static_cast<std::size_t>(block_size_) * nkv;
  for (int64_t r = 0; r < rows_; ++r) {
    const float* k = buf_.qkv.data() + r * (nq + 2 * nkv) + nq;
    const int32_t slot = batch.slot_mapping[static_cast<std::size_t>(r)];
    const std::size_t base = static_cast<std::size_t>(slot / block_size_) * block_floats_ +
                             static_cast<std::size_t>(layer) * layer_floats;
    const int32_t in_block = slot % block_size_;
    float* kt = k_pool_.get() + base + static_cast<std::size_t>(in_block);
    for (int64_t i = 0; i < nkv; ++i) kt[static_cast<std::size_t>(i) * block_size_] = k[i];
    std::memcpy(v_pool_.get() + base + static_cast<std::size_t>(in_block) * nkv, k + nkv,
                sizeof(float) * nkv);
  }
}

// One job per (sequence, KV head, tile of query rows); each query's arithmetic is attend()'s
// whatever tile or thread it falls in.
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
  const auto job = [&](int64_t j) {
    thread_local std::vector<float> scratch;
    const AttentionJob& a = jobs_[static_cast<std::size_t>(j)];
    const auto s = static_cast<std::size_t>(a.seq);
    cpu::AttentionTile t;
    const int64_t head0 = int64_t{a.kv_head} * group * hd;
    t.q = buf_.qkv.data() + a.row0 * (nq + 2 * nkv) + head0;
    t.ldq = nq + 2 * nkv;
    t.out = buf_.attn.data() + a.row0 * nq + head0;
    t.ldo = nq;
    t.rows = a.rows;
    t.pos0 = batch.positions[static_cast<std::size_t>(a.row0)];
    t.group = group;
    t.kv_head = a.kv_head;
    t.window = op.window;
    t.pages = std::span<const int32_t>(
        batch.pages.data() + batch.page_start[s],
        static_cast<std::size_t>(batch.page_start[s + 1] - batch.page_start[s]));
    t.kv = kv;
    t.scale = plan_.attn_scale;
    cpu::attend_tile(t, scratch);
  };
  pool_->for_each(static_cast<int64_t>(jobs_.size()), job);
}

void CpuModelRunner::residual(const PlanOp& op) {
  const int64_t E = weights_.config.n_embd;
  const float* post =
      op.post_norm == WeightSlot::kNone ? nullptr : vector_weight(op.layer, op.post_norm).data();
  const float* norm =
      op.norm == WeightSlot::kNone ? nullptr : vector_weight(op.norm_layer, op.norm).data();
  for_rows([&](int64_t r) {
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
  });
}

void CpuModelRunner::logits(const StepBatch& batch) {
  const int64_t nl = batch.num_samples();
  if (nl == 0) return;
  const ModelConfig& c = weights_.config;
  const int64_t E = c.n_embd, V = c.n_vocab;
  buf_.last.resize(static_cast<std::size_t>(nl * E));
  for (int64_t i = 0; i < nl; ++i) {
    const int32_t seq = batch.sample_seqs[static_cast<std::size_t>(i)];
    const int64_t row = batch.query_start[static_cast<std::size_t>(seq) + 1] - 1;
    cpu::rms_norm(buf_.x.data() + row * E, output_norm_.data(), buf_.last.data() + i * E, E,
                  plan_.rms_eps);
  }
  buf_.logits.resize(static_cast<std::size_t>(nl * V));
  cpu::matmul(buf_.last.data(), nl, E, {&output_, 1}, buf_.logits.data(), V, *pool_);
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
