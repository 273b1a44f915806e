#pragma once
// Where a step's device time goes, per plan op (FLOWRANK_CUDA_PROFILE=1): each op is bracketed
// by CUDA events and timed after the step, and a table of totals goes to stderr when the runner
// is destroyed. Diagnostics only: it serialises the host with the device and turns graphs off.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cuda_check.cuh"

namespace flowrank::engine::cuda {

class OpProfile {
 public:
  static bool wanted() {
    const char* v = std::getenv("FLOWRANK_CUDA_PROFILE");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }
  ~OpProfile() {
    if (totals_.empty()) return;
    double all = 0;
    for (const auto& [name, t] : totals_) all += t.first;
    std::fprintf(stderr, "[cuda profile] %-24s %10s %8s %9s %6s\n", "op", "total ms", "count",
                 "avg us", "share");
    for (const auto& [name, t] : totals_)
      std::fprintf(stderr, "[cuda profile] %-24s %10.2f %8ld %9.1f %5.1f%%\n", name.c_str(),
                   t.first, t.second, 1e3 * t.first / static_cast<double>(t.second),
                   100.0 * t.first / all);
    for (auto& [a, b, name] : pending_) {
      cudaEventDestroy(a);
      cudaEventDestroy(b);
    }
    for (cudaEvent_t e : free_) cudaEventDestroy(e);
  }

  // Times what `body` enqueues on `stream` under `name`.
  template <class F>
  void time(const std::string& name, cudaStream_t stream, F&& body) {
    cudaEvent_t a = take(), b = take();
    check(cudaEventRecord(a, stream), "profile event");
    body();
    check(cudaEventRecord(b, stream), "profile event");
    pending_.push_back({a, b, name});
  }
  // Host time spent on `name` (e.g. attention planning), added as it is.
  void add_host(const std::string& name, double seconds) {
    auto& t = totals_[name];
    t.first += seconds * 1e3;
    t.second += 1;
  }
  // After the step: adds up what was timed.
  void collect() {
    for (auto& [a, b, name] : pending_) {
      check(cudaEventSynchronize(b), "profile event");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, a, b), "profile event");
      auto& t = totals_[name];
      t.first += ms;
      t.second += 1;
      free_.push_back(a);
      free_.push_back(b);
    }
    pending_.clear();
  }

 private:
  cudaEvent_t take() {
    if (!free_.empty()) {
      cudaEvent_t e = free_.back();
      free_.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "profile event");
    return e;
  }
  struct Pending {
    cudaEvent_t a, b;
    std::string name;
  };
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> free_;
  std::map<std::string, std::pair<double, long>> totals_;
};

}  // namespace flowrank::engine::cuda
