#pragma once
// The page tables the attention kernels read, derived on the host from one step's tables: the
// step's own (padded with dummy requests for a CUDA graph), the windowed layers' (without the
// pages outside every query's window) and the two of shared-prefix (cascade) decode, for the
// full-attention layers and for the windowed ones. Pure host code and C++17 (the FlashInfer units
// include it); tested without a GPU.
#include <cstdint>
#include <vector>

namespace flowrank::engine::cuda {

// One step's host tables, as AttentionBatch holds them (StepBatch's CSR arrays).
struct StepTables {
  int32_t num_seqs = 0;
  int32_t block_size = 0;
  const int32_t* query_start = nullptr;  // num_seqs + 1
  const int32_t* seq_lens = nullptr;     // num_seqs
  const int32_t* page_start = nullptr;   // num_seqs + 1
  const int32_t* pages = nullptr;        // page_start[num_seqs]

  int32_t query_len(int32_t s) const { return query_start[s + 1] - query_start[s]; }
  int32_t page_count(int32_t s) const { return page_start[s + 1] - page_start[s]; }
};

// The requests of one kernel launch in FlashInfer's CSR form (qo_indptr, kv page indptr, page
// indices, last page length) plus each request's KV length in tokens.
struct PageTable {
  std::vector<int32_t> q_indptr;
  std::vector<int32_t> kv_indptr;
  std::vector<int32_t> indices;
  std::vector<int32_t> last_page_len;
  std::vector<int32_t> kv_len;

  int32_t num_requests() const { return static_cast<int32_t>(kv_len.size()); }
  int32_t num_rows() const { return q_indptr.empty() ? 0 : q_indptr.back(); }
  void clear();
  // Appends a request of `rows` query rows over pages[0, n) holding kv_len tokens.
  void add(int32_t rows, const int32_t* pages, int32_t n, int32_t kv_len, int32_t block_size);
  // As add, over pages a[0, na) followed by b[0, nb) (every page but the last full).
  void add(int32_t rows, const int32_t* a, int32_t na, const int32_t* b, int32_t nb, int32_t kv_len,
           int32_t block_size);
};

// Throws RunError naming the first sequence whose tables disagree (no query rows, more rows than
// tokens, a page count that does not cover its tokens exactly).
void check_step(const StepTables& step);

// The step's own table. pad_to > num_seqs appends requests of one row over one slot of the step's
// first page (CUDA-graph padding).
void step_table(const StepTables& step, int32_t pad_to, PageTable& out);

// As step_table, each request without the leading pages that hold no position its queries attend
// to under a window of `window` positions (the query's own included). KV positions then count from
// the first kept page, which keeps the kernels' causal and window masks right: they are relative
// to the end of the request's KV.
void window_table(const StepTables& step, int32_t window, int32_t pad_to, PageTable& out);

// Shared-prefix (cascade) decode: runs of consecutive sequences whose page lists begin with the
// same pages (the prefix cache gives shared prompt blocks the same ids). A group of one is a
// sequence of its own.
struct CascadeGroups {
  std::vector<int32_t> first;   // group g holds sequences [first[g], first[g + 1])
  std::vector<int32_t> shared;  // group g's prefix pages, attended once for all its rows
  int64_t saved_pages = 0;      // page reads saved per layer over plain decode

  int32_t num_groups() const { return static_cast<int32_t>(shared.size()); }
};

// Sequences join a group while they share at least kCascadeMinSharedPages leading pages with its
// first and the pages saved do not shrink; the cascade is taken when it saves at least
// kCascadeMinSavedPages page reads and a quarter of the step's. Every sequence needs two pages
// (so that neither part is empty).
constexpr int32_t kCascadeMinSharedPages = 4;
constexpr int64_t kCascadeMinSavedPages = 128;

// Groups a decode step (one query row per sequence); false when the full-attention cascade does
// not pay. `out` holds the groups whenever every sequence has one query row and two pages, also
// when false is returned (the windowed layers decide on their own: find_window_cascade); else it
// is empty. Only adjacent sequences are grouped (see AttentionBatch in attention.cuh).
bool find_cascade_groups(const StepTables& step, CascadeGroups& out);

// The prefix launch (one request per group: its rows over the shared pages, all full) and the
// suffix launch (one request per sequence over the pages after its group's prefix, never empty).
void cascade_tables(const StepTables& step, const CascadeGroups& groups, PageTable& prefix,
                    PageTable& suffix);

// Shared-prefix decode for the windowed layers (window w, block size bs), over the same groups.
// Sequence r (length L_r, query at L_r - 1) attends positions [max(0, L_r - w), L_r); group g's
// S_g shared pages hold positions [0, S_g * bs), and each of its sequences has tokens after them.
// With one `common` page count D for the step, group g's prefix request is its shared pages
// [S_g - P_g, S_g), P_g = min(D, S_g), read once for all its rows (no mask); sequence r's suffix
// request is its pages [f_r, S_g - P_g) (f_r = max(0, L_r - w) / bs, the page where its window
// starts) followed by its pages [S_g, end), under a causal window of W' = w - D * bs tokens
// (window_left = W' - 1), which the kernel counts back from the end of the request's KV.
// Exact when every sequence satisfies D <= S_g + floor((w - L_r) / bs):
//  - L_r > w: P_g = D (D <= S_g), the prefix lies in the window ((S_g - D) * bs >= L_r - w), and
//    the suffix's last W' tokens are exactly the window's tokens outside the prefix
//    (L_r - (L_r - w) - D * bs of them), the partial page f_r cut by the mask;
//  - L_r <= w: the suffix holds L_r - P_g * bs tokens, all in the window, and at most W' of them
//    (P_g = D, or P_g = S_g < D with L_r - S_g * bs <= w - D * bs).
// So D = min over sequences of S_g + floor((w - L_r) / bs), and W' >= 1 follows from every
// sequence having a token after its group's shared pages.
struct WindowCascade {
  int32_t window = 0;
  int32_t common = 0;        // D
  int32_t window_left = -1;  // the suffix launch's: w - 1 - D * bs
  int64_t saved_pages = 0;   // page reads saved per windowed layer over the plain windowed table
};

// The windowed cascade for a step grouped by find_cascade_groups; false when there are no groups,
// D < kCascadeMinSharedPages, or it saves fewer than kCascadeMinSavedPages page reads or a
// quarter of the plain windowed table's.
bool find_window_cascade(const StepTables& step, const CascadeGroups& groups, int32_t window,
                         WindowCascade& out);

// The windowed prefix launch (one request per group over its P_g pages, all full) and suffix
// launch (one request per sequence, never empty), as described at WindowCascade.
void window_cascade_tables(const StepTables& step, const CascadeGroups& groups,
                           const WindowCascade& plan, PageTable& prefix, PageTable& suffix);

}  // namespace flowrank::engine::cuda
