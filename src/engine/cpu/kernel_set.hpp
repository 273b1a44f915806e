#pragma once
// One instruction set's implementations of the CPU kernels' inner loops; cpu_kernels.cpp drives
// them (chunking, threads, pages) and picks the set at run time. Every entry computes exactly
// what its scalar reference in cpu_ops.hpp does, so the sets are interchangeable bit for bit.
#include <cstddef>
#include <cstdint>

#include "flowrank/engine/model.hpp"

namespace flowrank::engine::cpu {

// A run of at most 16 consecutive positions of one KV block for the score kernel: dim d of
// lane i's key at kt[d * ldk + i]; lane i's score goes to index dst + i of each pair's row.
struct KeyChunk {
  const float* kt = nullptr;
  int32_t lanes = 0;
  int32_t dst = 0;
};

struct KernelSet {
  // How much each kernel takes at once (what fits its registers).
  int tile_rows;     // dot_tile: x rows
  int tile_cols;     // dot_tile: weight rows
  int qk_pairs;      // scores: (query, head) pairs
  int qk_chunks;     // scores: key chunks
  int pv_pairs;      // values: pairs
  int pv_dims;       // values: dims
  int gemv_rows;     // gemv: x rows
  int gemv_cols[4];  // gemv: weight rows at a time, for 1, 2, 3, 4 x rows
  // dst[0..k) = dequantize(t, row, k) (k a whole number of blocks).
  void (*dequant_row)(TensorType t, const unsigned char* row, int64_t k, float* dst);
  // y[r * ldy + c] = dot16(x + r * ldx, w + c * ldw, k) for r < mr, c < nc.
  void (*dot_tile)(const float* x, int64_t ldx, int mr, const float* w, int64_t ldw, int nc,
                   int64_t k, float* y, int64_t ldy);
  // dot_tile straight from rows of type t (row_bytes apart from w), decoded in registers; false
  // (nothing done) for a type it has no decoder for. Null where the set has none at all.
  bool (*gemv)(TensorType t, const float* x, int64_t ldx, int mr, const unsigned char* w,
               std::size_t row_bytes, int nc, int64_t k, float* y, int64_t ldy);
  // For pair p < np and chunk c < nk: lane i of chunk c gets
  //   dst[p][chunk.dst + i] = (fma chain over d < hd of q[p][d] * kt[d * ldk + i]) * scale.
  void (*scores)(const float* const* q, int np, const KeyChunk* chunks, int nk, int64_t ldk, int hd,
                 float scale, float* const* dst);
  // acc[p][d] = fma(e[p][i], v[i * ldv + d], acc[p][d]) for i = 0 .. n-1 in order, p < np,
  // d < dims.
  void (*values)(const float* const* e, int np, const float* v, int64_t ldv, int32_t n, int dims,
                 float* const* acc);
  // v[i] = exp_ref(v[i] - shift); returns sum16 of the results.
  float (*exp_sum)(float* v, int64_t n, float shift);
  float (*max_of)(const float* v, int64_t n);
  // act[i] = silu(gate[i]) * up[i].
  void (*swiglu)(const float* gate, const float* up, float* act, int64_t n);
};

const KernelSet& portable_kernels();
// nullptr where this build or compiler has no such set.
const KernelSet* avx2_kernels();
const KernelSet* avx512_kernels();

}  // namespace flowrank::engine::cpu
