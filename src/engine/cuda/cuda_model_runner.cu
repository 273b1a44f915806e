// The GPU ModelRunner: executes the ModelPlan with cuBLASLt projections, the kernels of
// kernels.cuh and the AttentionBackend, samples on the device, and hands back token ids.
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attention.cuh"
#include "cuda_weights.cuh"
#include "device_memory.cuh"
#include "flowrank/common/clock.hpp"
#include "flowrank/engine/cuda/cuda_model_runner.hpp"
#include "gemm.cuh"
#include "kernels.cuh"
#include "op_profile.cuh"
#include "step_graphs.cuh"

namespace flowrank::engine {
namespace {

using cuda::bf16;
using cuda::check;
using cuda::DeviceBuffer;
using cuda::PinnedBuffer;

// A named NVTX range for the lifetime of a scope: phases and forward passes in nsys timelines.
class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

// The step's metadata: one int32 region per array at fixed offsets, mirrored in pinned host
// memory and on the device, so kernels (and captured graphs) always read the same addresses.
struct StepMeta {
  // Offsets in int32 units.
  std::size_t ids = 0, positions = 0, slots = 0, query_start = 0, seq_lens = 0, page_start = 0,
              pages = 0, logit_rows = 0, copies = 0, tokens = 0, rows = 0, end = 0;
  PinnedBuffer host;
  DeviceBuffer device;

  void layout(int32_t max_tokens, int32_t max_seqs, int64_t max_pages) {
    std::size_t at = 0;
    const auto take = [&](std::size_t& field, std::size_t n) {
      field = at;
      at += (n + 31) / 32 * 32;  // 128-byte aligned regions
    };
    const auto t = static_cast<std::size_t>(max_tokens), s = static_cast<std::size_t>(max_seqs);
    take(ids, t);
    take(positions, t);
    take(slots, t);
    take(query_start, s + 1);
    take(seq_lens, s);
    take(page_start, s + 1);
    take(pages, static_cast<std::size_t>(max_pages));
    take(logit_rows, s);
    take(copies, 2 * s);
    take(tokens, s);
    take(rows, s * sizeof(cuda::DeviceSampleRow) / sizeof(int32_t));
    end = at;
    host = PinnedBuffer(end * sizeof(int32_t), "step metadata (host)");
    device = DeviceBuffer(end * sizeof(int32_t), "step metadata");
  }
  int32_t* h(std::size_t field) const { return host.as<int32_t>() + field; }
  int32_t* d(std::size_t field) const { return device.as<int32_t>() + field; }
  // Copies `n` int32 of a region to the device.
  void upload(std::size_t field, std::size_t n, cudaStream_t stream) const {
    if (n == 0) return;
    check(cudaMemcpyAsync(d(field), h(field), n * sizeof(int32_t), cudaMemcpyHostToDevice, stream),
          "step metadata upload");
  }
};

class CudaModelRunner final : public ModelRunner {
 public:
  CudaModelRunner(ModelWeights weights, CudaRunnerOptions options);
  ~CudaModelRunner() override;
  CudaModelRunner(const CudaModelRunner&) = delete;
  CudaModelRunner& operator=(const CudaModelRunner&) = delete;

  const ModelConfig& config() const override { return weights_.config; }
  int32_t preload(const RunnerLimits& limits) override;
  void launch(const StepBatch& batch) override;
  void finish(StepResult& result) override;
  std::string device_name() const override { return device_name_; }
  int32_t value_bytes() const override { return 2; }

 private:
  // preload, in order
  void load_weights();
  void make_rope_tables();
  void allocate_step_buffers(const RunnerLimits& limits);
  void profile_forward(const RunnerLimits& limits);
  int32_t size_kv_pool(const RunnerLimits& limits);
  void capture_graphs();
  // one step
  void stage(const StepBatch& batch, int32_t padded_seqs);
  bool plan_attention(const StepBatch& batch, int32_t graph_seqs);
  void forward(int32_t rows, int32_t samples);
  void run_op(const PlanOp& op, int32_t rows, int32_t samples);
  void attention(const PlanOp& op, int32_t rows);
  void logits(int32_t samples);
  void sample(int32_t samples);
  void read_back(int32_t samples, bool logits);

  std::size_t tracked_bytes() const;

  ModelWeights weights_;
  CudaRunnerOptions options_;
  ModelPlan plan_;
  std::string device_name_;
  int32_t n_q_ = 0, n_kv_ = 0, n_qkv_ = 0;  // values per row

  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_ = nullptr;
  std::unique_ptr<cuda::Gemm> gemm_;
  cuda::CudaWeights w_;
  std::vector<DeviceBuffer> rope_tables_;  // float2 [context][pairs] per plan rope table
  std::unique_ptr<cuda::AttentionBackend> attention_;

  RunnerLimits limits_;
  int32_t max_pages_ = 0;
  StepMeta meta_;
  // Activations for max_batch_tokens rows; logits for max_seqs rows.
  DeviceBuffer x_, h_, qkv_, attn_, proj_, gate_up_, act_, last_, logits_, sample_ws_;
  PinnedBuffer logits_host_;

  // KV pool: [layer][block][slot][kv_head][head_dim] for K and for V; one spare block at the end
  // takes the writes of padding rows in graph replays.
  int32_t num_blocks_ = 0;
  int64_t layer_stride_ = 0;  // elements between two layers' pools
  DeviceBuffer k_pool_, v_pool_;

  std::unique_ptr<cuda::StepGraphs> graphs_;
  std::unique_ptr<cuda::OpProfile> profile_;  // FLOWRANK_CUDA_PROFILE=1
  Clock::time_point last_finish_{};
  // The step in flight.
  int32_t pending_samples_ = 0;
  bool pending_logits_ = false;
  bool in_flight_ = false;
};

CudaModelRunner::CudaModelRunner(ModelWeights weights, CudaRunnerOptions options)
    : weights_(std::move(weights)), options_(std::move(options)) {
  device_name_ = cuda_device_description(options_.device);  // throws for a missing device
  check(cudaSetDevice(options_.device), "cudaSetDevice");
  try {
    plan_ = ModelPlan::build(weights_.config);
  } catch (const RunError& e) {
    throw RunError(std::string("cuda backend: ") + e.what());
  }
  const ModelConfig& c = weights_.config;
  n_q_ = c.n_head * c.head_dim;
  n_kv_ = c.n_head_kv * c.head_dim;
  n_qkv_ = n_q_ + 2 * n_kv_;
}

CudaModelRunner::~CudaModelRunner() {
  graphs_.reset();
  if (done_ != nullptr) cudaEventDestroy(done_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

std::size_t CudaModelRunner::tracked_bytes() const {
  std::size_t n = w_.storage.bytes() + meta_.device.bytes() + k_pool_.bytes() + v_pool_.bytes();
  for (const DeviceBuffer* b :
       {&x_, &h_, &qkv_, &attn_, &proj_, &gate_up_, &act_, &last_, &logits_, &sample_ws_})
    n += b->bytes();
  for (const DeviceBuffer& t : rope_tables_) n += t.bytes();
  if (gemm_) n += gemm_->device_bytes();
  if (attention_) n += attention_->device_bytes();
  return n;
}

int32_t CudaModelRunner::preload(const RunnerLimits& limits) {
  NvtxRange range("preload");
  limits_ = limits;
  check(cudaSetDevice(options_.device), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
  gemm_ = std::make_unique<cuda::Gemm>();
  load_weights();
  make_rope_tables();
  allocate_step_buffers(limits);
  profile_forward(limits);
  const int32_t blocks = size_kv_pool(limits);
  if (cuda::OpProfile::wanted()) {
    profile_ = std::make_unique<cuda::OpProfile>();
  } else if (options_.cuda_graphs) {
    capture_graphs();
  }
  check(cudaStreamSynchronize(stream_), "preload");
  return blocks;
}

void CudaModelRunner::load_weights() {
  NvtxRange range("weights");
  w_ = cuda::upload_weights(weights_, options_.read_weights, stream_);
  if (options_.broadcast_weights) {
    check(cudaStreamSynchronize(stream_), "weights before broadcast");
    options_.broadcast_weights(w_.storage.as(), w_.storage.bytes());
  }
  // The host copies (mmap or generated) are no longer needed.
  weights_.owned.clear();
  weights_.owned.shrink_to_fit();
}

void CudaModelRunner::make_rope_tables() {
  const int32_t max_pos = std::max(weights_.config.context_length, 1);
  for (const RopeTable& t : plan_.ropes) {
    const auto pairs = static_cast<int32_t>(t.inv_freq.size());
    DeviceBuffer inv(t.inv_freq.size() * sizeof(double), "rope frequencies");
    check(
        cudaMemcpyAsync(inv.as(), t.inv_freq.data(), inv.bytes(), cudaMemcpyHostToDevice, stream_),
        "rope frequencies upload");
    DeviceBuffer table(static_cast<std::size_t>(max_pos) * pairs * sizeof(float2), "rope table");
    cuda::rope_table(inv.as<double>(), pairs, t.mscale, max_pos, table.as<float2>(), stream_);
    check(cudaStreamSynchronize(stream_), "rope table");
    rope_tables_.push_back(std::move(table));
  }
}

void CudaModelRunner::allocate_step_buffers(const RunnerLimits& limits) {
  const ModelConfig& c = weights_.config;
  const auto T = static_cast<std::size_t>(limits.max_batch_tokens);
  const auto S = static_cast<std::size_t>(limits.max_seqs);
  const auto E = static_cast<std::size_t>(c.n_embd), F = static_cast<std::size_t>(c.n_ff);
  const auto V = static_cast<std::size_t>(c.n_vocab);
  x_ = DeviceBuffer(T * E * sizeof(float), "residual stream");
  h_ = DeviceBuffer(T * E * 2, "normed activations");
  qkv_ = DeviceBuffer(T * static_cast<std::size_t>(n_qkv_) * 2, "qkv activations");
  attn_ = DeviceBuffer(T * static_cast<std::size_t>(n_q_) * 2, "attention output");
  proj_ = DeviceBuffer(T * E * 2, "projection output");
  gate_up_ = DeviceBuffer(T * 2 * F * 2, "gate/up activations");
  act_ = DeviceBuffer(T * F * 2, "ffn activations");
  last_ = DeviceBuffer(S * E * 2, "sampled rows");
  logits_ = DeviceBuffer(S * V * sizeof(float), "logits");
  sample_ws_ =
      DeviceBuffer(cuda::sample_workspace_bytes(limits.max_seqs, c.n_vocab), "sampling workspace");
  const int64_t pages_per_seq =
      (static_cast<int64_t>(std::max(c.context_length, 1)) + limits.block_size - 1) /
      limits.block_size;
  max_pages_ =
      static_cast<int32_t>(std::min<int64_t>(pages_per_seq * limits.max_seqs, int64_t{1} << 26));
  meta_.layout(limits.max_batch_tokens, limits.max_seqs, max_pages_);

  cuda::AttentionConfig ac;
  ac.n_head = c.n_head;
  ac.n_head_kv = c.n_head_kv;
  ac.head_dim = c.head_dim;
  ac.block_size = limits.block_size;
  ac.max_tokens = limits.max_batch_tokens;
  ac.max_seqs = limits.max_seqs;
  ac.max_pages = max_pages_;
  ac.scale = plan_.attn_scale;
  ac.cascade = options_.cascade_attention;
  ac.device = options_.device;
  ac.window = c.sliding_window;
  attention_ = cuda::make_attention_backend(ac);
}

// One forward at the largest batch (max_batch_tokens new tokens, as one sequence) over a
// temporary pool, before the real pool is sized: every workspace and library allocation a step
// can make has then been made.
void CudaModelRunner::profile_forward(const RunnerLimits& limits) {
  NvtxRange range("profile forward");
  const int32_t bs = limits.block_size;
  const int32_t n = limits.max_batch_tokens;
  const int32_t blocks = (n + bs - 1) / bs;
  const ModelConfig& c = weights_.config;
  num_blocks_ = blocks;
  layer_stride_ = static_cast<int64_t>(blocks + 1) * bs * n_kv_;
  k_pool_ =
      DeviceBuffer(static_cast<std::size_t>(layer_stride_) * c.n_layer * 2, "profiling KV pool");
  v_pool_ = DeviceBuffer(k_pool_.bytes(), "profiling KV pool");
  StepBatch batch;
  batch.clear();
  std::vector<int32_t> tokens(static_cast<std::size_t>(n), 0),
      table(static_cast<std::size_t>(blocks));
  for (int32_t b = 0; b < blocks; ++b) table[static_cast<std::size_t>(b)] = b;
  const SampleRow greedy;
  batch.add_sequence(tokens, 0, table, bs, &greedy);
  launch(batch);
  StepResult ignored;
  finish(ignored);
  k_pool_ = DeviceBuffer();
  v_pool_ = DeviceBuffer();
}

int32_t CudaModelRunner::size_kv_pool(const RunnerLimits& limits) {
  const ModelConfig& c = weights_.config;
  const std::size_t block_bytes =
      2 * static_cast<std::size_t>(limits.block_size) * c.n_layer * n_kv_ * sizeof(bf16);
  int64_t blocks = limits.kv_blocks;
  if (blocks <= 0) {
    std::size_t free_bytes = 0, total = 0;
    check(cudaMemGetInfo(&free_bytes, &total), "cudaMemGetInfo");
    // Our share of the device, less what we hold and a margin for the CUDA context, library
    // handles and graphs; never more than is free (another process may share the device).
    const std::size_t margin = std::size_t{768} << 20;
    const auto share =
        static_cast<std::size_t>(options_.memory_fraction * static_cast<double>(total));
    const std::size_t held = tracked_bytes() + margin;
    const std::size_t budget =
        std::min(share > held ? share - held : 0, free_bytes > margin ? free_bytes - margin : 0);
    blocks = static_cast<int64_t>(budget / block_bytes) - 1;  // one spare block for padding
    if (limits.kv_blocks_cap > 0) blocks = std::min<int64_t>(blocks, limits.kv_blocks_cap);
    if (blocks < 1)
      throw RunError("out of memory on cuda device: the KV pool needs at least " +
                     cuda::gib(2 * block_bytes) + ", " + cuda::gib(budget) +
                     " left of the memory fraction " + std::to_string(options_.memory_fraction));
  }
  blocks = std::min<int64_t>(blocks, INT32_MAX / 2 / limits.block_size);
  num_blocks_ = static_cast<int32_t>(blocks);
  layer_stride_ = static_cast<int64_t>(num_blocks_ + 1) * limits.block_size * n_kv_;
  const std::size_t pool_bytes = static_cast<std::size_t>(layer_stride_) * c.n_layer * sizeof(bf16);
  k_pool_ =
      DeviceBuffer(pool_bytes, "the KV pool (K) of " + std::to_string(num_blocks_) + " blocks");
  v_pool_ =
      DeviceBuffer(pool_bytes, "the KV pool (V) of " + std::to_string(num_blocks_) + " blocks");
  return num_blocks_;
}

// ---- one step ---------------------------------------------------------------------------------

void CudaModelRunner::stage(const StepBatch& batch, int32_t padded_seqs) {
  const int32_t S = batch.num_seqs(), T = batch.num_tokens(),
                P = static_cast<int32_t>(batch.pages.size());
  // Graph replays: padding sequences of one row each up to the bucket (none outside graphs).
  const int32_t pad = std::max(0, padded_seqs - S);
  if (T + pad > limits_.max_batch_tokens || padded_seqs > limits_.max_seqs ||
      P + pad > max_pages_ || batch.num_samples() > limits_.max_seqs ||
      static_cast<int32_t>(batch.copies.size()) > limits_.max_seqs)
    throw RunError("cuda backend: a step of " + std::to_string(T) + " tokens in " +
                   std::to_string(S) + " sequences exceeds the preloaded limits (" +
                   std::to_string(limits_.max_batch_tokens) + " tokens, " +
                   std::to_string(limits_.max_seqs) + " sequences)");
  const auto put = [&](std::size_t field, const std::vector<int32_t>& v) {
    std::memcpy(meta_.h(field), v.data(), v.size() * sizeof(int32_t));
  };
  put(meta_.ids, batch.input_ids);
  put(meta_.positions, batch.positions);
  put(meta_.slots, batch.slot_mapping);
  put(meta_.query_start, batch.query_start);
  put(meta_.seq_lens, batch.seq_lens);
  put(meta_.page_start, batch.page_start);
  put(meta_.pages, batch.pages);
  const int32_t spare_slot = num_blocks_ * limits_.block_size;
  for (int32_t i = 0; i < pad; ++i) {  // a token at position 0 in the spare block
    meta_.h(meta_.ids)[T + i] = 0;
    meta_.h(meta_.positions)[T + i] = 0;
    meta_.h(meta_.slots)[T + i] = spare_slot;
    meta_.h(meta_.query_start)[S + 1 + i] = T + i + 1;
    meta_.h(meta_.seq_lens)[S + i] = 1;
    meta_.h(meta_.pages)[P + i] = num_blocks_;
    meta_.h(meta_.page_start)[S + 1 + i] = P + i + 1;
  }
  auto* rows = reinterpret_cast<cuda::DeviceSampleRow*>(meta_.h(meta_.rows));
  const int32_t samples = pad > 0 ? padded_seqs : batch.num_samples();
  for (int32_t i = 0; i < samples; ++i) {
    const bool real = i < batch.num_samples();
    const int32_t seq =
        real ? batch.sample_seqs[static_cast<std::size_t>(i)] : S + (i - batch.num_samples());
    meta_.h(meta_.logit_rows)[i] = meta_.h(meta_.query_start)[seq + 1] - 1;
    cuda::DeviceSampleRow r{};
    if (real) {
      const SampleRow& s = batch.sampling[static_cast<std::size_t>(i)];
      r = {s.temperature, s.top_p, s.top_k, 0, s.key.seed, s.key.workflow, s.key.step, s.key.index};
    }
    rows[i] = r;
  }
  for (std::size_t i = 0; i < batch.copies.size(); ++i) {
    meta_.h(meta_.copies)[2 * i] = batch.copies[i].src;
    meta_.h(meta_.copies)[2 * i + 1] = batch.copies[i].dst;
  }
  const auto Tp = static_cast<std::size_t>(T + pad), Sp = static_cast<std::size_t>(padded_seqs);
  meta_.upload(meta_.ids, Tp, stream_);
  meta_.upload(meta_.positions, Tp, stream_);
  meta_.upload(meta_.slots, Tp, stream_);
  meta_.upload(meta_.query_start, Sp + 1, stream_);
  meta_.upload(meta_.seq_lens, Sp, stream_);
  meta_.upload(meta_.page_start, Sp + 1, stream_);
  meta_.upload(meta_.pages, static_cast<std::size_t>(P + pad), stream_);
  meta_.upload(meta_.logit_rows, static_cast<std::size_t>(samples), stream_);
  meta_.upload(meta_.rows, static_cast<std::size_t>(samples) * sizeof(cuda::DeviceSampleRow) / 4,
               stream_);
  meta_.upload(meta_.copies, 2 * batch.copies.size(), stream_);
}

// graph_seqs > 0: the step may replay the graph captured for that many sequences; the backend
// says after planning whether it can (a cascade step cannot).
bool CudaModelRunner::plan_attention(const StepBatch& batch, int32_t graph_seqs) {
  cuda::AttentionBatch ab;
  ab.num_seqs = batch.num_seqs();
  ab.num_tokens = batch.num_tokens();
  ab.decode_only = batch.is_decode_only();
  ab.graph_seqs = graph_seqs;
  ab.query_start = batch.query_start.data();
  ab.seq_lens = batch.seq_lens.data();
  ab.page_start = batch.page_start.data();
  ab.pages = batch.pages.data();
  ab.d_query_start = meta_.d(meta_.query_start);
  ab.d_seq_lens = meta_.d(meta_.seq_lens);
  ab.d_page_start = meta_.d(meta_.page_start);
  ab.d_pages = meta_.d(meta_.pages);
  attention_->plan(ab, stream_);
  return graph_seqs > 0 && attention_->graph_ready();
}

void CudaModelRunner::launch(const StepBatch& batch) {
  NvtxRange range(batch.is_decode_only() ? "decode step" : "step");
  if (in_flight_) throw std::logic_error("cuda backend: launch() before finish()");
  if (profile_ && last_finish_ != Clock::time_point{})
    profile_->add_host("host: engine between steps", seconds_between(last_finish_, Clock::now()));
  const auto copies = static_cast<int32_t>(batch.copies.size());
  // A decode step of every sequence sampled, with no copies, may replay a captured graph.
  const int32_t bucket = graphs_ && batch.num_seqs() > 0 && batch.is_decode_only() &&
                                 batch.num_samples() == batch.num_seqs() && copies == 0 &&
                                 !batch.return_logits
                             ? graphs_->bucket_for(batch.num_seqs())
                             : 0;
  stage(batch, bucket);
  if (copies > 0)
    cuda::copy_blocks(meta_.d(meta_.copies), copies, weights_.config.n_layer, layer_stride_,
                      static_cast<int64_t>(limits_.block_size) * n_kv_, k_pool_.as<bf16>(),
                      v_pool_.as<bf16>(), stream_);
  pending_samples_ = batch.num_samples();
  pending_logits_ = batch.return_logits;
  if (batch.num_tokens() > 0) {
    const auto planned = Clock::now();
    const bool replay = plan_attention(batch, bucket);
    if (profile_)
      profile_->add_host("host: attention plan", seconds_between(planned, Clock::now()));
    if (replay) {
      graphs_->replay(bucket, stream_);
    } else {
      forward(batch.num_tokens(), batch.num_samples());
    }
  }
  read_back(pending_samples_, pending_logits_);
  check(cudaEventRecord(done_, stream_), "cudaEventRecord");
  in_flight_ = true;
}

void CudaModelRunner::read_back(int32_t samples, bool logits) {
  if (samples == 0) return;
  check(cudaMemcpyAsync(meta_.h(meta_.tokens), meta_.d(meta_.tokens),
                        static_cast<std::size_t>(samples) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                        stream_),
        "sampled tokens download");
  if (!logits) return;
  const std::size_t n = static_cast<std::size_t>(samples) * weights_.config.n_vocab;
  if (logits_host_.bytes() < n * sizeof(float))
    logits_host_ = PinnedBuffer(n * sizeof(float), "logits (host)");
  check(cudaMemcpyAsync(logits_host_.as(), logits_.as(), n * sizeof(float), cudaMemcpyDeviceToHost,
                        stream_),
        "logits download");
}

void CudaModelRunner::finish(StepResult& result) {
  if (!in_flight_) throw std::logic_error("cuda backend: finish() without launch()");
  in_flight_ = false;
  check(cudaEventSynchronize(done_), "step");  // an asynchronous kernel fault surfaces here
  check(cudaGetLastError(), "step");
  if (profile_) {
    profile_->collect();
    last_finish_ = Clock::now();
  }
  const int32_t* tokens = meta_.h(meta_.tokens);
  result.tokens.assign(tokens, tokens + pending_samples_);
  result.logits.clear();
  if (pending_logits_) {
    const float* l = logits_host_.as<float>();
    result.logits.assign(l,
                         l + static_cast<std::size_t>(pending_samples_) * weights_.config.n_vocab);
  }
}

void CudaModelRunner::forward(int32_t rows, int32_t samples) {
  if (!profile_) {
    for (const PlanOp& op : plan_.ops) run_op(op, rows, samples);
    return;
  }
  const std::string shape = rows == samples ? "decode " : "prefill ";
  for (const PlanOp& op : plan_.ops) {
    if (op.kind == OpKind::kLogits) {  // the logits GEMM and the sampler, apart
      if (samples == 0) continue;
      profile_->time(shape + "logits", stream_, [&] { logits(samples); });
      profile_->time(shape + "sample", stream_, [&] { sample(samples); });
      continue;
    }
    std::string name = shape + op_name(op.kind);
    if (op.kind == OpKind::kAttention) name += op.window > 0 ? " (window)" : " (full)";
    profile_->time(name, stream_, [&] { run_op(op, rows, samples); });
  }
}

void CudaModelRunner::attention(const PlanOp& op, int32_t rows) {
  const std::size_t layer =
      static_cast<std::size_t>(op.layer) * static_cast<std::size_t>(layer_stride_);
  bf16* k = k_pool_.as<bf16>() + layer;
  bf16* v = v_pool_.as<bf16>() + layer;
  cuda::store_kv(qkv_.as<bf16>(), meta_.d(meta_.slots), rows, n_q_, n_kv_, k, v, stream_);
  attention_->run(qkv_.as<bf16>(), n_qkv_, k, v, op.window, attn_.as<bf16>(), stream_);
}

void CudaModelRunner::run_op(const PlanOp& op, int32_t rows, int32_t samples) {
  const ModelConfig& c = weights_.config;
  const float eps = plan_.rms_eps;
  const auto W = [&](WeightSlot slot) { return w_.get(op.layer, slot); };
  const auto norm = [&](WeightSlot slot) {
    return slot == WeightSlot::kNone ? nullptr : w_.get(op.norm_layer, slot);
  };
  switch (op.kind) {
    case OpKind::kEmbed:
      cuda::embed_rows(meta_.d(meta_.ids), w_.tok_embd, rows, c.n_embd, norm(op.norm), eps,
                       x_.as<float>(), h_.as<bf16>(), stream_);
      break;
    case OpKind::kQkvProj:
      gemm_->bf16_out(h_.as<bf16>(), rows, W(WeightSlot::kWqkv), n_qkv_, c.n_embd, qkv_.as<bf16>(),
                      stream_);
      if (op.bias) cuda::add_bias(qkv_.as<bf16>(), W(WeightSlot::kBqkv), rows, n_qkv_, stream_);
      break;
    case OpKind::kQkNorm:
      cuda::qk_norm(qkv_.as<bf16>(), W(WeightSlot::kQNorm), W(WeightSlot::kKNorm), eps, rows, n_q_,
                    n_kv_, stream_);
      break;
    case OpKind::kRope: {
      const RopeTable& t = plan_.ropes[static_cast<std::size_t>(op.rope)];
      cuda::apply_rope(qkv_.as<bf16>(), meta_.d(meta_.positions),
                       rope_tables_[static_cast<std::size_t>(op.rope)].as<float2>(),
                       t.style == RopeStyle::kInterleaved, t.dims, c.head_dim, c.n_head,
                       c.n_head_kv, rows, stream_);
      break;
    }
    case OpKind::kAttention:
      attention(op, rows);
      break;
    case OpKind::kOutProj:
      gemm_->bf16_out(attn_.as<bf16>(), rows, W(WeightSlot::kWo), c.n_embd, n_q_, proj_.as<bf16>(),
                      stream_);
      break;
    case OpKind::kResidual:
      cuda::residual_norm(
          proj_.as<bf16>(), op.post_norm == WeightSlot::kNone ? nullptr : W(op.post_norm),
          norm(op.norm), eps, rows, c.n_embd, x_.as<float>(), h_.as<bf16>(), stream_);
      break;
    case OpKind::kGateUpProj:
      gemm_->bf16_out(h_.as<bf16>(), rows, W(WeightSlot::kWGateUp), 2 * c.n_ff, c.n_embd,
                      gate_up_.as<bf16>(), stream_);
      break;
    case OpKind::kSwiGlu:
      cuda::swiglu(gate_up_.as<bf16>(), act_.as<bf16>(), rows, c.n_ff, stream_);
      break;
    case OpKind::kDownProj:
      gemm_->bf16_out(act_.as<bf16>(), rows, W(WeightSlot::kWDown), c.n_embd, c.n_ff,
                      proj_.as<bf16>(), stream_);
      break;
    case OpKind::kLogits:
      if (samples == 0) break;
      logits(samples);
      sample(samples);
      break;
  }
}

// The final norm of each sampled row and its logits (f32), for `samples` rows.
void CudaModelRunner::logits(int32_t samples) {
  const ModelConfig& c = weights_.config;
  cuda::gather_norm(x_.as<float>(), meta_.d(meta_.logit_rows), samples, c.n_embd, w_.output_norm,
                    plan_.rms_eps, last_.as<bf16>(), stream_);
  gemm_->f32_out(last_.as<bf16>(), samples, w_.get(-1, WeightSlot::kOutput), c.n_vocab, c.n_embd,
                 logits_.as<float>(), stream_);
}

void CudaModelRunner::sample(int32_t samples) {
  cuda::sample_rows(logits_.as<float>(), samples, weights_.config.n_vocab,
                    reinterpret_cast<const cuda::DeviceSampleRow*>(meta_.d(meta_.rows)),
                    sample_ws_.as(), meta_.d(meta_.tokens), stream_);
}

// Decode steps at each bucket size, captured once: a step then costs one graph launch instead of
// a few hundred kernel launches.
void CudaModelRunner::capture_graphs() {
  NvtxRange range("capture graphs");
  graphs_ = std::make_unique<cuda::StepGraphs>(limits_.max_seqs, limits_.max_batch_tokens);
  for (const int32_t b : graphs_->buckets()) {
    StepBatch fake;
    fake.clear();
    const SampleRow greedy;
    // One token at position 0 in a page of its own (nothing is cached yet at preload, so the
    // writes are harmless): no shared pages, so no cascade, as real decode graphs need.
    const int32_t token = 0;
    std::vector<int32_t> pages(static_cast<std::size_t>(b));
    for (int32_t i = 0; i < b; ++i) pages[static_cast<std::size_t>(i)] = i % num_blocks_;
    for (int32_t i = 0; i < b; ++i)
      fake.add_sequence(std::span<const int32_t>(&token, 1), 0,
                        std::span<const int32_t>(pages).subspan(static_cast<std::size_t>(i), 1),
                        limits_.block_size, &greedy);
    stage(fake, b);
    // Once eagerly first: every library call of the step meets its shapes outside a capture
    // (cuBLASLt picks its algorithms for them then; a capture only replays the choice).
    plan_attention(fake, 0);
    forward(b, b);
    if (!plan_attention(fake, b))
      throw RunError("cuda backend: attention cannot prepare a graph of " + std::to_string(b) +
                     " decode sequences");
    graphs_->capture(b, stream_, [&] { forward(b, b); });
  }
}

}  // namespace

std::unique_ptr<ModelRunner> make_cuda_runner(ModelWeights weights, CudaRunnerOptions options) {
  return std::make_unique<CudaModelRunner>(std::move(weights), std::move(options));
}

}  // namespace flowrank::engine
