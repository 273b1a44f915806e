#pragma once
// The CUDA backend's own kernels, one launcher each (llm.c style: each kernel in its .cu file with
// its CPU reference named beside it and a test in tests/engine/cuda comparing the two). Every
// launcher is asynchronous on `stream`, allocates nothing, and calls check_launch() with its
// kernel's name. Activations are bf16 except the residual stream x (f32); accumulation is f32.
// Any size works (a launcher with no rows launches nothing); 16-byte vector loads are taken when
// the row lengths and pointers allow. No host synchronisation and no float atomics anywhere:
// every launcher can be captured in a CUDA graph and gives the same bits run after run.
//
// Shapes: T = token rows of the step, E = n_embd, F = n_ff, nq = n_head * head_dim,
// nkv = n_head_kv * head_dim, nqkv = nq + 2 nkv (a qkv row: q, then k, then v).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "flowrank/engine/model.hpp"
#include "flowrank/engine/sampler.hpp"

namespace flowrank::engine::cuda {

using bf16 = __nv_bfloat16;

// ---- weights (preload) -------------------------------------------------------------------------

// dst[i] = bf16(element i of a GGUF tensor of type `type` whose raw bytes are at `src` on the
// device, 4-byte aligned), for n elements (a multiple of the type's block size). Bit for bit
// dequantize() of engine/model (f32) rounded to bf16 (round to nearest even).
void dequantize_bf16(TensorType type, const void* src, bf16* dst, int64_t n, cudaStream_t stream);

// The dummy-model generator of engine/model, on the device: element i is the f16 value
// table[(splitmix64(stream_key + i / 4) >> (16 * (i % 4))) & 0xFFFF] (common/mix64.hpp)
// converted to bf16; `ones` fills 1.0 instead (norm weights). `table` is
// dummy_normal_f16_table() (65536 f16 bit patterns) copied to the device. Bit for bit
// fill_dummy_f16 then dequantize (F16) and rounding to bf16.
void fill_dummy_bf16(bf16* dst, int64_t n, uint64_t stream_key, bool ones, const uint16_t* table,
                     cudaStream_t stream);

// ---- one step ----------------------------------------------------------------------------------

// x[r] = f32(table[ids[r]]) for r < T; then h[r] = rmsnorm(x[r]) * norm_w (or bf16(x[r]) when
// norm_w is null). Reference: the plan's kEmbed in CpuModelRunner (cpu::rms_norm).
void embed_rows(const int32_t* ids, const bf16* table, int32_t T, int32_t E, const bf16* norm_w,
                float eps, float* x, bf16* h, cudaStream_t stream);

// The plan's kResidual: p = post_w ? rmsnorm(proj[r]) * post_w : proj[r]; x[r] += p; then
// h[r] = norm_w ? rmsnorm(x[r]) * norm_w : bf16(x[r]). Sums of squares in double (as
// cpu::rms_norm, in a tree order), the rest in f32; p stays f32 (not rounded to bf16).
void residual_norm(const bf16* proj, const bf16* post_w, const bf16* norm_w, float eps, int32_t T,
                   int32_t E, float* x, bf16* h, cudaStream_t stream);

// qkv[r][i] += bias[i] for i < nqkv (Qwen2), in f32, rounded to bf16.
void add_bias(bf16* qkv, const bf16* bias, int32_t T, int32_t nqkv, cudaStream_t stream);

// olmo2's QK-norm: q = rmsnorm(q) * wq over all nq values of a row; k likewise over nkv.
// Reference: cpu::rms_norm on each.
void qk_norm(bf16* qkv, const bf16* wq, const bf16* wk, float eps, int32_t T, int32_t nq,
             int32_t nkv, cudaStream_t stream);

// cos_sin[pos][i] = (cos, sin)(pos * inv_freq[i]) * mscale for pos < max_pos, i < pairs; the
// angle and cos/sin in double, rounded to f32 (then times mscale in f32). Computed once at
// preload per RoPE table. Reference: cpu::rope_cos_sin (device and host cos/sin differ by an ulp
// or two in double: within 1 f32 ulp before the mscale product, 2 after).
void rope_table(const double* inv_freq, int32_t pairs, float mscale, int32_t max_pos,
                float2* cos_sin, cudaStream_t stream);

// Rotates q (n_head heads) and k (n_head_kv heads) of each qkv row in place at positions[r]:
// pairs (2i, 2i+1) when interleaved, else (i, i + dims/2), for i < dims/2; head_dim apart.
// Reference: cpu::rope_apply.
void apply_rope(bf16* qkv, const int32_t* positions, const float2* cos_sin, bool interleaved,
                int32_t dims, int32_t head_dim, int32_t n_head, int32_t n_head_kv, int32_t T,
                cudaStream_t stream);

// Writes k and v of each qkv row into the layer's paged cache at slot_mapping[r]
// (block = slot / block_size, offset = slot % block_size): cache layout per layer
// [block][offset][kv_head][head_dim], i.e. row (slot) of nkv values at k_cache + slot * nkv.
// A negative slot (a padding row) writes nothing.
void store_kv(const bf16* qkv, const int32_t* slot_mapping, int32_t T, int32_t nq, int32_t nkv,
              bf16* k_cache, bf16* v_cache, cudaStream_t stream);

// Copies blocks: for each pair i, block pairs[2i] -> pairs[2i+1] of every layer, K and V. A block
// of one layer is block_elems contiguous values; layers are layer_stride values apart. The pairs
// run concurrently: no destination may be another pair's source or destination (copy-on-write
// copies go to fresh blocks); a pair with src == dst does nothing.
void copy_blocks(const int32_t* pairs, int32_t n_pairs, int32_t n_layer, int64_t layer_stride,
                 int64_t block_elems, bf16* k_cache, bf16* v_cache, cudaStream_t stream);

// act[r][i] = silu(gate_up[r][i]) * gate_up[r][F + i]. Reference: cpu::swiglu.
void swiglu(const bf16* gate_up, bf16* act, int32_t T, int32_t F, cudaStream_t stream);

// out[i] = rmsnorm(x[rows[i]]) * norm_w for i < n: the rows whose logits are computed.
void gather_norm(const float* x, const int32_t* rows, int32_t n, int32_t E, const bf16* norm_w,
                 float eps, bf16* out, cudaStream_t stream);

// ---- sampling ----------------------------------------------------------------------------------

// One row's sampling rule and key, as the device reads it (SampleRow of sampler.hpp).
struct DeviceSampleRow {
  float temperature;
  float top_p;
  int32_t top_k;
  int32_t pad;
  uint64_t seed, workflow, step, index;
};

// The device form of a SampleRow.
inline DeviceSampleRow device_sample_row(const SampleRow& row) {
  return DeviceSampleRow{row.temperature, row.top_p,        row.top_k,    0,
                         row.key.seed,    row.key.workflow, row.key.step, row.key.index};
}

// Scratch the sampler needs for n_rows rows of n_vocab logits: 4 bytes a token and row, plus 4
// a row (a 16-byte aligned allocation, e.g. from cudaMalloc).
std::size_t sample_workspace_bytes(int32_t n_rows, int32_t n_vocab);

// tokens[r] = the token Sampler::sample (engine/core, the CPU reference) picks from row r of
// `logits` (f32, n_vocab per row) under rows[r]: given the same logits both pick the same token,
// always (the rule is in sampler.hpp). n_vocab <= 2^20, n_rows <= 65535. Three launches, no
// synchronisation, no float atomics (deterministic).
void sample_rows(const float* logits, int32_t n_rows, int32_t n_vocab, const DeviceSampleRow* rows,
                 void* workspace, int32_t* tokens, cudaStream_t stream);

}  // namespace flowrank::engine::cuda
