#pragma once
// Paged attention behind one interface. The runner writes each step's new K/V into the cache
// itself (store_kv), then per layer asks the backend for attn = softmax(q k^T * scale) v over each
// sequence's cached positions: causal for the step's new tokens, optionally limited to a window.
//
// KV cache of one layer, as FlashInfer's NHD paged layout: block b holds block_size slots of
// n_head_kv * head_dim bf16 values, at k_cache + b * block_size * n_head_kv * head_dim (same for
// v_cache). Queries: row r (the step's token r) holds n_head heads of head_dim values starting at
// q + r * q_row_stride (the q part of the qkv buffer); out row r is n_head * head_dim contiguous.
//
// plan() runs once per step on the host (FlashInfer's scheduling: which CTA takes which pages),
// writing only into buffers the backend owns at fixed addresses; run() only launches kernels
// that read those buffers. So a run() captured into a CUDA graph replays correctly after a later
// plan() for a batch of the same shape class (see AttentionBatch::graph_seqs and graph_ready()).
//
// This header is the whole interface and stays C++17 (the FlashInfer units are compiled as C++17).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace flowrank::engine::cuda {

struct AttentionConfig {
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;     // 64 and 128 are instantiated
  int32_t block_size = 16;  // a run-time value for every kernel (16 and 32 are tested)
  int32_t max_tokens = 0;   // most query rows in one step
  int32_t max_seqs = 0;     // most sequences in one step
  int32_t max_pages = 0;    // most pages listed in one step (sum over its sequences)
  float scale = 0.0f;       // usually 1 / sqrt(head_dim)
  // Shared-prefix (cascade) decode attention when sequences share leading pages, for the full and
  // the windowed layers (each takes it when it pays; see find_cascade_groups and
  // find_window_cascade in attention_tables.hpp). Exact either way, up to rounding.
  bool cascade = true;
  int device = 0;
  // The windowed layers' window (0: the model has none). run() takes window 0 or this value; the
  // windowed layers get their own plan (pages outside every query's window are not read).
  int32_t window = 0;
  // Hopper: FlashInfer's FA3 prefill where it was built (sm_90a); false: FA2 on every GPU (for
  // comparisons and tests).
  bool fa3 = true;
};

// One step's metadata. Host arrays are read by plan(). The device arrays (same contents, owned by
// the runner) are optional: the FlashInfer backend stages its own copies at fixed addresses,
// because the tables its kernels read differ from the step's (graph padding, windowed tables
// without the pages outside the window, the cascade's prefix and suffix tables).
//
// Sequence order matters to the cascade: only ADJACENT sequences whose page lists begin with the
// same block ids form a group (one pass, no sorting in plan()). The engine should therefore list
// a decode step's sequences so that sharers are adjacent, e.g. ordered by their page lists
// compared lexicographically (the prefix cache gives shared blocks the same ids), and may keep
// that order across steps. Order changes nothing else: each row's result is its own.
struct AttentionBatch {
  int32_t num_seqs = 0;
  int32_t num_tokens = 0;
  bool decode_only = false;  // every sequence has exactly one query row
  // > 0 (decode steps only): the step will be replayed from a CUDA graph captured for this many
  // sequences; plan() prepares a launch of that shape, the real sequences first, then padding
  // requests of one query row each over one KV slot. q and out must therefore have room for
  // graph_seqs rows (the padding rows' outputs are written and meaningless). Unless graph_ready()
  // says so after plan(), the step must be launched directly instead (a step where the full or
  // the windowed layers take the cascade).
  int32_t graph_seqs = 0;
  // num_seqs + 1 / num_seqs / num_seqs + 1 / page_start[num_seqs] entries (StepBatch's arrays).
  const int32_t* query_start = nullptr;
  const int32_t* seq_lens = nullptr;
  const int32_t* page_start = nullptr;
  const int32_t* pages = nullptr;
  const int32_t* d_query_start = nullptr;
  const int32_t* d_seq_lens = nullptr;
  const int32_t* d_page_start = nullptr;
  const int32_t* d_pages = nullptr;
};

class AttentionBackend {
 public:
  virtual ~AttentionBackend() = default;
  // Host-side planning for the step; called before the step's first run(). Copies its tables and
  // schedule to the device on `stream` (from pinned buffers: it first waits until the previous
  // plan's copies have left them). Throws RunError for a batch beyond the configured maxima or
  // with inconsistent tables.
  virtual void plan(const AttentionBatch& batch, cudaStream_t stream) = 0;
  // One layer: window = 0 for full causal attention, else only the last `window` positions
  // (the query's own included) are attended; window must then be AttentionConfig::window.
  // q, the caches and out must be 16-byte aligned and q_row_stride a multiple of 8.
  virtual void run(const __nv_bfloat16* q, int64_t q_row_stride, const __nv_bfloat16* k_cache,
                   const __nv_bfloat16* v_cache, int32_t window, __nv_bfloat16* out,
                   cudaStream_t stream) = 0;
  // Device memory the backend holds (workspaces), for the runner's memory accounting.
  virtual std::size_t device_bytes() const = 0;
  // "flashinfer fa3 prefill, tensor-core decode, cascade" -- for logs and the report.
  virtual std::string describe() const = 0;
  // Whether the last plan() prepared the graph_seqs launch shape, so a graph captured for it may
  // be replayed; false when graph_seqs was 0 or either layer kind took the cascade path.
  virtual bool graph_ready() const = 0;
  // The kernels the last plan() chose, e.g. "full: cascade (4 groups, 7200 pages saved): prefix
  // fa2 prefill (cta 64), suffix tensor-core decode (cta 16); windowed: cascade (4 groups, 240
  // common pages, 5760 pages saved, suffix window_left 255): prefix fa2 prefill (cta 64), suffix
  // tensor-core decode (cta 16)" or "...; windowed: tensor-core decode (cta 16)" -- for logs and
  // tests.
  virtual std::string planned() const = 0;
};

// Throws RunError naming what is unsupported (e.g. a head size that was not instantiated).
std::unique_ptr<AttentionBackend> make_attention_backend(const AttentionConfig& config);

}  // namespace flowrank::engine::cuda
