// Drivers of the CPU kernels (chunking, threads, pages), the run-time choice of instruction set,
// and the portable set: plain loops over the references of cpu_ops.
#include "flowrank/engine/cpu/cpu_kernels.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "flowrank/common/error.hpp"
#include "kernel_set.hpp"

namespace flowrank::engine::cpu {

namespace {

// ---------------------------------------------------------------------------------------------
// The portable set.

void portable_dequant_row(TensorType t, const unsigned char* row, int64_t k, float* dst) {
  dequantize(t, row, dst, k);
}

void portable_dot_tile(const float* x, int64_t ldx, int mr, const float* w, int64_t ldw, int nc,
                       int64_t k, float* y, int64_t ldy) {
  for (int r = 0; r < mr; ++r)
    for (int c = 0; c < nc; ++c) y[r * ldy + c] = dot16(x + r * ldx, w + c * ldw, k);
}

void portable_scores(const float* const* q, int np, const KeyChunk* chunks, int nk, int64_t ldk,
                     int hd, float scale, float* const* dst) {
  for (int c = 0; c < nk; ++c) {
    for (int p = 0; p < np; ++p) {
      for (int32_t i = 0; i < chunks[c].lanes; ++i) {
        float s = 0.0f;
        for (int d = 0; d < hd; ++d) s = std::fma(q[p][d], chunks[c].kt[d * ldk + i], s);
        dst[p][chunks[c].dst + i] = s * scale;
      }
    }
  }
}

void portable_values(const float* const* e, int np, const float* v, int64_t ldv, int32_t n,
                     int dims, float* const* acc) {
  for (int32_t i = 0; i < n; ++i)
    for (int p = 0; p < np; ++p)
      for (int d = 0; d < dims; ++d) acc[p][d] = std::fma(e[p][i], v[i * ldv + d], acc[p][d]);
}

float portable_exp_sum(float* v, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) v[i] = exp_ref(v[i] - shift);
  return sum16(v, n);
}

float portable_max_of(const float* v, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, v[i]);
  return m;
}

const KernelSet kPortable = {4,
                             6,
                             4,
                             4,
                             6,
                             64,
                             0,
                             {0, 0, 0, 0},
                             portable_dequant_row,
                             portable_dot_tile,
                             nullptr,
                             portable_scores,
                             portable_values,
                             portable_exp_sum,
                             portable_max_of,
                             swiglu};

// ---------------------------------------------------------------------------------------------
// Choosing a set.

const KernelSet* set_of(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return avx512_kernels();
    case Isa::kAvx2:
      return avx2_kernels();
    case Isa::kPortable:
      break;
  }
  return &kPortable;
}

Isa clamp_isa(Isa isa) {
  while (isa != Isa::kPortable && (isa > detected_isa() || set_of(isa) == nullptr))
    isa = static_cast<Isa>(static_cast<int>(isa) - 1);
  return isa;
}

Isa initial_isa() {
  const char* env = std::getenv("FLOWRANK_CPU_KERNELS");
  Isa want = Isa::kAvx512;
  if (env != nullptr && *env != '\0') {
    const std::string s = env;
    if (s == "portable") {
      want = Isa::kPortable;
    } else if (s == "avx2") {
      want = Isa::kAvx2;
    } else if (s != "avx512") {
      throw InputError("FLOWRANK_CPU_KERNELS='" + s + "'", "expected portable, avx2 or avx512");
    }
  }
  return clamp_isa(want);
}

std::atomic<Isa>& isa_state() {
  static std::atomic<Isa> isa{initial_isa()};
  return isa;
}

const KernelSet& active() {
  return *set_of(isa_state().load(std::memory_order_relaxed));
}

// ---------------------------------------------------------------------------------------------
// Projections.

// Weight rows dequantized at a time: about 128 KiB of f32, in L2 while every x row passes; a
// multiple of 24 rows (whole dot_tile and gemv column groups).
constexpr int64_t kChunkFloats = int64_t{32} << 10;
constexpr int64_t kChunkRowStep = 24;
// x rows swept per pass over a chunk: about 512 KiB of f32.
constexpr int64_t kXBlockFloats = int64_t{128} << 10;
// Below this many multiply-adds a projection runs on one thread (waking others costs more).
constexpr int64_t kParallelMacs = int64_t{1} << 16;

struct WeightChunk {
  const WeightRows* w;
  int64_t row0, rows;
  int64_t col;  // y column of row0
};

// Rows of one chunk decoded in registers for every x row, when the set can and m is small.
bool run_chunk_fused(const KernelSet& ks, const float* x, int64_t m, int64_t ldx,
                     const WeightChunk& ch, float* y, int64_t ldy) {
  const WeightRows& w = *ch.w;
  if (ks.gemv == nullptr || m > ks.gemv_rows) return false;
  const std::size_t rb = w.row_bytes();
  const int cols = ks.gemv_cols[m - 1];
  for (int64_t c0 = 0; c0 < ch.rows; c0 += cols) {
    const int nc = static_cast<int>(std::min<int64_t>(cols, ch.rows - c0));
    if (!ks.gemv(w.type, x, ldx, static_cast<int>(m), w.row(ch.row0 + c0), rb, nc, w.k,
                 y + ch.col + c0, ldy))
      return false;
  }
  return true;
}

void run_chunk(const KernelSet& ks, const float* x, int64_t m, int64_t ldx, const WeightChunk& ch,
               float* y, int64_t ldy, std::vector<float>& panel) {
  const WeightRows& w = *ch.w;
  const int64_t k = w.k;
  const float* wp = nullptr;
  if (w.type == TensorType::kF32) {
    wp = reinterpret_cast<const float*>(w.row(ch.row0));
  } else {
    if (run_chunk_fused(ks, x, m, ldx, ch, y, ldy)) return;
    panel.resize(static_cast<std::size_t>(ch.rows * k));
    const std::size_t rb = w.row_bytes();
    const unsigned char* row = w.row(ch.row0);
    for (int64_t r = 0; r < ch.rows; ++r, row += rb)
      ks.dequant_row(w.type, row, k, panel.data() + r * k);
    wp = panel.data();
  }
  const int64_t tr = ks.tile_rows, tc = ks.tile_cols;
  const int64_t mb = std::max<int64_t>(tr, kXBlockFloats / k / tr * tr);
  for (int64_t m0 = 0; m0 < m; m0 += mb) {
    const int64_t m1 = std::min(m, m0 + mb);
    for (int64_t c0 = 0; c0 < ch.rows; c0 += tc) {
      const int nc = static_cast<int>(std::min(tc, ch.rows - c0));
      for (int64_t r0 = m0; r0 < m1; r0 += tr) {
        ks.dot_tile(x + r0 * ldx, ldx, static_cast<int>(std::min(tr, m1 - r0)), wp + c0 * k, k, nc,
                    k, y + r0 * ldy + ch.col + c0, ldy);
      }
    }
  }
}

}  // namespace

const KernelSet& portable_kernels() {
  return kPortable;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "AVX-512";
    case Isa::kAvx2:
      return "AVX2";
    case Isa::kPortable:
      break;
  }
  return "portable";
}

Isa detected_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return Isa::kPortable;
    return __builtin_cpu_supports("avx512f") ? Isa::kAvx512 : Isa::kAvx2;
  }();
  return isa;
#else
  return Isa::kPortable;
#endif
}

Isa kernel_isa() {
  return isa_state().load();
}

Isa set_kernel_isa(Isa isa) {
  const Isa use = clamp_isa(isa);
  isa_state().store(use);
  return use;
}

std::size_t WeightRows::row_bytes() const {
  return tensor_bytes(type, k);
}

void dequantize_rows(const WeightRows& w, int64_t row0, int64_t rows, float* dst) {
  const KernelSet& ks = active();
  const std::size_t rb = w.row_bytes();
  const unsigned char* row = w.row(row0);
  for (int64_t r = 0; r < rows; ++r, row += rb) ks.dequant_row(w.type, row, w.k, dst + r * w.k);
}

void matmul(const float* x, int64_t m, int64_t ldx, std::span<const WeightRows> parts, float* y,
            int64_t ldy, ThreadPool& pool) {
  if (m <= 0 || parts.empty()) return;
  const KernelSet& ks = active();
  const int64_t k = parts[0].k;
  thread_local std::vector<WeightChunk> chunks;
  chunks.clear();
  int64_t col = 0;
  const int64_t chunk_rows =
      std::max<int64_t>(kChunkRowStep, kChunkFloats / k / kChunkRowStep * kChunkRowStep);
  for (const WeightRows& w : parts) {
    if (w.k != k) throw std::invalid_argument("matmul: parts of different widths");
    for (int64_t r = 0; r < w.rows; r += chunk_rows)
      chunks.push_back({&w, r, std::min(chunk_rows, w.rows - r), col + r});
    col += w.rows;
  }
  const auto n_chunks = static_cast<int64_t>(chunks.size());
  const WeightChunk* chunk = chunks.data();  // the caller's: thread_local differs per thread
  const auto run_range = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> panel;
    for (int64_t c = begin; c < end; ++c) run_chunk(ks, x, m, ldx, chunk[c], y, ldy, panel);
  };
  if (m * col * k < kParallelMacs) {
    run_range(0, n_chunks);
  } else {
    pool.for_ranges(n_chunks, run_range);
  }
}

void swiglu_rows(const float* gate_up, float* act, int64_t rows, int64_t n_ff) {
  const KernelSet& ks = active();
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * n_ff;
    ks.swiglu(g, g + n_ff, act + r * n_ff, n_ff);
  }
}

// ---------------------------------------------------------------------------------------------
// Attention.

namespace {

// Scores of every pair over positions [jmin, jmax] into rows of `span` floats (index j - jmin):
// key chunks of one block each, so every K chunk is loaded once for all pairs.
void tile_scores(const KernelSet& ks, const AttentionTile& t, int32_t jmin, int32_t jmax,
                 int64_t span, float* scores) {
  const PagedKv& kv = t.kv;
  const int32_t bs = kv.block_size;
  const int pairs = t.rows * t.group;
  const float* q[64];
  float* dst[64];
  KeyChunk chunks[16];
  int nk = 0;
  const auto flush = [&] {
    for (int p0 = 0; p0 < pairs; p0 += ks.qk_pairs) {
      const int np = std::min(ks.qk_pairs, pairs - p0);
      for (int p = 0; p < np; ++p) {
        const int pair = p0 + p;
        q[p] = t.q + (pair / t.group) * t.ldq + (pair % t.group) * kv.head_dim;
        dst[p] = scores + pair * span;
      }
      ks.scores(q, np, chunks, nk, bs, kv.head_dim, t.scale, dst);
    }
    nk = 0;
  };
  for (int32_t j = jmin; j <= jmax;) {
    const int32_t b = j / bs;
    const int32_t end = std::min(jmax + 1, (b + 1) * bs);  // this block's positions, exclusive
    const int32_t page = t.pages[static_cast<std::size_t>(b)];
    while (j < end) {
      const int32_t lanes = std::min(16, end - j);
      chunks[nk++] = KeyChunk{kv.key(page, t.kv_head, 0, j - b * bs), lanes, j - jmin};
      if (nk == ks.qk_chunks) flush();
      j += lanes;
    }
  }
  if (nk > 0) flush();
}

// out of every pair = sum over j in [jmin, jmax] of e[pair][j - jmin] * v_j, block by block.
void tile_values(const KernelSet& ks, const AttentionTile& t, int32_t jmin, int32_t jmax,
                 int64_t span, const float* e) {
  const PagedKv& kv = t.kv;
  const int32_t bs = kv.block_size;
  const int hd = kv.head_dim;
  const int pairs = t.rows * t.group;
  const int64_t ldv = int64_t{kv.n_head_kv} * hd;
  const float* ep[64];
  float* acc[64];
  for (int32_t j = jmin; j <= jmax;) {
    const int32_t b = j / bs;
    const int32_t end = std::min(jmax + 1, (b + 1) * bs);
    const float* v = kv.value(t.pages[static_cast<std::size_t>(b)], t.kv_head, j - b * bs);
    for (int p0 = 0; p0 < pairs; p0 += ks.pv_pairs) {
      const int np = std::min(ks.pv_pairs, pairs - p0);
      for (int d0 = 0; d0 < hd; d0 += ks.pv_dims) {
        for (int p = 0; p < np; ++p) {
          const int pair = p0 + p;
          ep[p] = e + pair * span + (j - jmin);
          acc[p] = t.out + (pair / t.group) * t.ldo + (pair % t.group) * hd + d0;
        }
        ks.values(ep, np, v + d0, ldv, end - j, std::min(ks.pv_dims, hd - d0), acc);
      }
    }
    j = end;
  }
}

}  // namespace

void attend_tile(const AttentionTile& t, std::vector<float>& scratch) {
  const KernelSet& ks = active();
  const int hd = t.kv.head_dim;
  const auto first_of = [&](int32_t pos) {
    return t.window > 0 ? std::max(0, pos - t.window + 1) : 0;
  };
  const int32_t jmin = first_of(t.pos0), jmax = t.pos0 + t.rows - 1;
  const int64_t span = jmax - jmin + 1;
  const int pairs = t.rows * t.group;
  if (pairs > 64) throw std::invalid_argument("attend_tile: more than 64 (query, head) pairs");
  scratch.resize(static_cast<std::size_t>(pairs * span));
  float* s = scratch.data();
  tile_scores(ks, t, jmin, jmax, span, s);
  // Softmax of each pair over its own positions; zero weight elsewhere in the tile's span (an
  // fma with a zero weight leaves a chain's sum as it was).
  float inv[64];
  for (int pair = 0; pair < pairs; ++pair) {
    const int32_t pos = t.pos0 + pair / t.group;
    const int64_t a = first_of(pos) - jmin, b = pos - jmin + 1;
    float* row = s + pair * span;
    const float mx = ks.max_of(row + a, b - a);
    inv[pair] = 1.0f / ks.exp_sum(row + a, b - a, mx);
    std::fill(row, row + a, 0.0f);
    std::fill(row + b, row + span, 0.0f);
    float* out = t.out + (pair / t.group) * t.ldo + (pair % t.group) * hd;
    std::fill(out, out + hd, 0.0f);
  }
  tile_values(ks, t, jmin, jmax, span, s);
  for (int pair = 0; pair < pairs; ++pair) {
    float* out = t.out + (pair / t.group) * t.ldo + (pair % t.group) * hd;
    for (int d = 0; d < hd; ++d) out[d] *= inv[pair];
  }
}

}  // namespace flowrank::engine::cpu
