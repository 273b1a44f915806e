// FA2 paged prefill, head size 64, causal (prefill, mixed steps, tensor-core decode).
#include "fa2_prefill.cuh"

namespace flowrank::engine::cuda::fa2 {
template cudaError_t prefill<64, flashinfer::MaskMode::kCausal>(PrefillParams, uint32_t, DType*,
                                                                float*, cudaStream_t);
}  // namespace flowrank::engine::cuda::fa2
