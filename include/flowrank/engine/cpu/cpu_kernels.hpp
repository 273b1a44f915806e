#pragma once
// The CPU backend's hot loops: projections straight from the weights as the GGUF stores them
// (quantized blocks dequantized on the fly, never a full f32 copy) and attention over the paged
// KV pool, tiled over K/V blocks. Each has one arithmetic, written down by the scalar references
// in cpu_ops.hpp, and up to three implementations picked at run time from the processor's
// features (AVX-512, AVX2+FMA, portable C++). All three give the same bits: every output element
// is the same fixed sequence of f32 operations whatever the vector width, the batch, the tile it
// falls in or the thread that computes it, which is what makes the CPU backend batch invariant.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "flowrank/engine/cpu/cpu_ops.hpp"
#include "flowrank/engine/cpu/thread_pool.hpp"
#include "flowrank/engine/model.hpp"

namespace flowrank::engine::cpu {

enum class Isa : uint8_t { kPortable, kAvx2, kAvx512 };

const char* isa_name(Isa isa);
// The widest kernels this processor (and its OS) runs.
Isa detected_isa();
// The kernels in use: detected_isa(), lowered by FLOWRANK_CPU_KERNELS=portable|avx2|avx512 or
// set_kernel_isa(). Results are the same on every level; only speed differs. Throws InputError
// for any other value of FLOWRANK_CPU_KERNELS.
Isa kernel_isa();
// Uses `isa`, or the widest supported level below it. Returns the level now in use.
Isa set_kernel_isa(Isa isa);

// n rows of k values of one GGUF type, rows back to back as in the file (the mmap itself).
struct WeightRows {
  TensorType type = TensorType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t k = 0;
  std::size_t row_bytes() const;
  const unsigned char* row(int64_t i) const {
    return static_cast<const unsigned char*>(data) + static_cast<std::size_t>(i) * row_bytes();
  }
};

// y[i][c + j] = dot16(x[i], dequantize(w.row(j))) for i < m, where c is the part's first column:
// parts are stacked along the output columns in order (q, k, v of one projection, say). Rows of
// y are ldy floats apart, rows of x ldx. Runs on the pool's threads, each output element on one
// of them, so the thread count does not change any result either.
void matmul(const float* x, int64_t m, int64_t ldx, std::span<const WeightRows> parts, float* y,
            int64_t ldy, ThreadPool& pool);

// Dequantizes rows [row0, row0 + rows) of w into dst (rows x w.k floats): bitwise what
// dequantize() gives, on the active kernels.
void dequantize_rows(const WeightRows& w, int64_t row0, int64_t rows, float* dst);

// act[r][i] = silu(gate_up[r][i]) * gate_up[r][n_ff + i]: swiglu() on every row, vectorized.
void swiglu_rows(const float* gate_up, float* act, int64_t rows, int64_t n_ff);

// Attention of `rows` consecutive queries of one sequence (positions pos0, pos0 + 1, ...) for
// the `group` query heads sharing KV head `kv_head`: for each query and head, bitwise what
// attend() computes alone. q points at the first query's first head of the group; the query
// rows are ldq floats apart, heads head_dim apart (out likewise with ldo). Each K and V row is
// read once per tile of queries and heads rather than once per query and head.
struct AttentionTile {
  const float* q = nullptr;
  int64_t ldq = 0;
  float* out = nullptr;
  int64_t ldo = 0;
  int32_t rows = 1;
  int32_t pos0 = 0;
  int32_t group = 1;
  int32_t kv_head = 0;
  int32_t window = 0;  // > 0: each query sees only its last `window` positions
  std::span<const int32_t> pages;
  PagedKv kv;
  float scale = 1.0f;
};
void attend_tile(const AttentionTile& tile, std::vector<float>& scratch);

}  // namespace flowrank::engine::cpu
