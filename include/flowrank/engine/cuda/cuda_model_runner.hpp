#pragma once
// The CUDA backend's face to the rest of the engine: no CUDA types here, so make_engine and the
// CLI compile without the toolkit's headers. One runner uses exactly one GPU.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "flowrank/engine/engine.hpp"
#include "flowrank/engine/model.hpp"
#include "flowrank/engine/model_runner.hpp"

namespace flowrank::engine {

struct CudaRunnerOptions {
  int32_t device = 0;
  // Share of the device's total memory this process may hold: weights, activations, workspaces
  // and the KV pool, which gets whatever the rest leaves.
  float memory_fraction = 0.90f;
  bool cascade_attention = true;  // shared-prefix decode attention when sequences share pages
  bool cuda_graphs = true;        // decode steps replayed from graphs captured at preload
  // Many ranks (see EngineOptions): skip the file read and fill the buffers by broadcast.
  bool read_weights = true;
  std::function<void(void* device_ptr, std::size_t bytes)> broadcast_weights;
};

// Number of CUDA devices this process can use (0 without a driver or device).
int cuda_device_count();
// "NVIDIA H200 (sm_90, 139.8 GiB)"; throws RunError for a device that does not exist.
std::string cuda_device_description(int device);

// DeviceLimits (engine.hpp) of one device: a 4 GiB device-to-device copy and an 8192^3
// cuBLASLt bf16 GEMM, medians of 10 timed with events after warm-up, on random data.
DeviceLimits measure_cuda_limits(int device);

// Throws RunError naming the device when it is missing or unusable.
std::unique_ptr<ModelRunner> make_cuda_runner(ModelWeights weights, CudaRunnerOptions options);

}  // namespace flowrank::engine
