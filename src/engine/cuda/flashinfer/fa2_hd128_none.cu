// FA2 paged prefill, head size 128, no mask (the cascade's shared-prefix launch).
#include "fa2_prefill.cuh"

namespace flowrank::engine::cuda::fa2 {
template cudaError_t prefill<128, flashinfer::MaskMode::kNone>(PrefillParams, uint32_t, DType*,
                                                               float*, cudaStream_t);
}  // namespace flowrank::engine::cuda::fa2
