// The AVX2 and AVX-512 kernel sets. Only the functions in this file's target regions use those
// instructions (the rest of the binary stays at the compiler's baseline), and cpu_kernels.cpp
// calls them only where the processor has them. Every vector operation here is the one its
// reference in cpu_ops.cpp performs per element (fma for fma, mul then add where the reference
// rounds twice), so each set gives the reference's bits.
#include "kernel_set.hpp"

#if defined(__x86_64__) && defined(__GNUC__)

// GCC 12's AVX-512 headers build some intrinsics from deliberately undefined registers
// (_mm512_undefined_ps), which its own -Wuninitialized reports once inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "flowrank/engine/cpu/cpu_ops.hpp"

#if defined(__clang__)
#define FLOWRANK_TARGET_BEGIN(t) \
  _Pragma("clang attribute push(__attribute__((target(" #t "))), apply_to = function)")
#define FLOWRANK_TARGET_END _Pragma("clang attribute pop")
#else
#define FLOWRANK_TARGET_PRAGMA(x) _Pragma(#x)
#define FLOWRANK_TARGET_BEGIN(t) _Pragma("GCC push_options") FLOWRANK_TARGET_PRAGMA(GCC target(t))
#define FLOWRANK_TARGET_END _Pragma("GCC pop_options")
#endif

namespace flowrank::engine::cpu {

namespace {

uint16_t load_u16(const unsigned char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

// =============================================================================================
// AVX2 + FMA + F16C: a 16-lane partial sum is two 8-lane registers (lanes 0-7 and 8-15).
FLOWRANK_TARGET_BEGIN("avx2,fma,f16c")
namespace avx2 {
namespace {

__m256i lanes_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Lanes [0, n) of p (n may be <= 0 or >= 8); the rest zero, and never read.
__m256 load8(const float* p, int64_t n) {
  if (n >= 8) return _mm256_loadu_ps(p);
  return n > 0 ? _mm256_maskload_ps(p, lanes_mask(static_cast<int>(n))) : _mm256_setzero_ps();
}

void store8(float* p, int64_t n, __m256 v) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
  } else if (n > 0) {
    _mm256_maskstore_ps(p, lanes_mask(static_cast<int>(n)), v);
  }
}

// reduce16's tree over lanes 0-7 (lo) and 8-15 (hi).
float hsum(__m256 lo, __m256 hi) {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

float half(const unsigned char* p) {
  return _cvtsh_ss(load_u16(p));
}

__m128i load64(const unsigned char* p) {
  return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
}

// Block decoders: 32 weights of one block as four vectors of 8 (elements 0-7, 8-15, 16-23,
// 24-31), each element what dequantize() gives.
struct Q4_0 {
  static constexpr int kBytes = 18;
  static void load(const unsigned char* b, __m256 w[4]) {
    const __m256 d = _mm256_set1_ps(half(b));
    const __m256i eight = _mm256_set1_epi32(8);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_cvtepu8_epi32(load64(b + 2 + 8 * h));
      const __m256i lo = _mm256_sub_epi32(_mm256_and_si256(q, _mm256_set1_epi32(15)), eight);
      const __m256i hi = _mm256_sub_epi32(_mm256_srli_epi32(q, 4), eight);
      w[h] = _mm256_mul_ps(_mm256_cvtepi32_ps(lo), d);
      w[2 + h] = _mm256_mul_ps(_mm256_cvtepi32_ps(hi), d);
    }
  }
};
struct Q4_1 {
  static constexpr int kBytes = 20;
  static void load(const unsigned char* b, __m256 w[4]) {
    const __m256 d = _mm256_set1_ps(half(b)), m = _mm256_set1_ps(half(b + 2));
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_cvtepu8_epi32(load64(b + 4 + 8 * h));
      const __m256i lo = _mm256_and_si256(q, _mm256_set1_epi32(15));
      const __m256i hi = _mm256_srli_epi32(q, 4);
      w[h] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(lo), d), m);
      w[2 + h] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hi), d), m);
    }
  }
};
struct Q8_0 {
  static constexpr int kBytes = 34;
  static void load(const unsigned char* b, __m256 w[4]) {
    const __m256 d = _mm256_set1_ps(half(b));
    for (int h = 0; h < 4; ++h)
      w[h] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load64(b + 2 + 8 * h))), d);
  }
};

template <typename B>
void dequant_blocks(const unsigned char* b, int64_t k, float* y) {
  for (int64_t i = 0; i + 32 <= k; i += 32, b += B::kBytes) {
    __m256 w[4];
    B::load(b, w);
    for (int h = 0; h < 4; ++h) _mm256_storeu_ps(y + i + 8 * h, w[h]);
  }
}

void dequant_row(TensorType t, const unsigned char* b, int64_t k, float* y) {
  int64_t i = 0;
  switch (t) {
    case TensorType::kF32:
      std::memcpy(y, b, static_cast<std::size_t>(k) * 4);
      return;
    case TensorType::kF16:
      for (; i + 8 <= k; i += 8)
        _mm256_storeu_ps(
            y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * i))));
      dequantize(t, b + 2 * i, y + i, k - i);
      return;
    case TensorType::kBF16:
      for (; i + 8 <= k; i += 8) {
        const __m256i w =
            _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
      }
      dequantize(t, b + 2 * i, y + i, k - i);
      return;
    case TensorType::kQ8_0:
      return dequant_blocks<Q8_0>(b, k, y);
    case TensorType::kQ4_0:
      return dequant_blocks<Q4_0>(b, k, y);
    case TensorType::kQ4_1:
      return dequant_blocks<Q4_1>(b, k, y);
    default:  // Q4_K, Q6_K: the reference
      dequantize(t, b, y, k);
      return;
  }
}

// The fused decode GEMV: elements 0-7 and 16-23 of a block go to lanes 0-7 of the partial sums
// (in that order), 8-15 and 24-31 to lanes 8-15. x is read straight from memory by the fma.
template <typename B, int MR, int NC>
void gemv_t(const float* x, int64_t ldx, const unsigned char* w, std::size_t rb, int64_t k,
            float* y, int64_t ldy) {
  __m256 acc[MR][NC][2];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();
  std::size_t off = 0;
  for (int64_t i = 0; i < k; i += 32, off += B::kBytes) {
    for (int c = 0; c < NC; ++c) {
      __m256 wv[4];
      B::load(w + c * rb + off, wv);
      for (int r = 0; r < MR; ++r) {
        const float* xr = x + r * ldx + i;
        for (int h = 0; h < 4; ++h)
          acc[r][c][h % 2] = _mm256_fmadd_ps(_mm256_loadu_ps(xr + 8 * h), wv[h], acc[r][c][h % 2]);
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) y[r * ldy + c] = hsum(acc[r][c][0], acc[r][c][1]);
}

bool gemv(TensorType t, const float* x, int64_t ldx, int mr, const unsigned char* w,
          std::size_t row_bytes, int nc, int64_t k, float* y, int64_t ldy) {
  using Fn =
      void (*)(const float*, int64_t, const unsigned char*, std::size_t, int64_t, float*, int64_t);
  // [mr - 1][nc - 1]: 4 weight rows for one x row, 2 for two.
  static constexpr Fn q4_0[2][4] = {
      {gemv_t<Q4_0, 1, 1>, gemv_t<Q4_0, 1, 2>, gemv_t<Q4_0, 1, 3>, gemv_t<Q4_0, 1, 4>},
      {gemv_t<Q4_0, 2, 1>, gemv_t<Q4_0, 2, 2>, nullptr, nullptr}};
  static constexpr Fn q4_1[2][4] = {
      {gemv_t<Q4_1, 1, 1>, gemv_t<Q4_1, 1, 2>, gemv_t<Q4_1, 1, 3>, gemv_t<Q4_1, 1, 4>},
      {gemv_t<Q4_1, 2, 1>, gemv_t<Q4_1, 2, 2>, nullptr, nullptr}};
  static constexpr Fn q8_0[2][4] = {
      {gemv_t<Q8_0, 1, 1>, gemv_t<Q8_0, 1, 2>, gemv_t<Q8_0, 1, 3>, gemv_t<Q8_0, 1, 4>},
      {gemv_t<Q8_0, 2, 1>, gemv_t<Q8_0, 2, 2>, nullptr, nullptr}};
  const Fn(*table)[4] = t == TensorType::kQ4_0   ? q4_0
                        : t == TensorType::kQ4_1 ? q4_1
                        : t == TensorType::kQ8_0 ? q8_0
                                                 : nullptr;
  if (table == nullptr) return false;
  table[mr - 1][nc - 1](x, ldx, w, row_bytes, k, y, ldy);
  return true;
}

template <int MR, int NC>
void dot_tile_t(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t k, float* y,
                int64_t ldy) {
  __m256 acc[MR][NC][2];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const int64_t rem = k - i;
    for (int h = 0; h < 2; ++h) {
      __m256 xv[MR];
      for (int r = 0; r < MR; ++r) xv[r] = load8(x + r * ldx + i + 8 * h, rem - 8 * h);
      for (int c = 0; c < NC; ++c) {
        const __m256 wv = load8(w + c * ldw + i + 8 * h, rem - 8 * h);
        for (int r = 0; r < MR; ++r) acc[r][c][h] = _mm256_fmadd_ps(xv[r], wv, acc[r][c][h]);
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) y[r * ldy + c] = hsum(acc[r][c][0], acc[r][c][1]);
}

void dot_tile(const float* x, int64_t ldx, int mr, const float* w, int64_t ldw, int nc, int64_t k,
              float* y, int64_t ldy) {
  using Fn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);
  static constexpr Fn table[2][3] = {{dot_tile_t<1, 1>, dot_tile_t<1, 2>, dot_tile_t<1, 3>},
                                     {dot_tile_t<2, 1>, dot_tile_t<2, 2>, dot_tile_t<2, 3>}};
  table[mr - 1][nc - 1](x, ldx, w, ldw, k, y, ldy);
}

template <int NP>
void scores_t(const float* const* q, const KeyChunk* ch, int nk, int64_t ldk, int hd, float scale,
              float* const* dst) {
  constexpr int kMaxChunks = 2;
  __m256 acc[NP][kMaxChunks][2];
  int lanes[kMaxChunks];
  for (int c = 0; c < kMaxChunks; ++c) {
    lanes[c] = c < nk ? ch[c].lanes : 0;
    for (int p = 0; p < NP; ++p) acc[p][c][0] = acc[p][c][1] = _mm256_setzero_ps();
  }
  for (int d = 0; d < hd; ++d) {
    __m256 kv[kMaxChunks][2];
    for (int c = 0; c < kMaxChunks; ++c)
      for (int h = 0; h < 2; ++h)
        kv[c][h] = lanes[c] > 0 ? load8(ch[c].kt + d * ldk + 8 * h, lanes[c] - 8 * h)
                                : _mm256_setzero_ps();
    for (int p = 0; p < NP; ++p) {
      const __m256 qb = _mm256_set1_ps(q[p][d]);
      for (int c = 0; c < kMaxChunks; ++c)
        for (int h = 0; h < 2; ++h) acc[p][c][h] = _mm256_fmadd_ps(qb, kv[c][h], acc[p][c][h]);
    }
  }
  const __m256 sc = _mm256_set1_ps(scale);
  for (int p = 0; p < NP; ++p)
    for (int c = 0; c < nk; ++c)
      for (int h = 0; h < 2; ++h)
        store8(dst[p] + ch[c].dst + 8 * h, lanes[c] - 8 * h, _mm256_mul_ps(acc[p][c][h], sc));
}

void scores(const float* const* q, int np, const KeyChunk* chunks, int nk, int64_t ldk, int hd,
            float scale, float* const* dst) {
  if (np == 1) return scores_t<1>(q, chunks, nk, ldk, hd, scale, dst);
  scores_t<2>(q, chunks, nk, ldk, hd, scale, dst);
}

template <int NP, int NV>
void values_t(const float* const* e, const float* v, int64_t ldv, int32_t n, int dims,
              float* const* accp) {
  __m256 acc[NP][NV];
  for (int p = 0; p < NP; ++p)
    for (int u = 0; u < NV; ++u) acc[p][u] = load8(accp[p] + 8 * u, dims - 8 * u);
  for (int32_t i = 0; i < n; ++i) {
    __m256 vv[NV];
    for (int u = 0; u < NV; ++u) vv[u] = load8(v + i * ldv + 8 * u, dims - 8 * u);
    for (int p = 0; p < NP; ++p) {
      const __m256 eb = _mm256_set1_ps(e[p][i]);
      for (int u = 0; u < NV; ++u) acc[p][u] = _mm256_fmadd_ps(eb, vv[u], acc[p][u]);
    }
  }
  for (int p = 0; p < NP; ++p)
    for (int u = 0; u < NV; ++u) store8(accp[p] + 8 * u, dims - 8 * u, acc[p][u]);
}

template <int NV>
void values_nv(const float* const* e, int np, const float* v, int64_t ldv, int32_t n, int dims,
               float* const* acc) {
  if (np == 1) return values_t<1, NV>(e, v, ldv, n, dims, acc);
  values_t<2, NV>(e, v, ldv, n, dims, acc);
}

void values(const float* const* e, int np, const float* v, int64_t ldv, int32_t n, int dims,
            float* const* acc) {
  switch ((dims + 7) / 8) {
    case 1:
      return values_nv<1>(e, np, v, ldv, n, dims, acc);
    case 2:
      return values_nv<2>(e, np, v, ldv, n, dims, acc);
    case 3:
      return values_nv<3>(e, np, v, ldv, n, dims, acc);
    default:
      return values_nv<4>(e, np, v, ldv, n, dims, acc);
  }
}

// exp_ref, 8 lanes.
__m256 exp8(__m256 x) {
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(kExpMin), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(kExpMax));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Hi), x);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

float exp_sum(float* v, int64_t n, float shift) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t i = 0; i < n; i += 16) {
    for (int h = 0; h < 2; ++h) {
      const int64_t rem = n - i - 8 * h;
      if (rem <= 0) break;
      const __m256i mk = lanes_mask(static_cast<int>(rem >= 8 ? 8 : rem));
      const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(load8(v + i + 8 * h, rem), sh)),
                                     _mm256_castsi256_ps(mk));
      store8(v + i + 8 * h, rem, e);
      acc[h] = _mm256_add_ps(acc[h], e);
    }
  }
  return hsum(acc[0], acc[1]);
}

float max_of(const float* v, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
  __m256 m = ninf;
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t rem = n - i;
    const __m256 mk = _mm256_castsi256_ps(lanes_mask(static_cast<int>(rem >= 8 ? 8 : rem)));
    m = _mm256_max_ps(m, _mm256_blendv_ps(ninf, load8(v + i, rem), mk));
  }
  const __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  const __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1)));
}

void swiglu(const float* gate, const float* up, float* act, int64_t n) {
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t rem = n - i;
    const __m256 g = load8(gate + i, rem);
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_xor_ps(g, sign))));
    store8(act + i, rem, _mm256_mul_ps(s, load8(up + i, rem)));
  }
}

}  // namespace

const KernelSet kSet = {2,           3,        2,    2,      2,      32,      2,      {4, 2, 0, 0},
                        dequant_row, dot_tile, gemv, scores, values, exp_sum, max_of, swiglu};

}  // namespace avx2
FLOWRANK_TARGET_END

const KernelSet* avx2_kernels() {
  return &avx2::kSet;
}

// =============================================================================================
// AVX-512 (F only, plus FMA and F16C): 16 lanes, one register per 16-lane partial sum.
FLOWRANK_TARGET_BEGIN("avx512f,avx2,fma,f16c")
namespace avx512 {
namespace {

__mmask16 lanes_mask(int n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1);
}

// reduce16's tree.
float hsum(__m512 v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

__m512 half16(const unsigned char* p) {
  return _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(load_u16(p))));
}

// Block decoders: 32 weights of one block as two vectors (elements 0-15 and 16-31), each
// element what dequantize() gives.
struct Q4_0 {
  static constexpr int kBytes = 18;
  static void load(const unsigned char* b, __m512& lo, __m512& hi) {
    const __m512 d = half16(b);
    const __m512i q =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)));
    const __m512i eight = _mm512_set1_epi32(8);
    lo = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(q, _mm512_set1_epi32(15)), eight)), d);
    hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight)), d);
  }
};
struct Q4_1 {
  static constexpr int kBytes = 20;
  static void load(const unsigned char* b, __m512& lo, __m512& hi) {
    const __m512 d = half16(b), m = half16(b + 2);
    const __m512i q =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 4)));
    lo = _mm512_add_ps(
        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q, _mm512_set1_epi32(15))), d), m);
    hi = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(q, 4)), d), m);
  }
};
struct Q8_0 {
  static constexpr int kBytes = 34;
  static void load(const unsigned char* b, __m512& lo, __m512& hi) {
    const __m512 d = half16(b);
    const auto q = [&](int at) {
      return _mm512_cvtepi32_ps(
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + at))));
    };
    lo = _mm512_mul_ps(q(2), d);
    hi = _mm512_mul_ps(q(18), d);
  }
};
struct F16 {
  static constexpr int kBytes = 64;
  static void load(const unsigned char* b, __m512& lo, __m512& hi) {
    lo = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
    hi = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32)));
  }
};

template <typename B>
void dequant_blocks(const unsigned char* b, int64_t k, float* y) {
  for (int64_t i = 0; i + 32 <= k; i += 32, b += B::kBytes) {
    __m512 lo, hi;
    B::load(b, lo, hi);
    _mm512_storeu_ps(y + i, lo);
    _mm512_storeu_ps(y + i + 16, hi);
  }
}

void dequant_row(TensorType t, const unsigned char* b, int64_t k, float* y) {
  const int64_t whole = k / 32 * 32;
  switch (t) {
    case TensorType::kF32:
      std::memcpy(y, b, static_cast<std::size_t>(k) * 4);
      return;
    case TensorType::kF16:
      dequant_blocks<F16>(b, whole, y);
      dequantize(t, b + 2 * whole, y + whole, k - whole);
      return;
    case TensorType::kBF16: {
      int64_t i = 0;
      for (; i + 16 <= k; i += 16) {
        const __m512i w =
            _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2 * i)));
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
      }
      dequantize(t, b + 2 * i, y + i, k - i);
      return;
    }
    case TensorType::kQ8_0:
      return dequant_blocks<Q8_0>(b, k, y);
    case TensorType::kQ4_0:
      return dequant_blocks<Q4_0>(b, k, y);
    case TensorType::kQ4_1:
      return dequant_blocks<Q4_1>(b, k, y);
    default:  // Q4_K, Q6_K: the reference
      dequantize(t, b, y, k);
      return;
  }
}

// dot_tile with the weights decoded in registers block by block (no f32 copy): for one or two x
// rows (decode), where a dequantized panel would be written and read back for little reuse.
template <typename B, int MR, int NC>
void gemv_t(const float* x, int64_t ldx, const unsigned char* w, std::size_t rb, int64_t k,
            float* y, int64_t ldy) {
  __m512 acc[MR][NC];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  std::size_t off = 0;
  for (int64_t i = 0; i < k; i += 32, off += B::kBytes) {
    __m512 xl[MR], xh[MR];
    for (int r = 0; r < MR; ++r) {
      xl[r] = _mm512_loadu_ps(x + r * ldx + i);
      xh[r] = _mm512_loadu_ps(x + r * ldx + i + 16);
    }
    for (int c = 0; c < NC; ++c) {
      __m512 lo, hi;
      B::load(w + c * rb + off, lo, hi);
      for (int r = 0; r < MR; ++r) {
        acc[r][c] = _mm512_fmadd_ps(xl[r], lo, acc[r][c]);
        acc[r][c] = _mm512_fmadd_ps(xh[r], hi, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) y[r * ldy + c] = hsum(acc[r][c]);
}

// Up to 4 x rows; 8 weight rows at a time for 1-2 x rows, 4 for 3-4 (what fits 32 registers).
constexpr int kGemvRows = 4, kGemvCols = 8;
using GemvFn = void (*)(const float*, int64_t, const unsigned char*, std::size_t, int64_t, float*,
                        int64_t);

template <typename B, int MR, int... NC>
constexpr std::array<GemvFn, sizeof...(NC)> gemv_row(std::integer_sequence<int, NC...>) {
  return {&gemv_t<B, MR, NC + 1>...};
}

template <typename B>
constexpr std::array<std::array<GemvFn, kGemvCols>, kGemvRows> gemv_table() {
  return {gemv_row<B, 1>(std::make_integer_sequence<int, kGemvCols>{}),
          gemv_row<B, 2>(std::make_integer_sequence<int, kGemvCols>{}),
          gemv_row<B, 3>(std::make_integer_sequence<int, kGemvCols>{}),
          gemv_row<B, 4>(std::make_integer_sequence<int, kGemvCols>{})};
}

bool gemv(TensorType t, const float* x, int64_t ldx, int mr, const unsigned char* w,
          std::size_t row_bytes, int nc, int64_t k, float* y, int64_t ldy) {
  static constexpr auto q4_0 = gemv_table<Q4_0>(), q4_1 = gemv_table<Q4_1>(),
                        q8_0 = gemv_table<Q8_0>(), f16 = gemv_table<F16>();
  const std::array<std::array<GemvFn, kGemvCols>, kGemvRows>* table = nullptr;
  switch (t) {
    case TensorType::kQ4_0:
      table = &q4_0;
      break;
    case TensorType::kQ4_1:
      table = &q4_1;
      break;
    case TensorType::kQ8_0:
      table = &q8_0;
      break;
    case TensorType::kF16:
      if (k % 32 != 0) return false;
      table = &f16;
      break;
    default:
      return false;
  }
  (*table)[static_cast<std::size_t>(mr - 1)][static_cast<std::size_t>(nc - 1)](x, ldx, w, row_bytes,
                                                                               k, y, ldy);
  return true;
}

template <int MR, int NC>
void dot_tile_t(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t k, float* y,
                int64_t ldy) {
  __m512 acc[MR][NC];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    __m512 xv[MR];
    for (int r = 0; r < MR; ++r) xv[r] = _mm512_loadu_ps(x + r * ldx + i);
    for (int c = 0; c < NC; ++c) {
      const __m512 wv = _mm512_loadu_ps(w + c * ldw + i);
      for (int r = 0; r < MR; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  if (i < k) {
    const __mmask16 mk = lanes_mask(static_cast<int>(k - i));
    __m512 xv[MR];
    for (int r = 0; r < MR; ++r) xv[r] = _mm512_maskz_loadu_ps(mk, x + r * ldx + i);
    for (int c = 0; c < NC; ++c) {
      const __m512 wv = _mm512_maskz_loadu_ps(mk, w + c * ldw + i);
      for (int r = 0; r < MR; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NC; ++c) y[r * ldy + c] = hsum(acc[r][c]);
}

using DotTileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);

template <int MR, int... NC>
constexpr std::array<DotTileFn, sizeof...(NC)> dot_row_table(std::integer_sequence<int, NC...>) {
  return {&dot_tile_t<MR, NC + 1>...};
}

constexpr int kRows = 4, kCols = 6;

void dot_tile(const float* x, int64_t ldx, int mr, const float* w, int64_t ldw, int nc, int64_t k,
              float* y, int64_t ldy) {
  static constexpr std::array<std::array<DotTileFn, kCols>, kRows> table = {
      dot_row_table<1>(std::make_integer_sequence<int, kCols>{}),
      dot_row_table<2>(std::make_integer_sequence<int, kCols>{}),
      dot_row_table<3>(std::make_integer_sequence<int, kCols>{}),
      dot_row_table<4>(std::make_integer_sequence<int, kCols>{})};
  table[static_cast<std::size_t>(mr - 1)][static_cast<std::size_t>(nc - 1)](x, ldx, w, ldw, k, y,
                                                                            ldy);
}

template <int NP>
void scores_t(const float* const* q, const KeyChunk* ch, int nk, int64_t ldk, int hd, float scale,
              float* const* dst) {
  constexpr int kMaxChunks = 4;
  __m512 acc[NP][kMaxChunks];
  __mmask16 mk[kMaxChunks];
  for (int c = 0; c < kMaxChunks; ++c) {
    mk[c] = c < nk ? lanes_mask(ch[c].lanes) : 0;
    for (int p = 0; p < NP; ++p) acc[p][c] = _mm512_setzero_ps();
  }
  for (int d = 0; d < hd; ++d) {
    __m512 kv[kMaxChunks];
    for (int c = 0; c < kMaxChunks; ++c)
      kv[c] = c < nk ? _mm512_maskz_loadu_ps(mk[c], ch[c].kt + d * ldk) : _mm512_setzero_ps();
    for (int p = 0; p < NP; ++p) {
      const __m512 qb = _mm512_set1_ps(q[p][d]);
      for (int c = 0; c < kMaxChunks; ++c) acc[p][c] = _mm512_fmadd_ps(qb, kv[c], acc[p][c]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int p = 0; p < NP; ++p)
    for (int c = 0; c < nk; ++c)
      _mm512_mask_storeu_ps(dst[p] + ch[c].dst, mk[c], _mm512_mul_ps(acc[p][c], sc));
}

void scores(const float* const* q, int np, const KeyChunk* chunks, int nk, int64_t ldk, int hd,
            float scale, float* const* dst) {
  switch (np) {
    case 1:
      return scores_t<1>(q, chunks, nk, ldk, hd, scale, dst);
    case 2:
      return scores_t<2>(q, chunks, nk, ldk, hd, scale, dst);
    case 3:
      return scores_t<3>(q, chunks, nk, ldk, hd, scale, dst);
    default:
      return scores_t<4>(q, chunks, nk, ldk, hd, scale, dst);
  }
}

template <int NP, int NV>
void values_t(const float* const* e, const float* v, int64_t ldv, int32_t n, int dims,
              float* const* accp) {
  __mmask16 mk[NV];
  for (int u = 0; u < NV; ++u) mk[u] = lanes_mask(dims - 16 * u);
  __m512 acc[NP][NV];
  for (int p = 0; p < NP; ++p)
    for (int u = 0; u < NV; ++u) acc[p][u] = _mm512_maskz_loadu_ps(mk[u], accp[p] + 16 * u);
  for (int32_t i = 0; i < n; ++i) {
    __m512 vv[NV];
    for (int u = 0; u < NV; ++u) vv[u] = _mm512_maskz_loadu_ps(mk[u], v + i * ldv + 16 * u);
    for (int p = 0; p < NP; ++p) {
      const __m512 eb = _mm512_set1_ps(e[p][i]);
      for (int u = 0; u < NV; ++u) acc[p][u] = _mm512_fmadd_ps(eb, vv[u], acc[p][u]);
    }
  }
  for (int p = 0; p < NP; ++p)
    for (int u = 0; u < NV; ++u) _mm512_mask_storeu_ps(accp[p] + 16 * u, mk[u], acc[p][u]);
}

template <int NV>
void values_nv(const float* const* e, int np, const float* v, int64_t ldv, int32_t n, int dims,
               float* const* acc) {
  switch (np) {
    case 1:
      return values_t<1, NV>(e, v, ldv, n, dims, acc);
    case 2:
      return values_t<2, NV>(e, v, ldv, n, dims, acc);
    case 3:
      return values_t<3, NV>(e, v, ldv, n, dims, acc);
    case 4:
      return values_t<4, NV>(e, v, ldv, n, dims, acc);
    case 5:
      return values_t<5, NV>(e, v, ldv, n, dims, acc);
    default:
      return values_t<6, NV>(e, v, ldv, n, dims, acc);
  }
}

void values(const float* const* e, int np, const float* v, int64_t ldv, int32_t n, int dims,
            float* const* acc) {
  switch ((dims + 15) / 16) {
    case 1:
      return values_nv<1>(e, np, v, ldv, n, dims, acc);
    case 2:
      return values_nv<2>(e, np, v, ldv, n, dims, acc);
    case 3:
      return values_nv<3>(e, np, v, ldv, n, dims, acc);
    default:
      return values_nv<4>(e, np, v, ldv, n, dims, acc);
  }
}

// exp_ref, 16 lanes.
__m512 exp16(__m512 x) {
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpMin), _CMP_LT_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(kExpMax));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Hi), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  const __m512i e =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under),
                             _mm512_mul_ps(p, _mm512_castsi512_ps(e)));
}

float exp_sum(float* v, int64_t n, float shift) {
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = lanes_mask(static_cast<int>(n - i));
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, v + i), sh));
    _mm512_mask_storeu_ps(v + i, mk, e);
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(mk, e));
  }
  return hsum(acc);
}

float max_of(const float* v, int64_t n) {
  __m512 m = _mm512_set1_ps(-__builtin_inff());
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = lanes_mask(static_cast<int>(n - i));
    m = _mm512_mask_max_ps(m, mk, m, _mm512_maskz_loadu_ps(mk, v + i));
  }
  return _mm512_reduce_max_ps(m);
}

void swiglu(const float* gate, const float* up, float* act, int64_t n) {
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = lanes_mask(static_cast<int>(n - i));
    const __m512 g = _mm512_maskz_loadu_ps(mk, gate + i);
    const __m512 neg = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), sign));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, exp16(neg)));
    _mm512_mask_storeu_ps(act + i, mk, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(mk, up + i)));
  }
}

}  // namespace

const KernelSet kSet = {
    4,           6,        4,    4,      6,      64,      kGemvRows, {8, 8, 4, 4},
    dequant_row, dot_tile, gemv, scores, values, exp_sum, max_of,    swiglu};

}  // namespace avx512
FLOWRANK_TARGET_END

const KernelSet* avx512_kernels() {
  return &avx512::kSet;
}

}  // namespace flowrank::engine::cpu

#else  // not x86-64 with GCC or clang

namespace flowrank::engine::cpu {
const KernelSet* avx512_kernels() {
  return nullptr;
}
const KernelSet* avx2_kernels() {
  return nullptr;
}
}  // namespace flowrank::engine::cpu

#endif
