// FA3 paged causal prefill (sm_90a), head size 64.
#include "fa3_prefill.cuh"

namespace flowrank::engine::cuda::fa3 {
template cudaError_t prefill<64>(const Launch&, cudaStream_t);
}  // namespace flowrank::engine::cuda::fa3
