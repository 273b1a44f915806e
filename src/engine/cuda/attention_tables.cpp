#include "attention_tables.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "flowrank/common/error.hpp"

namespace flowrank::engine::cuda {

void PageTable::clear() {
  q_indptr.assign(1, 0);
  kv_indptr.assign(1, 0);
  indices.clear();
  last_page_len.clear();
  kv_len.clear();
}

void PageTable::add(int32_t rows, const int32_t* pages, int32_t n, int32_t kv_tokens,
                    int32_t block_size) {
  add(rows, pages, n, nullptr, 0, kv_tokens, block_size);
}

void PageTable::add(int32_t rows, const int32_t* a, int32_t na, const int32_t* b, int32_t nb,
                    int32_t kv_tokens, int32_t block_size) {
  q_indptr.push_back(q_indptr.back() + rows);
  indices.insert(indices.end(), a, a + na);
  indices.insert(indices.end(), b, b + nb);
  kv_indptr.push_back(static_cast<int32_t>(indices.size()));
  last_page_len.push_back(kv_tokens - (na + nb - 1) * block_size);
  kv_len.push_back(kv_tokens);
}

void check_step(const StepTables& step) {
  const auto fail = [](int32_t s, const std::string& what) {
    throw RunError("attention plan: sequence " + std::to_string(s) + ": " + what);
  };
  if (step.num_seqs <= 0) throw RunError("attention plan: a step without sequences");
  if (step.block_size <= 0) throw RunError("attention plan: block size must be positive");
  if (step.query_start[0] != 0 || step.page_start[0] != 0)
    throw RunError("attention plan: query_start and page_start must begin at 0");
  for (int32_t s = 0; s < step.num_seqs; ++s) {
    const int32_t rows = step.query_len(s), len = step.seq_lens[s];
    if (rows <= 0) fail(s, "no query rows");
    if (rows > len)
      fail(s, std::to_string(rows) + " query rows but " + std::to_string(len) + " tokens");
    const int32_t want = (len + step.block_size - 1) / step.block_size;
    if (step.page_count(s) != want)
      fail(s, std::to_string(step.page_count(s)) + " pages for " + std::to_string(len) +
                  " tokens (" + std::to_string(want) + " expected)");
  }
}

namespace {

// One-row requests over one slot of the step's first page until the table has pad_to requests.
void pad(const StepTables& step, int32_t pad_to, PageTable& out) {
  while (out.num_requests() < pad_to) out.add(1, step.pages, 1, 1, step.block_size);
}

// Sequence s's leading pages that hold no position its first query attends to under `window`.
int32_t pages_before_window(const StepTables& step, int32_t s, int32_t window) {
  const int32_t first_query = step.seq_lens[s] - step.query_len(s);
  return std::max(0, first_query - (window - 1)) / step.block_size;
}

}  // namespace

void step_table(const StepTables& step, int32_t pad_to, PageTable& out) {
  out.clear();
  for (int32_t s = 0; s < step.num_seqs; ++s)
    out.add(step.query_len(s), step.pages + step.page_start[s], step.page_count(s),
            step.seq_lens[s], step.block_size);
  pad(step, pad_to, out);
}

void window_table(const StepTables& step, int32_t window, int32_t pad_to, PageTable& out) {
  out.clear();
  for (int32_t s = 0; s < step.num_seqs; ++s) {
    const int32_t skip = pages_before_window(step, s, window);
    out.add(step.query_len(s), step.pages + step.page_start[s] + skip, step.page_count(s) - skip,
            step.seq_lens[s] - skip * step.block_size, step.block_size);
  }
  pad(step, pad_to, out);
}

namespace {

// Leading pages sequences a and b share.
int32_t common_pages(const StepTables& step, int32_t a, int32_t b) {
  const int32_t* pa = step.pages + step.page_start[a];
  const int32_t* pb = step.pages + step.page_start[b];
  const int32_t n = std::min(step.page_count(a), step.page_count(b));
  int32_t i = 0;
  while (i < n && pa[i] == pb[i]) ++i;
  return i;
}

// The end of the group that starts at sequence a, and its shared pages (a group of one keeps all
// but its last page in the prefix launch). Sequence `end` joins while it shares enough leading
// pages with a and the group's saving, (members - 1) * shared, does not shrink.
int32_t grow_group(const StepTables& step, int32_t a, int32_t& shared) {
  shared = step.page_count(a) - 1;
  int32_t end = a + 1;
  for (; end < step.num_seqs; ++end) {
    const int32_t s = std::min({shared, common_pages(step, a, end), step.page_count(end) - 1});
    const int64_t members = end - a;
    if (s < kCascadeMinSharedPages || members * s < (members - 1) * shared) break;
    shared = s;
  }
  return end;
}

}  // namespace

bool find_cascade_groups(const StepTables& step, CascadeGroups& out) {
  out.first.clear();
  out.shared.clear();
  out.saved_pages = 0;
  int64_t total_pages = 0;
  for (int32_t s = 0; s < step.num_seqs; ++s) {
    if (step.query_len(s) != 1 || step.page_count(s) < 2) return false;
    total_pages += step.page_count(s);
  }
  for (int32_t a = 0; a < step.num_seqs;) {
    int32_t shared = 0;
    const int32_t end = grow_group(step, a, shared);
    out.first.push_back(a);
    out.shared.push_back(shared);
    out.saved_pages += int64_t{end - a - 1} * shared;
    a = end;
  }
  out.first.push_back(step.num_seqs);
  return out.saved_pages >= kCascadeMinSavedPages && 4 * out.saved_pages >= total_pages;
}

void cascade_tables(const StepTables& step, const CascadeGroups& groups, PageTable& prefix,
                    PageTable& suffix) {
  prefix.clear();
  suffix.clear();
  const int32_t bs = step.block_size;
  for (int32_t g = 0; g < groups.num_groups(); ++g) {
    const int32_t a = groups.first[g], shared = groups.shared[g];
    prefix.add(groups.first[g + 1] - a, step.pages + step.page_start[a], shared, shared * bs, bs);
    for (int32_t s = a; s < groups.first[g + 1]; ++s)
      suffix.add(1, step.pages + step.page_start[s] + shared, step.page_count(s) - shared,
                 step.seq_lens[s] - shared * bs, bs);
  }
}

namespace {

// floor(a / b) for b > 0 and any sign of a.
int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

}  // namespace

bool find_window_cascade(const StepTables& step, const CascadeGroups& groups, int32_t window,
                         WindowCascade& out) {
  out = WindowCascade{};
  out.window = window;
  if (window <= 0 || groups.num_groups() == 0) return false;
  const int32_t bs = step.block_size;
  int64_t common = std::numeric_limits<int64_t>::max(), window_pages = 0;
  for (int32_t g = 0; g < groups.num_groups(); ++g)
    for (int32_t s = groups.first[g]; s < groups.first[g + 1]; ++s) {
      common = std::min(common, groups.shared[g] + floor_div(window - step.seq_lens[s], bs));
      window_pages += step.page_count(s) - pages_before_window(step, s, window);
    }
  // W' >= 1 holds by construction (each sequence has a token after its shared pages); checked
  // all the same, as the kernels would read a negative window_left as no window.
  if (common < kCascadeMinSharedPages || window - 1 - common * bs < 0) return false;
  for (int32_t g = 0; g < groups.num_groups(); ++g)
    out.saved_pages += int64_t{groups.first[g + 1] - groups.first[g] - 1} *
                       std::min<int64_t>(common, groups.shared[g]);
  out.common = static_cast<int32_t>(common);
  out.window_left = static_cast<int32_t>(window - 1 - common * bs);
  return out.saved_pages >= kCascadeMinSavedPages && 4 * out.saved_pages >= window_pages;
}

void window_cascade_tables(const StepTables& step, const CascadeGroups& groups,
                           const WindowCascade& plan, PageTable& prefix, PageTable& suffix) {
  prefix.clear();
  suffix.clear();
  const int32_t bs = step.block_size;
  for (int32_t g = 0; g < groups.num_groups(); ++g) {
    const int32_t a = groups.first[g], shared = groups.shared[g];
    const int32_t common = std::min(plan.common, shared);
    const int32_t before = shared - common;  // the prefix request starts at this page
    prefix.add(groups.first[g + 1] - a, step.pages + step.page_start[a] + before, common,
               common * bs, bs);
    for (int32_t s = a; s < groups.first[g + 1]; ++s) {
      const int32_t* pages = step.pages + step.page_start[s];
      const int32_t first = pages_before_window(step, s, plan.window);
      suffix.add(1, pages + first, before - first, pages + shared, step.page_count(s) - shared,
                 (before - first) * bs + step.seq_lens[s] - shared * bs, bs);
    }
  }
}

}  // namespace flowrank::engine::cuda
