// The paged KV cache: each step's new k and v rows into their slots, and block copies.
#include "cuda_check.cuh"
#include "device_rows.cuh"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

constexpr int kThreads = 256;

// One CTA per token row; its k and v (nkv values each, after the row's nq q values) go to row
// `slot` of the layer's caches. A negative slot (a padding row) writes nothing.
template <int V>
__global__ void store_kv_kernel(const bf16* qkv, const int32_t* slot_mapping, int32_t nq,
                                int32_t nkv, bf16* k_cache, bf16* v_cache) {
  const int64_t slot = slot_mapping[blockIdx.x];
  if (slot < 0) return;
  const bf16* k = qkv + static_cast<int64_t>(blockIdx.x) * (nq + 2 * nkv) + nq;
  const bf16* v = k + nkv;
  bf16* kd = k_cache + slot * nkv;
  bf16* vd = v_cache + slot * nkv;
  for (int32_t i = threadIdx.x * V; i < nkv; i += blockDim.x * V) {
    copy_vec<V>(k + i, kd + i);
    copy_vec<V>(v + i, vd + i);
  }
}

// grid (pair, layer, 0 = K / 1 = V): one block of one layer per CTA.
template <int V>
__global__ void copy_blocks_kernel(const int32_t* pairs, int64_t layer_stride, int64_t block_elems,
                                   bf16* k_cache, bf16* v_cache) {
  const int64_t src = pairs[2 * blockIdx.x];
  const int64_t dst = pairs[2 * blockIdx.x + 1];
  if (src == dst) return;
  bf16* layer = (blockIdx.z == 0 ? k_cache : v_cache) + blockIdx.y * layer_stride;
  const bf16* s = layer + src * block_elems;
  bf16* d = layer + dst * block_elems;
  for (int64_t i = threadIdx.x * V; i < block_elems; i += blockDim.x * V) copy_vec<V>(s + i, d + i);
}

}  // namespace

void store_kv(const bf16* qkv, const int32_t* slot_mapping, int32_t T, int32_t nq, int32_t nkv,
              bf16* k_cache, bf16* v_cache, cudaStream_t stream) {
  if (T <= 0 || nkv <= 0) return;
  if (nq % kVec == 0 && nkv % kVec == 0 && aligned16(qkv) && aligned16(k_cache) &&
      aligned16(v_cache))
    store_kv_kernel<kVec><<<T, kThreads, 0, stream>>>(qkv, slot_mapping, nq, nkv, k_cache, v_cache);
  else
    store_kv_kernel<1><<<T, kThreads, 0, stream>>>(qkv, slot_mapping, nq, nkv, k_cache, v_cache);
  check_launch("store_kv");
}

void copy_blocks(const int32_t* pairs, int32_t n_pairs, int32_t n_layer, int64_t layer_stride,
                 int64_t block_elems, bf16* k_cache, bf16* v_cache, cudaStream_t stream) {
  if (n_pairs <= 0 || n_layer <= 0 || block_elems <= 0) return;
  if (n_layer > 65535) throw RunError("copy_blocks: more than 65535 layers");
  const dim3 grid(static_cast<unsigned>(n_pairs), static_cast<unsigned>(n_layer), 2);
  if (block_elems % kVec == 0 && layer_stride % kVec == 0 && aligned16(k_cache) &&
      aligned16(v_cache))
    copy_blocks_kernel<kVec>
        <<<grid, kThreads, 0, stream>>>(pairs, layer_stride, block_elems, k_cache, v_cache);
  else
    copy_blocks_kernel<1>
        <<<grid, kThreads, 0, stream>>>(pairs, layer_stride, block_elems, k_cache, v_cache);
  check_launch("copy_blocks");
}

}  // namespace flowrank::engine::cuda
