// The sampling rule of sampler.hpp on the GPU, token for token the CPU Sampler's: the same integer
// weights (sampling_rule.hpp), and instead of a sort, radix selection over each candidate's
// 52-bit rank key (weight << 20 | (2^20 - 1 - id): larger ranks first). Three launches:
//   1. argmax: one CTA per row, the greedy token (also the fallback of every rule);
//   2. weights: the integer weight of every token of every sampled row, spread over all SMs,
//      into the workspace (4 bytes a token);
//   3. select: one CTA per row runs up to three selections over the keys in scope (top-k by
//      count, top-p by weight, the draw by weight). Each finds the highest key whose cumulative
//      count or weight, from the top rank down, reaches a threshold: 7 passes of 8 bits, each a
//      256-bin histogram (counts and weight sums) of the keys that match the digits found so far;
//      a warp's suffix scan picks the bin. Once the matching keys fit in shared memory (4096) a
//      pass copies them there and the later passes read only those. Integer atomics in shared
//      memory keep every sum exact, so the result does not depend on the order of the adds.
#include <algorithm>
#include <string>

#include "cuda_check.cuh"
#include "device_rows.cuh"
#include "flowrank/engine/sampling_rule.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

using u64 = unsigned long long;

constexpr int kRowThreads = 512;
constexpr int kWeightThreads = 256;
constexpr int kIdBits = 20;
constexpr int32_t kMaxVocab = 1 << kIdBits;
constexpr u64 kMinKey = u64{1} << kIdBits;  // the smallest key of a token that weighs anything
constexpr int kBins = 256;
constexpr int kTopShift = 48;  // digits of the 52-bit key at shifts 48, 40, ..., 0
constexpr int kGatherCap = 4096;
constexpr u64 kUnknown = ~u64{0};

// Workspace: the greedy token of each row, then each row's weights (a row padded to a multiple
// of 4 tokens, so it can be read 16 bytes at a time).
int64_t weights_stride(int32_t n_vocab) {
  return (static_cast<int64_t>(n_vocab) + 3) / 4 * 4;
}
std::size_t weights_offset(int32_t n_rows) {
  return (static_cast<std::size_t>(n_rows) * sizeof(int32_t) + 255) / 256 * 256;
}

__device__ bool greedy_row(const DeviceSampleRow& row) {
  return row.temperature <= 0.0f || row.top_k == 1;
}

// ---- 1. argmax --------------------------------------------------------------------------------

// The largest (order key of the logit, complement of the id): the lowest id of the largest
// value, NaN never (0 when all are NaN), as Sampler::argmax.
__global__ void argmax_kernel(const float* logits, int32_t n_vocab, int32_t* best) {
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * n_vocab;
  u64 key = 0;
  for (int32_t i = threadIdx.x; i < n_vocab; i += blockDim.x) {
    const u64 k = (static_cast<u64>(sampling::logit_order_key(row[i])) << 32) |
                  (0xFFFFFFFFu - static_cast<uint32_t>(i));
    key = k > key ? k : key;
  }
  key = block_reduce(key, MaxOp{});
  if (threadIdx.x == 0)
    best[blockIdx.x] = static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key));
}

// ---- 2. weights -------------------------------------------------------------------------------

// grid (token groups of 4 * kWeightThreads, rows). Rows sampled greedily are skipped: select
// never reads their weights.
__global__ void weights_kernel(const float* logits, int32_t n_vocab, int64_t stride,
                               const DeviceSampleRow* rows, const int32_t* best,
                               uint32_t* weights) {
  const int64_t r = blockIdx.y;
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  if (i >= stride) return;
  const DeviceSampleRow row = rows[r];
  const float* lr = logits + r * n_vocab;
  const float max_logit = lr[best[r]];
  if (greedy_row(row) || !isfinite(max_logit)) return;
  const double inv_t = sampling::inverse_temperature(row.temperature);
  uint32_t q[4];
#pragma unroll
  for (int k = 0; k < 4; ++k)
    q[k] = i + k < n_vocab ? sampling::token_weight(lr[i + k], max_logit, inv_t) : 0;
  *reinterpret_cast<uint4*>(weights + r * stride + i) = make_uint4(q[0], q[1], q[2], q[3]);
}

// ---- 3. select --------------------------------------------------------------------------------

enum class Selection { kTopK, kTopP, kDraw };

struct SelectShared {
  u64 weight[kBins];
  unsigned count[kBins];
  u64 keys[kGatherCap];
  unsigned n_keys;
  // The chooser's answer for the pass (see choose_bin).
  int bin;
  int skip;
  u64 theta, bin_count, above_count, above_weight, total_count;
};

__device__ u64 rank_key(uint32_t q, int64_t id) {
  return (static_cast<u64>(q) << kIdBits) | static_cast<u64>(kMaxVocab - 1 - id);
}

// Consecutive keys of a thread often share a bin (flat rows: all of them), so a thread adds its
// run of equal bins with one pair of atomics.
struct BinRun {
  int bin = -1;
  unsigned count = 0;
  u64 weight = 0;

  __device__ void add(int b, u64 q, SelectShared& s) {
    if (b != bin) {
      flush(s);
      bin = b;
    }
    ++count;
    weight += q;
  }
  __device__ void flush(SelectShared& s) {
    if (count == 0) return;
    atomicAdd(&s.count[bin], count);
    atomicAdd(&s.weight[bin], weight);
    count = 0;
    weight = 0;
  }
};

// Where one pass reads its keys and what it keeps of them.
struct Pass {
  u64 lower;   // the scope: keys >= lower
  int shift;   // the digit this pass counts
  u64 prefix;  // the digits above it found so far (none on the first pass)
  bool from_shared;
  bool gather;  // copy the matching keys to shared memory (their count is known to fit)
};

// Histogram of the digit at p.shift over the keys in scope that match p.prefix.
__device__ void histogram_pass(const uint32_t* weights, int64_t stride, const Pass& p,
                               SelectShared& s) {
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) {
    s.weight[b] = 0;
    s.count[b] = 0;
  }
  if (threadIdx.x == 0 && p.gather) s.n_keys = 0;
  __syncthreads();
  BinRun run;
  const auto visit = [&](u64 key) {
    if (key < p.lower) return;
    if (p.shift < kTopShift && (key >> (p.shift + 8)) != p.prefix) return;
    run.add(static_cast<int>((key >> p.shift) & (kBins - 1)), key >> kIdBits, s);
    if (p.gather) s.keys[atomicAdd(&s.n_keys, 1u)] = key;
  };
  if (p.from_shared) {
    const unsigned n = s.n_keys;
    for (unsigned j = threadIdx.x; j < n; j += blockDim.x) visit(s.keys[j]);
  } else {
    const auto* w4 = reinterpret_cast<const uint4*>(weights);
    for (int64_t j = threadIdx.x; j < stride / 4; j += blockDim.x) {
      const uint4 w = w4[j];
      visit(rank_key(w.x, 4 * j));
      visit(rank_key(w.y, 4 * j + 1));
      visit(rank_key(w.z, 4 * j + 2));
      visit(rank_key(w.w, 4 * j + 3));
    }
  }
  run.flush(s);
  __syncthreads();
}

// The selection's threshold from the scope's totals, and whether it keeps the whole scope.
struct Threshold {
  u64 theta;
  bool whole_scope;
};

__device__ Threshold threshold(Selection sel, const DeviceSampleRow& row, u64 u53, u64 count,
                               u64 weight) {
  switch (sel) {
    case Selection::kTopK:
      return {static_cast<u64>(row.top_k), static_cast<u64>(row.top_k) >= count};
    case Selection::kTopP: {
      const u64 t = sampling::top_p_threshold(row.top_p, weight);
      return {t, t >= weight};
    }
    case Selection::kDraw:
      break;
  }
  return {sampling::draw_target(u53, weight) + 1, count == 0};
}

// Warp 0 picks the bin where the cumulative count (top-k) or weight, summed from the top bin
// down and on top of the ranks above the prefix, reaches theta; on the first pass it first sets
// theta from the scope's totals. Every thread reads the answer from `s` after the barrier.
__device__ void choose_bin(Selection sel, const DeviceSampleRow& row, u64 u53, bool first,
                           SelectShared& s) {
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    const int lo = lane * (kBins / 32);
    u64 lc = 0, lw = 0;
    for (int b = lo; b < lo + kBins / 32; ++b) {
      lc += s.count[b];
      lw += s.weight[b];
    }
    u64 theta = first ? 0 : s.theta;
    u64 above_c = first ? 0 : s.above_count;
    u64 above_w = first ? 0 : s.above_weight;
    __syncwarp();          // every lane has read `s` before any lane writes it below
    u64 sc = lc, sw = lw;  // suffix sums: this lane's bins and every bin above them
#pragma unroll
    for (int off = 1; off < 32; off *= 2) {
      const u64 oc = __shfl_down_sync(0xFFFFFFFFu, sc, off);
      const u64 ow = __shfl_down_sync(0xFFFFFFFFu, sw, off);
      if (lane + off < 32) {
        sc += oc;
        sw += ow;
      }
    }
    bool skip = false;
    if (first) {
      const u64 total_c = __shfl_sync(0xFFFFFFFFu, sc, 0);
      const u64 total_w = __shfl_sync(0xFFFFFFFFu, sw, 0);
      const Threshold t = threshold(sel, row, u53, total_c, total_w);
      theta = t.theta;
      skip = t.whole_scope || total_c == 0;
      if (lane == 0) {
        s.theta = theta;
        s.skip = skip;
        s.total_count = total_c;
      }
    }
    if (!skip) {
      const bool by_count = sel == Selection::kTopK;
      const u64 need = theta - (by_count ? above_c : above_w);  // > 0: not reached above
      const unsigned reach = __ballot_sync(0xFFFFFFFFu, (by_count ? sc : sw) >= need);
      // Suffix sums fall with the lane: the last lane that reaches holds the bin.
      const int hit = reach != 0 ? 31 - __clz(static_cast<int>(reach)) : 0;
      if (lane == hit) {
        u64 ec = sc - lc, ew = sw - lw;  // the bins of the lanes above
        int b = lo + kBins / 32 - 1;
        for (; b > lo; --b) {
          if ((by_count ? ec + s.count[b] : ew + s.weight[b]) >= need) break;
          ec += s.count[b];
          ew += s.weight[b];
        }
        s.bin = b;
        s.bin_count = s.count[b];
        s.above_count = above_c + ec;
        s.above_weight = above_w + ew;
      }
    }
  }
  __syncthreads();
}

// What shared memory holds between passes.
struct Gathered {
  bool valid = false;
  bool whole_scope = false;  // every key >= lower (else only those matching a prefix)
  u64 lower = 0;
};

// One selection over the keys >= *lower (*count of them, or kUnknown). Narrows *lower to the key
// found (and *count to the keys from it up), or leaves both when the selection keeps the whole
// scope. Returns false when the scope is empty.
__device__ bool select(Selection sel, const DeviceSampleRow& row, u64 u53, const uint32_t* weights,
                       int64_t stride, u64* lower, u64* count, Gathered* g, SelectShared& s) {
  // Shared keys gathered for a wider scope serve a narrower one; a prefix's do not.
  bool from_shared = g->valid && g->whole_scope && g->lower <= *lower;
  u64 known = *count, prefix = 0;
  for (int shift = kTopShift; shift >= 0; shift -= 8) {
    const bool gather = !from_shared && known <= kGatherCap;
    histogram_pass(weights, stride, Pass{*lower, shift, prefix, from_shared, gather}, s);
    const bool first = shift == kTopShift;
    choose_bin(sel, row, u53, first, s);
    if (gather) *g = Gathered{true, first, *lower};
    from_shared = from_shared || gather;
    if (first && s.skip) {
      *count = s.total_count;
      return s.total_count != 0;
    }
    prefix = (prefix << 8) | static_cast<u64>(s.bin);
    known = s.bin_count;
  }
  *lower = prefix;  // all 52 bits: the key found
  *count = s.above_count + 1;
  return true;
}

__global__ void __launch_bounds__(kRowThreads)
    select_kernel(const float* logits, int32_t n_vocab, int64_t stride, const DeviceSampleRow* rows,
                  const int32_t* best, const uint32_t* weights, int32_t* tokens) {
  __shared__ SelectShared s;
  const int64_t r = blockIdx.x;
  const DeviceSampleRow row = rows[r];
  const int32_t greedy = best[r];
  if (greedy_row(row) || !isfinite(logits[r * n_vocab + greedy])) {
    if (threadIdx.x == 0) tokens[r] = greedy;
    return;
  }
  const u64 u53 = sampling::sample_bits53(row.seed, row.workflow, row.step, row.index);
  const uint32_t* w = weights + r * stride;
  u64 lower = kMinKey, count = kUnknown;
  Gathered g;
  bool any = true;
  if (row.top_k > 0) any = select(Selection::kTopK, row, u53, w, stride, &lower, &count, &g, s);
  if (any && row.top_p < 1.0f)
    any = select(Selection::kTopP, row, u53, w, stride, &lower, &count, &g, s);
  if (any) any = select(Selection::kDraw, row, u53, w, stride, &lower, &count, &g, s);
  if (threadIdx.x == 0)
    tokens[r] = any ? static_cast<int32_t>(kMaxVocab - 1 - (lower & (kMaxVocab - 1))) : greedy;
}

}  // namespace

std::size_t sample_workspace_bytes(int32_t n_rows, int32_t n_vocab) {
  if (n_rows <= 0 || n_vocab <= 0) return 0;
  return weights_offset(n_rows) + static_cast<std::size_t>(n_rows) *
                                      static_cast<std::size_t>(weights_stride(n_vocab)) *
                                      sizeof(uint32_t);
}

void sample_rows(const float* logits, int32_t n_rows, int32_t n_vocab, const DeviceSampleRow* rows,
                 void* workspace, int32_t* tokens, cudaStream_t stream) {
  if (n_rows <= 0) return;
  if (n_vocab <= 0 || n_vocab > kMaxVocab)
    throw RunError("sample_rows: a vocabulary of " + std::to_string(n_vocab) +
                   " tokens (1 to 2^20 supported)");
  if (n_rows > 65535) throw RunError("sample_rows: more than 65535 rows");
  if (!aligned16(workspace)) throw RunError("sample_rows: workspace not 16-byte aligned");
  auto* best = static_cast<int32_t*>(workspace);
  auto* weights =
      reinterpret_cast<uint32_t*>(static_cast<char*>(workspace) + weights_offset(n_rows));
  const int64_t stride = weights_stride(n_vocab);
  argmax_kernel<<<n_rows, kRowThreads, 0, stream>>>(logits, n_vocab, best);
  check_launch("sample_rows: argmax");
  const dim3 grid(static_cast<unsigned>((stride / 4 + kWeightThreads - 1) / kWeightThreads),
                  static_cast<unsigned>(n_rows));
  weights_kernel<<<grid, kWeightThreads, 0, stream>>>(logits, n_vocab, stride, rows, best, weights);
  check_launch("sample_rows: weights");
  select_kernel<<<n_rows, kRowThreads, 0, stream>>>(logits, n_vocab, stride, rows, best, weights,
                                                    tokens);
  check_launch("sample_rows: select");
}

}  // namespace flowrank::engine::cuda
