#pragma once
// CUDA graphs of decode steps, one per batch-size bucket (nano-vllm's: 1, 2, 4, 8, then steps of
// 16). A decode batch runs padded to the smallest bucket that holds it; the graph's kernels read
// the step's metadata from fixed device buffers, so one capture serves every step of its size.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "cuda_check.cuh"

namespace flowrank::engine::cuda {

class StepGraphs {
 public:
  StepGraphs(int32_t max_seqs, int32_t max_tokens) {
    const int32_t limit = std::min(max_seqs, max_tokens);
    for (int32_t b : {1, 2, 4, 8})
      if (b <= limit) buckets_.push_back(b);
    for (int32_t b = 16; b <= limit; b += 16) buckets_.push_back(b);
    if (buckets_.empty() || buckets_.back() < limit) buckets_.push_back(limit);
  }
  ~StepGraphs() {
    for (auto& [b, exec] : graphs_) cudaGraphExecDestroy(exec);
  }
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  const std::vector<int32_t>& buckets() const { return buckets_; }
  // The bucket a batch of n sequences runs in; 0 when none was captured for it.
  int32_t bucket_for(int32_t n) const {
    const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), n);
    return it != buckets_.end() && graphs_.contains(*it) ? *it : 0;
  }

  // Records what `enqueue` launches on `stream` as the graph of bucket b.
  void capture(int32_t b, cudaStream_t stream, const std::function<void()>& enqueue) {
    cudaGraph_t graph = nullptr;
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "graph capture");
    try {
      enqueue();
    } catch (...) {
      (void)cudaStreamEndCapture(stream, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
      throw;
    }
    check(cudaStreamEndCapture(stream, &graph), "graph capture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(err, "graph instantiate");
    graphs_[b] = exec;
  }

  void replay(int32_t b, cudaStream_t stream) {
    check(cudaGraphLaunch(graphs_.at(b), stream), "graph launch");
  }

 private:
  std::vector<int32_t> buckets_;
  std::map<int32_t, cudaGraphExec_t> graphs_;
};

}  // namespace flowrank::engine::cuda
