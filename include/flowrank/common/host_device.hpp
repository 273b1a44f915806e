#pragma once
// Marks a function compiled for the host and, under nvcc, for the device too: one copy of code
// that the CPU and the GPU must agree on bit for bit.
#if defined(__CUDACC__)
#define FLOWRANK_HOST_DEVICE __host__ __device__
#else
#define FLOWRANK_HOST_DEVICE
#endif
