// Paged decode on CUDA cores (full multi-head attention), head size 64.
#include "fa2_decode.cuh"

namespace flowrank::engine::cuda::fa2 {
template cudaError_t decode_plan<64>(void*, std::size_t, void*, void*, std::size_t,
                                     flashinfer::DecodePlanInfo&, int32_t*, uint32_t, uint32_t,
                                     uint32_t, uint32_t, bool, cudaStream_t);
template cudaError_t decode<64>(DecodeParams, DType*, float*, cudaStream_t);
}  // namespace flowrank::engine::cuda::fa2
