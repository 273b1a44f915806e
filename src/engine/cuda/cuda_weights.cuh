#pragma once
// The model's weights on the device, bf16, in one allocation (so a rank can receive them all in
// one broadcast). Projections are stacked as the plan expects: wqkv = [wq; wk; wv] rows,
// w_gate_up = [w_gate; w_up] rows. GGUF tensors are uploaded as stored and dequantized on the
// device; dummy tensors are generated there.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "device_memory.cuh"
#include "flowrank/engine/model.hpp"
#include "flowrank/engine/model_plan.hpp"

namespace flowrank::engine::cuda {

struct CudaWeights {
  using bf16 = __nv_bfloat16;
  struct Layer {
    bf16 *attn_norm = nullptr, *wqkv = nullptr, *bqkv = nullptr, *q_norm = nullptr,
         *k_norm = nullptr, *wo = nullptr, *post_attn_norm = nullptr, *ffn_norm = nullptr,
         *w_gate_up = nullptr, *w_down = nullptr, *post_ffn_norm = nullptr;
  };
  DeviceBuffer storage;
  bf16 *tok_embd = nullptr, *output_norm = nullptr, *output = nullptr;  // output: tied -> embd
  std::vector<Layer> layers;

  // The weight an op refers to; null when the model has none in that slot.
  const bf16* get(int32_t layer, WeightSlot slot) const;
};

// dummy_normal_f16_table() on the device, for fill_dummy_bf16.
DeviceBuffer dummy_table_on_device(cudaStream_t stream);

// Sizes and carves the storage, then fills it from `weights` unless read == false (the caller
// fills it another way, e.g. a broadcast from rank 0).
CudaWeights upload_weights(const ModelWeights& weights, bool read, cudaStream_t stream);

}  // namespace flowrank::engine::cuda
