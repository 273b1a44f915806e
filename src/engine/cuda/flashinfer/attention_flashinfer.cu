// AttentionBackend over FlashInfer's header-only kernels. Workspaces are sized once from the
// config; plan() derives each launch's page table (attention_tables.hpp), stages it at fixed
// device addresses and lets FlashInfer schedule it; run() only fills parameter structs and
// launches. Kernels per step and layer (the dispatch table):
//   prefill or mixed step  -> FA3 paged prefill on sm_90 (when built, and the step's mean query
//                             length is >= kFa3MinMeanRows), else FA2 paged prefill; causal
//   decode step, group > 1 -> tensor-core decode: the FA2 prefill kernel, one row per sequence
//   decode step, group = 1 -> decode on CUDA cores
//   decode step sharing    -> cascade = FA2 prefill without mask of each group's rows over its
//   leading pages             shared pages, decode (as above) of every sequence over the rest,
//                             MergeState. Full-attention layers: all the shared pages; windowed
//                             layers: the last D shared pages of each group, the suffix decode
//                             under a window shortened by D pages (WindowCascade), when it pays
// Windowed layers read their own tables (no pages outside the window) with window_left set.
#include <flashinfer/attention/cascade.cuh>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../attention.cuh"
#include "../attention_tables.hpp"
#include "../cuda_check.cuh"
#include "fa2.cuh"
#include "fa3.cuh"

// FA3's scheduler is host code over scheduler.cuh, which this unit includes anyway; only its
// kernel units (fa3_hd*.cu) must stay apart from the FA2 headers.
namespace flowrank::engine::cuda::fa3 {

cudaError_t plan(const Shape& shape, void* int_ws, void* pinned, std::size_t int_bytes,
                 int32_t* q_indptr, int32_t* kv_indptr, int32_t* kv_len, int32_t batch,
                 int32_t total_rows, Plan& out, cudaStream_t stream) {
  flashinfer::PrefillPlanSM90Info info;
  const cudaError_t status = flashinfer::PrefillSM90Plan<int32_t>(
      /*float_buffer=*/nullptr, /*float_workspace_size_in_bytes=*/0, int_ws, pinned, int_bytes,
      info, q_indptr, kv_indptr, kv_len, static_cast<uint32_t>(total_rows),
      static_cast<uint32_t>(batch), static_cast<uint32_t>(shape.n_head),
      static_cast<uint32_t>(shape.n_head_kv), static_cast<uint32_t>(shape.head_dim),
      static_cast<uint32_t>(shape.head_dim), static_cast<uint32_t>(shape.page_size),
      /*causal=*/true, /*enable_cuda_graph=*/false, /*sizeof_dtype_o=*/2, stream);
  out.qo_tile_indices = info.qo_tile_indices_offset;
  out.qo_indptr = info.qo_indptr_offset;
  out.kv_indptr = info.kv_indptr_offset;
  out.qo_len = info.qo_len_offset;
  out.kv_len = info.kv_len_offset;
  out.head_indices = info.head_indices_offset;
  out.work_indptr = info.work_indptr_offset;
  out.batch_indices = info.batch_indices_offset;
  out.same_schedule_for_all_heads = info.same_schedule_for_all_heads;
  return status;
}

}  // namespace flowrank::engine::cuda::fa3

namespace flowrank::engine::cuda {
namespace {

using DType = fa2::DType;
using flashinfer::MaskMode;

// FA3 takes a step when its queries are long enough to fill its 128/192-row tiles.
constexpr int32_t kFa3MinMeanRows = 64;

[[noreturn]] void fail(const std::string& what) {
  throw RunError("attention: " + what);
}

// Runs a FlashInfer call: a failed status or a FlashInfer exception becomes RunError naming the
// call and the launch (the message is only built on failure: run() calls this once per layer).
template <typename F>
void guarded(const char* what, const char* slot, F&& call) {
  const auto name = [&] { return std::string(what) + " (" + slot + ")"; };
  cudaError_t status = cudaSuccess;
  try {
    status = call();
  } catch (const RunError&) {
    throw;
  } catch (const std::exception& e) {
    fail(name() + ": " + e.what());
  }
  if (status != cudaSuccess) fail(name() + ": " + cudaGetErrorString(status));
}

// Device or pinned host memory, allocated once.
template <bool kPinned>
class Buffer {
 public:
  Buffer() = default;
  Buffer(std::size_t bytes, const std::string& what) : bytes_(bytes) {
    const cudaError_t err = kPinned ? cudaMallocHost(&ptr_, bytes) : cudaMalloc(&ptr_, bytes);
    if (err != cudaSuccess)
      fail(std::string(kPinned ? "cudaMallocHost" : "cudaMalloc") + " of " + std::to_string(bytes) +
           " bytes for " + what + ": " + cudaGetErrorString(err));
  }
  ~Buffer() {
    if (ptr_ != nullptr) (void)(kPinned ? cudaFreeHost(ptr_) : cudaFree(ptr_));
  }
  Buffer(Buffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    std::swap(ptr_, other.ptr_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  void* get() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

template <typename T>
T* at(void* base, int64_t offset_bytes) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset_bytes);
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
int64_t round4(int64_t n) {
  return (n + 3) / 4 * 4;
}

struct DeviceInfo {
  int major = 0;
  int minor = 0;
  int sms = 0;
  int max_threads_per_sm = 0;
};

// Workspace bounds for the configured maxima. FlashInfer's plans carve their arrays out of these
// (and throw if one does not fit); the bounds follow PrefillSplitQOKVIndptr, DecodePlanImpl and
// PrefillSM90Plan (scheduler.cuh), with 16-byte alignment slack.
struct WorkspaceSizes {
  std::size_t float_bytes = 0;  // split-KV partial outputs, shared by the plans (used in turn)
  std::size_t int_bytes = 0;    // one plan's schedule
  int64_t table_ints = 0;       // one slot's page table
};

WorkspaceSizes workspace_sizes(const AttentionConfig& c, const DeviceInfo& d) {
  const int64_t group = c.n_head / c.n_head_kv;
  // Prefill: split batches stay within 2 CTAs per SM per KV head; unsplit ones have one CTA per
  // query tile of at least 16 packed rows; graph (decode) batches are padded to max_seqs tiles.
  const int64_t split_ctas = (2 * int64_t{d.sms}) / c.n_head_kv;
  const int64_t prefill_ctas =
      ceil_div(int64_t{c.max_tokens} * group, 16) + c.max_seqs + split_ctas + c.max_seqs;
  const int64_t prefill_int =
      13 * prefill_ctas + 4 * (int64_t{c.max_seqs} + c.max_tokens + 4) + 8 * 16;
  // Decode: at most max_threads_per_sm / 128 CTAs per SM (its CTAs have >= 128 threads).
  const int64_t decode_ctas =
      std::max<int64_t>(c.max_seqs, int64_t{d.max_threads_per_sm} / 128 * d.sms);
  const int64_t decode_int = 13 * (decode_ctas + 1) + 8 * 16;
  const int64_t fa3_works =
      int64_t{c.n_head} * (ceil_div(c.max_tokens, fa3::cta_tile_q(c.head_dim)) + c.max_seqs);
  const int64_t fa3_int = 4 * (7 * fa3_works + d.sms + 1) + 8 * 16;
  WorkspaceSizes s;
  s.int_bytes = static_cast<std::size_t>(std::max({prefill_int, decode_int, fa3_int}) + 4096);
  const int64_t prefill_rows =
      ceil_div(std::max(split_ctas * 128, std::max<int64_t>(split_ctas, c.max_seqs) * 16), group);
  const int64_t decode_rows = decode_ctas / c.n_head_kv + 1;
  s.float_bytes = static_cast<std::size_t>(
      int64_t{c.n_head} * (c.head_dim + 1) * 4 * std::max(prefill_rows, decode_rows) + 4096);
  s.table_ints = 2 * round4(int64_t{c.max_seqs} + 1) + round4(c.max_seqs) +
                 round4(int64_t{c.max_pages} + c.max_seqs);
  return s;
}

enum class Kernel { kNone, kFa2Prefill, kFa3Prefill, kTensorCoreDecode, kCudaCoreDecode };

const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::kFa2Prefill:
      return "fa2 prefill";
    case Kernel::kFa3Prefill:
      return "fa3 prefill";
    case Kernel::kTensorCoreDecode:
      return "tensor-core decode";
    case Kernel::kCudaCoreDecode:
      return "cuda-core decode";
    case Kernel::kNone:
      break;
  }
  return "none";
}

// A page table's arrays at their fixed offsets in a slot's region (device or pinned staging).
struct TableArrays {
  int32_t* q_indptr = nullptr;
  int32_t* kv_indptr = nullptr;
  int32_t* last_page_len = nullptr;
  int32_t* indices = nullptr;
};

TableArrays table_arrays(int32_t* base, int32_t max_seqs) {
  const int64_t indptr = round4(int64_t{max_seqs} + 1);
  return {base, base + indptr, base + 2 * indptr, base + 2 * indptr + round4(max_seqs)};
}

// One kernel launch per layer: its table (host, staged, device) and FlashInfer's schedule for it,
// kept in the slot's own int workspace.
struct Slot {
  const char* name = "";
  Kernel kernel = Kernel::kNone;
  MaskMode mask = MaskMode::kCausal;
  int32_t window_left = -1;
  bool graph = false;
  PageTable table;
  TableArrays host;
  TableArrays device;
  Buffer<false> int_ws;
  Buffer<true> int_pinned;
  flashinfer::PrefillPlanInfo prefill;
  flashinfer::DecodePlanInfo decode;
  fa3::Plan fa3;
};

// One layer's inputs.
struct LayerIo {
  const DType* q;
  int64_t q_row_stride;
  const DType* k_cache;
  const DType* v_cache;
};

template <typename F>
cudaError_t with_head_dim(int32_t head_dim, F&& f) {
  if (head_dim == 64) return f(std::integral_constant<uint32_t, 64>{});
  return f(std::integral_constant<uint32_t, 128>{});
}

void check_config(const AttentionConfig& c) {
  if (c.n_head <= 0 || c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0)
    fail(std::to_string(c.n_head) + " query heads cannot share " + std::to_string(c.n_head_kv) +
         " KV heads");
  if (c.head_dim != 64 && c.head_dim != 128)
    fail("head size " + std::to_string(c.head_dim) + " is not instantiated (64 and 128 are)");
  if (c.block_size <= 0) fail("block size must be positive");
  if (c.max_tokens <= 0 || c.max_seqs <= 0 || c.max_pages <= 0)
    fail("max_tokens, max_seqs and max_pages must be positive");
  if (!(c.scale > 0.0f)) fail("the softmax scale must be positive");
  if (c.window < 0) fail("the window must not be negative");
}

DeviceInfo device_info(int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  DeviceInfo d;
  check(cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, device),
        "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, device),
        "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute");
  check(
      cudaDeviceGetAttribute(&d.max_threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device),
      "cudaDeviceGetAttribute");
  // The FlashInfer units are built for FLOWRANK_CUDA_ARCHS only: refuse a GPU they do not cover
  // now rather than at the first launch.
  cudaFuncAttributes attr{};
  const cudaError_t err =
      cudaFuncGetAttributes(&attr, flashinfer::MergeStateKernel<8, DType, DType>);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    fail("no attention kernels for this GPU (sm_" + std::to_string(d.major) +
         std::to_string(d.minor) + "): build with it in FLOWRANK_CUDA_ARCHS (" +
         cudaGetErrorString(err) + ")");
  }
  return d;
}

class FlashInferAttention final : public AttentionBackend {
 public:
  explicit FlashInferAttention(const AttentionConfig& config);
  ~FlashInferAttention() override {
    if (uploaded_ != nullptr) (void)cudaEventDestroy(uploaded_);
  }
  FlashInferAttention(const FlashInferAttention&) = delete;
  FlashInferAttention& operator=(const FlashInferAttention&) = delete;

  void plan(const AttentionBatch& batch, cudaStream_t stream) override;
  void run(const __nv_bfloat16* q, int64_t q_row_stride, const __nv_bfloat16* k_cache,
           const __nv_bfloat16* v_cache, int32_t window, __nv_bfloat16* out,
           cudaStream_t stream) override;
  std::size_t device_bytes() const override;
  std::string describe() const override;
  bool graph_ready() const override { return graph_ready_; }
  std::string planned() const override { return planned_; }

 private:
  enum SlotId { kFull, kWindowed, kPrefix, kSuffix, kWindowPrefix, kWindowSuffix, kSlotCount };

  void check_batch(const AttentionBatch& batch) const;
  Kernel step_kernel(const AttentionBatch& batch) const;
  Kernel decode_kernel() const;
  void prepare_step(const AttentionBatch& batch, const StepTables& step, cudaStream_t stream);
  void prepare(Slot& slot, Kernel kernel, MaskMode mask, int32_t window_left, bool graph,
               cudaStream_t stream);
  void prepare_cascade(SlotId prefix, SlotId suffix, int32_t suffix_window_left,
                       cudaStream_t stream);
  void stage(Slot& slot, cudaStream_t stream);
  void schedule(Slot& slot, cudaStream_t stream);
  void schedule_fa2(Slot& slot, cudaStream_t stream);
  void describe_plan();
  void check_layer(const LayerIo& io, const void* out, int32_t window) const;
  void launch(const Slot& slot, const LayerIo& io, DType* out, float* lse, cudaStream_t stream);
  void launch_fa2(const Slot& slot, const LayerIo& io, DType* out, float* lse, cudaStream_t stream);
  void launch_decode(const Slot& slot, const LayerIo& io, DType* out, float* lse,
                     cudaStream_t stream);
  void launch_fa3(const Slot& slot, const LayerIo& io, DType* out, cudaStream_t stream);
  void run_cascade(SlotId prefix, SlotId suffix, const LayerIo& io, DType* out,
                   cudaStream_t stream);
  flashinfer::paged_kv_t<DType, int32_t> paged_kv(const Slot& slot, const LayerIo& io) const;
  // The fields FA2's prefill and decode parameter structs share: this layer's tensors, the
  // slot's table and window, the softmax scale (no soft cap, no RoPE in the kernels).
  template <typename Params>
  void set_layer(Params& p, const Slot& slot, const LayerIo& io, DType* out, float* lse) const {
    p.q = const_cast<DType*>(io.q);
    p.paged_kv = paged_kv(slot, io);
    p.o = out;
    p.lse = lse;
    p.num_qo_heads = static_cast<uint32_t>(config_.n_head);
    p.q_stride_n = static_cast<int32_t>(io.q_row_stride);
    p.q_stride_h = config_.head_dim;
    p.window_left = slot.window_left;
    p.logits_soft_cap = 0.0f;
    p.sm_scale = config_.scale;
    p.rope_rcp_scale = 1.0f;
    p.rope_rcp_theta = 1.0f;
  }
  // The schedule fields both structs take from their plan (PrefillPlanInfo or DecodePlanInfo);
  // returns the split-KV partial-output buffers, null when the plan did not split.
  template <typename Params, typename Info>
  std::pair<DType*, float*> set_schedule(Params& p, const Info& info, void* ws) const {
    p.request_indices = at<int32_t>(ws, info.request_indices_offset);
    p.kv_tile_indices = at<int32_t>(ws, info.kv_tile_indices_offset);
    p.o_indptr = at<int32_t>(ws, info.o_indptr_offset);
    p.kv_chunk_size_ptr = at<int32_t>(ws, info.kv_chunk_size_ptr_offset);
    p.padded_batch_size = static_cast<uint32_t>(info.padded_batch_size);
    if (!info.split_kv) return {nullptr, nullptr};
    return {at<DType>(float_ws_.get(), info.v_offset), at<float>(float_ws_.get(), info.s_offset)};
  }

  AttentionConfig config_;
  DeviceInfo device_;
  int32_t group_ = 1;
  bool fa3_ = false;
  std::string fa3_note_;
  WorkspaceSizes sizes_;
  Buffer<false> float_ws_;
  Buffer<false> tables_;
  Buffer<true> tables_host_;
  // Both cascades' partial results (the layers run one after another on one stream).
  Buffer<false> cascade_out_;  // [2][max_seqs][n_head][head_dim] bf16: prefix, suffix
  Buffer<false> cascade_lse_;  // [2][max_seqs][n_head] f32
  std::array<Slot, kSlotCount> slots_;
  cudaEvent_t uploaded_ = nullptr;
  CascadeGroups groups_;
  WindowCascade window_cascade_;
  bool planned_once_ = false;
  bool cascade_ = false;           // the full-attention layers take the cascade
  bool windowed_cascade_ = false;  // the windowed layers do
  bool graph_ready_ = false;
  std::string planned_;
};

FlashInferAttention::FlashInferAttention(const AttentionConfig& config) : config_(config) {
  check_config(config_);
  device_ = device_info(config_.device);
  group_ = config_.n_head / config_.n_head_kv;
#ifdef FLOWRANK_HAVE_FA3
  const int64_t works_per_head =
      ceil_div(config_.max_tokens, fa3::cta_tile_q(config_.head_dim)) + config_.max_seqs - 1;
  if (!config_.fa3)
    fa3_note_ = "off by config";
  else if (device_.major != 9 || device_.minor != 0)
    fa3_note_ = "not sm_90";
  else if (works_per_head > fa3::kMaxWorksPerHead)
    fa3_note_ = "max_tokens too large for its instantiated schedule";
  else
    fa3_ = true;
#else
  fa3_note_ = "not built (FLOWRANK_CUDA_ARCHS without 90a)";
#endif
  sizes_ = workspace_sizes(config_, device_);
  float_ws_ = Buffer<false>(sizes_.float_bytes, "the attention float workspace");
  const std::size_t table_bytes = 4 * static_cast<std::size_t>(sizes_.table_ints) * kSlotCount;
  tables_ = Buffer<false>(table_bytes, "the attention page tables");
  tables_host_ = Buffer<true>(table_bytes, "the attention page tables (pinned staging)");
  const char* names[kSlotCount] = {"full",
                                   "windowed",
                                   "cascade prefix",
                                   "cascade suffix",
                                   "windowed cascade prefix",
                                   "windowed cascade suffix"};
  for (int i = 0; i < kSlotCount; ++i) {
    Slot& slot = slots_[static_cast<std::size_t>(i)];
    slot.name = names[i];
    slot.int_ws = Buffer<false>(sizes_.int_bytes, std::string("the ") + names[i] + " schedule");
    slot.int_pinned =
        Buffer<true>(sizes_.int_bytes, std::string("the ") + names[i] + " schedule (pinned)");
    const int64_t offset = int64_t{i} * sizes_.table_ints;
    slot.device = table_arrays(static_cast<int32_t*>(tables_.get()) + offset, config_.max_seqs);
    slot.host = table_arrays(static_cast<int32_t*>(tables_host_.get()) + offset, config_.max_seqs);
  }
  if (config_.cascade) {
    const std::size_t rows = 2 * static_cast<std::size_t>(config_.max_seqs) * config_.n_head;
    cascade_out_ = Buffer<false>(rows * config_.head_dim * sizeof(DType), "the cascade outputs");
    cascade_lse_ = Buffer<false>(rows * sizeof(float), "the cascade log-sum-exps");
  }
  check(cudaEventCreateWithFlags(&uploaded_, cudaEventDisableTiming), "cudaEventCreate");
}

std::size_t FlashInferAttention::device_bytes() const {
  return float_ws_.bytes() + tables_.bytes() + kSlotCount * sizes_.int_bytes +
         cascade_out_.bytes() + cascade_lse_.bytes();
}

std::string FlashInferAttention::describe() const {
  std::string s = "flashinfer 0.7.2.post1: prefill ";
  s += fa3_ ? "fa3 (sm_90a), fa2 for short queries" : "fa2 (fa3 " + fa3_note_ + ")";
  s += group_ > 1 ? ", tensor-core decode" : ", cuda-core decode";
  s += config_.cascade ? ", cascade" : ", no cascade";
  s += ", head size " + std::to_string(config_.head_dim);
  if (config_.window > 0) s += ", window " + std::to_string(config_.window);
  return s;
}

void FlashInferAttention::check_batch(const AttentionBatch& b) const {
  const auto over = [](const char* what, int64_t n, int64_t max) {
    fail("plan: " + std::to_string(n) + " " + what + " (configured for at most " +
         std::to_string(max) + ")");
  };
  if (b.num_seqs > config_.max_seqs) over("sequences", b.num_seqs, config_.max_seqs);
  if (b.num_tokens > config_.max_tokens) over("query rows", b.num_tokens, config_.max_tokens);
  if (b.num_seqs > 0 && b.page_start[b.num_seqs] > config_.max_pages)
    over("pages", b.page_start[b.num_seqs], config_.max_pages);
  if (b.graph_seqs > config_.max_seqs) over("graph sequences", b.graph_seqs, config_.max_seqs);
  if (b.graph_seqs > 0 && (!b.decode_only || b.graph_seqs < b.num_seqs))
    fail("plan: graph_seqs is for decode steps of at most that many sequences");
  if (b.num_seqs > 0 && b.query_start[b.num_seqs] != b.num_tokens)
    fail("plan: query_start ends at " + std::to_string(b.query_start[b.num_seqs]) + ", not at " +
         std::to_string(b.num_tokens) + " query rows");
  for (int32_t s = 0; b.decode_only && s < b.num_seqs; ++s)
    if (b.query_start[s + 1] - b.query_start[s] != 1)
      fail("plan: decode step, but sequence " + std::to_string(s) + " has " +
           std::to_string(b.query_start[s + 1] - b.query_start[s]) + " query rows");
}

Kernel FlashInferAttention::decode_kernel() const {
  return group_ == 1 ? Kernel::kCudaCoreDecode : Kernel::kTensorCoreDecode;
}

Kernel FlashInferAttention::step_kernel(const AttentionBatch& b) const {
  if (b.decode_only) return decode_kernel();
  const bool long_queries = b.num_tokens >= int64_t{kFa3MinMeanRows} * b.num_seqs;
  return fa3_ && long_queries ? Kernel::kFa3Prefill : Kernel::kFa2Prefill;
}

void FlashInferAttention::plan(const AttentionBatch& batch, cudaStream_t stream) {
  check_batch(batch);
  const StepTables step{batch.num_seqs, config_.block_size, batch.query_start,
                        batch.seq_lens, batch.page_start,   batch.pages};
  check_step(step);
  check(cudaSetDevice(config_.device), "cudaSetDevice");
  // The pinned staging buffers are reused: the previous plan's copies must have left them.
  check(cudaEventSynchronize(uploaded_), "attention plan: waiting for the previous upload");
  planned_once_ = false;
  graph_ready_ = false;
  try {
    prepare_step(batch, step, stream);
  } catch (...) {
    (void)cudaEventRecord(uploaded_, stream);  // copies already queued still use the staging
    throw;
  }
  check(cudaEventRecord(uploaded_, stream), "cudaEventRecord");
  planned_once_ = true;
  describe_plan();
}

void FlashInferAttention::prepare_step(const AttentionBatch& batch, const StepTables& step,
                                       cudaStream_t stream) {
  // One grouping serves both layer kinds; each takes the cascade when it pays for it.
  const bool grouped = batch.decode_only && config_.cascade;
  cascade_ = grouped && find_cascade_groups(step, groups_);
  windowed_cascade_ = grouped && config_.window > 0 &&
                      find_window_cascade(step, groups_, config_.window, window_cascade_);
  const int32_t pad_to = cascade_ || windowed_cascade_ ? 0 : batch.graph_seqs;
  const bool graph = pad_to > 0;
  for (Slot& slot : slots_) slot.kernel = Kernel::kNone;
  if (cascade_) {
    cascade_tables(step, groups_, slots_[kPrefix].table, slots_[kSuffix].table);
    prepare_cascade(kPrefix, kSuffix, -1, stream);
  } else {
    step_table(step, pad_to, slots_[kFull].table);
    prepare(slots_[kFull], step_kernel(batch), MaskMode::kCausal, -1, graph, stream);
  }
  if (windowed_cascade_) {
    window_cascade_tables(step, groups_, window_cascade_, slots_[kWindowPrefix].table,
                          slots_[kWindowSuffix].table);
    prepare_cascade(kWindowPrefix, kWindowSuffix, window_cascade_.window_left, stream);
  } else if (config_.window > 0) {
    window_table(step, config_.window, pad_to, slots_[kWindowed].table);
    prepare(slots_[kWindowed], step_kernel(batch), MaskMode::kCausal, config_.window - 1, graph,
            stream);
  }
  graph_ready_ = graph;
}

// The prefix launch attends its pages without a mask (all of them precede every row's query);
// the suffix launch is a decode, causal, within suffix_window_left (-1: no window).
void FlashInferAttention::prepare_cascade(SlotId prefix, SlotId suffix, int32_t suffix_window_left,
                                          cudaStream_t stream) {
  prepare(slots_[prefix], Kernel::kFa2Prefill, MaskMode::kNone, -1, false, stream);
  prepare(slots_[suffix], decode_kernel(), MaskMode::kCausal, suffix_window_left, false, stream);
}

void FlashInferAttention::prepare(Slot& slot, Kernel kernel, MaskMode mask, int32_t window_left,
                                  bool graph, cudaStream_t stream) {
  slot.kernel = kernel;
  slot.mask = mask;
  slot.window_left = window_left;
  slot.graph = graph;
  stage(slot, stream);
  schedule(slot, stream);
}

// Copies the slot's table into its pinned region and from there to its fixed device addresses,
// in one copy from the region's start to the end of its page indices.
void FlashInferAttention::stage(Slot& slot, cudaStream_t stream) {
  const PageTable& t = slot.table;
  const auto put = [](const std::vector<int32_t>& v, int32_t* dst) {
    std::memcpy(dst, v.data(), v.size() * sizeof(int32_t));
  };
  put(t.q_indptr, slot.host.q_indptr);
  put(t.kv_indptr, slot.host.kv_indptr);
  put(t.last_page_len, slot.host.last_page_len);
  put(t.indices, slot.host.indices);
  const std::size_t ints =
      static_cast<std::size_t>(slot.host.indices - slot.host.q_indptr) + t.indices.size();
  check(cudaMemcpyAsync(slot.device.q_indptr, slot.host.q_indptr, ints * sizeof(int32_t),
                        cudaMemcpyHostToDevice, stream),
        "attention plan: page table upload");
}

void FlashInferAttention::schedule(Slot& slot, cudaStream_t stream) {
  PageTable& t = slot.table;
  const std::string what = std::string("plan ") + kernel_name(slot.kernel);
  switch (slot.kernel) {
    case Kernel::kFa2Prefill:
    case Kernel::kTensorCoreDecode:
      schedule_fa2(slot, stream);
      return;
    case Kernel::kCudaCoreDecode:
      guarded(what.c_str(), slot.name, [&] {
        return with_head_dim(config_.head_dim, [&](auto hd) {
          return fa2::decode_plan<decltype(hd)::value>(
              float_ws_.get(), float_ws_.bytes(), slot.int_ws.get(), slot.int_pinned.get(),
              slot.int_ws.bytes(), slot.decode, t.kv_indptr.data(),
              static_cast<uint32_t>(t.num_requests()), static_cast<uint32_t>(config_.n_head),
              static_cast<uint32_t>(group_), static_cast<uint32_t>(config_.block_size), slot.graph,
              stream);
        });
      });
      return;
    case Kernel::kFa3Prefill: {
      const fa3::Shape shape{config_.n_head, config_.n_head_kv, config_.head_dim,
                             config_.block_size};
      guarded(what.c_str(), slot.name, [&] {
        return fa3::plan(shape, slot.int_ws.get(), slot.int_pinned.get(), slot.int_ws.bytes(),
                         t.q_indptr.data(), t.kv_indptr.data(), t.kv_len.data(), t.num_requests(),
                         t.num_rows(), slot.fa3, stream);
      });
      if (slot.fa3.same_schedule_for_all_heads)
        fail(what + " (" + slot.name + "): one schedule for all heads (not instantiated)");
      return;
    }
    case Kernel::kNone:
      break;
  }
}

void FlashInferAttention::schedule_fa2(Slot& slot, cudaStream_t stream) {
  PageTable& t = slot.table;
  // A graph replays tensor-core decode with one row per request: FlashInfer then sizes its tiles
  // for exactly that (uniform_q_len) instead of the ragged worst case.
  const int64_t uniform_rows = slot.graph && slot.kernel == Kernel::kTensorCoreDecode ? 1 : 0;
  const std::string what = std::string("plan ") + kernel_name(slot.kernel);
  guarded(what.c_str(), slot.name, [&] {
    return flashinfer::PrefillPlan<int32_t>(
        float_ws_.get(), float_ws_.bytes(), slot.int_ws.get(), slot.int_pinned.get(),
        slot.int_ws.bytes(), slot.prefill, t.q_indptr.data(), t.kv_indptr.data(),
        static_cast<uint32_t>(t.num_rows()), static_cast<uint32_t>(t.num_requests()),
        static_cast<uint32_t>(config_.n_head), static_cast<uint32_t>(config_.n_head_kv),
        static_cast<uint32_t>(config_.head_dim), static_cast<uint32_t>(config_.head_dim),
        static_cast<uint32_t>(config_.block_size), slot.graph, /*sizeof_dtype_o=*/2,
        slot.window_left, /*fixed_split_size=*/-1, /*disable_split_kv=*/false,
        /*num_colocated_ctas=*/0, uniform_rows, stream, /*kv_dtype_bytes=*/2);
  });
  const int64_t tile = slot.prefill.cta_tile_q;
  if (!fa2::instantiated_tile(static_cast<uint32_t>(tile)))
    fail(what + " (" + slot.name + "): cta_tile_q " + std::to_string(tile) +
         " is not instantiated");
}

void FlashInferAttention::describe_plan() {
  const auto slot_text = [](const Slot& s) {
    std::string text = kernel_name(s.kernel);
    if (s.kernel == Kernel::kFa2Prefill || s.kernel == Kernel::kTensorCoreDecode)
      text +=
          " (cta " + std::to_string(s.prefill.cta_tile_q) + (s.prefill.split_kv ? ", split)" : ")");
    if (s.kernel == Kernel::kCudaCoreDecode && s.decode.split_kv) text += " (split)";
    if (s.graph) text += " for a graph";
    return text;
  };
  const auto cascade_text = [&](SlotId prefix, SlotId suffix, const std::string& what) {
    return "cascade (" + std::to_string(groups_.num_groups()) + " groups, " + what + "): prefix " +
           slot_text(slots_[prefix]) + ", suffix " + slot_text(slots_[suffix]);
  };
  if (cascade_)
    planned_ = "full: " +
               cascade_text(kPrefix, kSuffix, std::to_string(groups_.saved_pages) + " pages saved");
  else
    planned_ = "full: " + slot_text(slots_[kFull]);
  if (windowed_cascade_)
    planned_ +=
        "; windowed: " + cascade_text(kWindowPrefix, kWindowSuffix,
                                      std::to_string(window_cascade_.common) + " common pages, " +
                                          std::to_string(window_cascade_.saved_pages) +
                                          " pages saved, suffix window_left " +
                                          std::to_string(window_cascade_.window_left));
  else if (config_.window > 0)
    planned_ += "; windowed: " + slot_text(slots_[kWindowed]);
}

void FlashInferAttention::check_layer(const LayerIo& io, const void* out, int32_t window) const {
  if (!planned_once_) fail("run() before a successful plan()");
  if (window != 0 && window != config_.window)
    fail("run: window " + std::to_string(window) + ", but the backend was planned for " +
         (config_.window > 0 ? "window " + std::to_string(config_.window) : "no window"));
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (!aligned(io.q) || !aligned(io.k_cache) || !aligned(io.v_cache) || !aligned(out))
    fail("run: q, the caches and out must be 16-byte aligned");
  const int64_t q_width = int64_t{config_.n_head} * config_.head_dim;
  if (io.q_row_stride % 8 != 0 || io.q_row_stride < q_width || io.q_row_stride > INT32_MAX)
    fail("run: q row stride " + std::to_string(io.q_row_stride) + " (a multiple of 8, at least " +
         std::to_string(q_width) + ")");
}

void FlashInferAttention::run(const __nv_bfloat16* q, int64_t q_row_stride,
                              const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                              int32_t window, __nv_bfloat16* out, cudaStream_t stream) {
  const LayerIo io{q, q_row_stride, k_cache, v_cache};
  check_layer(io, out, window);
  if (window > 0 && windowed_cascade_)
    run_cascade(kWindowPrefix, kWindowSuffix, io, out, stream);
  else if (window > 0)
    launch(slots_[kWindowed], io, out, nullptr, stream);
  else if (cascade_)
    run_cascade(kPrefix, kSuffix, io, out, stream);
  else
    launch(slots_[kFull], io, out, nullptr, stream);
}

// Shared prefixes once per group, each sequence's own pages, then the two partial results merged
// by their log-sum-exps.
void FlashInferAttention::run_cascade(SlotId prefix, SlotId suffix, const LayerIo& io, DType* out,
                                      cudaStream_t stream) {
  const std::size_t rows = static_cast<std::size_t>(config_.max_seqs) * config_.n_head;
  DType* o_prefix = static_cast<DType*>(cascade_out_.get());
  DType* o_suffix = o_prefix + rows * config_.head_dim;
  float* lse_prefix = static_cast<float*>(cascade_lse_.get());
  float* lse_suffix = lse_prefix + rows;
  launch(slots_[prefix], io, o_prefix, lse_prefix, stream);
  launch(slots_[suffix], io, o_suffix, lse_suffix, stream);
  const uint32_t n = static_cast<uint32_t>(slots_[suffix].table.num_rows());
  guarded("MergeState", "cascade", [&] {
    return flashinfer::MergeState(
        o_prefix, lse_prefix, o_suffix, lse_suffix, out, static_cast<float*>(nullptr), n,
        static_cast<uint32_t>(config_.n_head), static_cast<uint32_t>(config_.head_dim), stream);
  });
}

void FlashInferAttention::launch(const Slot& slot, const LayerIo& io, DType* out, float* lse,
                                 cudaStream_t stream) {
  switch (slot.kernel) {
    case Kernel::kFa2Prefill:
    case Kernel::kTensorCoreDecode:
      launch_fa2(slot, io, out, lse, stream);
      return;
    case Kernel::kCudaCoreDecode:
      launch_decode(slot, io, out, lse, stream);
      return;
    case Kernel::kFa3Prefill:
      launch_fa3(slot, io, out, stream);
      return;
    case Kernel::kNone:
      break;
  }
  fail(std::string("run: the ") + slot.name + " launch was not planned");
}

flashinfer::paged_kv_t<DType, int32_t> FlashInferAttention::paged_kv(const Slot& slot,
                                                                     const LayerIo& io) const {
  return flashinfer::paged_kv_t<DType, int32_t>(
      static_cast<uint32_t>(config_.n_head_kv), static_cast<uint32_t>(config_.block_size),
      static_cast<uint32_t>(config_.head_dim), static_cast<uint32_t>(slot.table.num_requests()),
      flashinfer::QKVLayout::kNHD, const_cast<DType*>(io.k_cache), const_cast<DType*>(io.v_cache),
      slot.device.indices, slot.device.kv_indptr, slot.device.last_page_len);
}

void FlashInferAttention::launch_fa2(const Slot& slot, const LayerIo& io, DType* out, float* lse,
                                     cudaStream_t stream) {
  const flashinfer::PrefillPlanInfo& info = slot.prefill;
  void* ws = slot.int_ws.get();
  fa2::PrefillParams p;
  set_layer(p, slot, io, out, lse);
  p.q_indptr = slot.device.q_indptr;
  p.group_size = flashinfer::uint_fastdiv(static_cast<uint32_t>(group_));
  DType* tmp_v = nullptr;  // C++17: no structured bindings captured by the lambdas below
  float* tmp_s = nullptr;
  std::tie(tmp_v, tmp_s) = set_schedule(p, info, ws);
  p.qo_tile_indices = at<int32_t>(ws, info.qo_tile_indices_offset);
  if (info.split_kv) p.merge_indptr = at<int32_t>(ws, info.merge_indptr_offset);
  p.max_total_num_rows = static_cast<uint32_t>(info.total_num_rows);
  if (info.enable_cuda_graph) {
    p.block_valid_mask = at<bool>(ws, info.block_valid_mask_offset);
    p.total_num_rows = at<uint32_t>(ws, info.total_num_rows_offset);
  }
  const auto tile = static_cast<uint32_t>(info.cta_tile_q);
  guarded(kernel_name(slot.kernel), slot.name, [&] {
    return with_head_dim(config_.head_dim, [&](auto hd) {
      constexpr uint32_t kHeadDim = decltype(hd)::value;
      return slot.mask == MaskMode::kNone
                 ? fa2::prefill<kHeadDim, MaskMode::kNone>(p, tile, tmp_v, tmp_s, stream)
                 : fa2::prefill<kHeadDim, MaskMode::kCausal>(p, tile, tmp_v, tmp_s, stream);
    });
  });
}

void FlashInferAttention::launch_decode(const Slot& slot, const LayerIo& io, DType* out, float* lse,
                                        cudaStream_t stream) {
  const flashinfer::DecodePlanInfo& info = slot.decode;
  void* ws = slot.int_ws.get();
  fa2::DecodeParams p;
  set_layer(p, slot, io, out, lse);
  p.q_rope_offset = nullptr;
  DType* tmp_v = nullptr;  // C++17: no structured bindings captured by the lambdas below
  float* tmp_s = nullptr;
  std::tie(tmp_v, tmp_s) = set_schedule(p, info, ws);
  if (info.split_kv && info.enable_cuda_graph)
    p.block_valid_mask = at<bool>(ws, info.block_valid_mask_offset);
  guarded("cuda-core decode", slot.name, [&] {
    return with_head_dim(config_.head_dim, [&](auto hd) {
      return fa2::decode<decltype(hd)::value>(p, tmp_v, tmp_s, stream);
    });
  });
}

void FlashInferAttention::launch_fa3(const Slot& slot, const LayerIo& io, DType* out,
                                     cudaStream_t stream) {
#ifdef FLOWRANK_HAVE_FA3
  fa3::Launch a;
  a.shape = {config_.n_head, config_.n_head_kv, config_.head_dim, config_.block_size};
  a.q = io.q;
  a.q_row_stride = io.q_row_stride;
  a.k_cache = io.k_cache;
  a.v_cache = io.v_cache;
  a.out = out;
  a.kv_indices = slot.device.indices;
  a.total_rows = slot.table.num_rows();
  a.window_left = slot.window_left >= 0 ? slot.window_left : fa3::kFullWindow;
  a.scale = config_.scale;
  a.int_ws = slot.int_ws.get();
  a.plan = slot.fa3;
  guarded("fa3 prefill", slot.name, [&] {
    return config_.head_dim == 64 ? fa3::prefill<64>(a, stream) : fa3::prefill<128>(a, stream);
  });
#else
  (void)slot;
  (void)io;
  (void)out;
  (void)stream;
  fail("fa3 prefill was not built");
#endif
}

}  // namespace

std::unique_ptr<AttentionBackend> make_attention_backend(const AttentionConfig& config) {
  return std::make_unique<FlashInferAttention>(config);
}

}  // namespace flowrank::engine::cuda
