#pragma once
// Board power of the GPU the run uses, sampled through NVML on a background thread. NVML comes
// with the driver, so it is loaded at run time (dlopen of libnvidia-ml.so.1): the binary has no
// link dependency on it and runs unchanged on a machine without a GPU, where it simply records
// nothing and says why.
//
// Which GPU: the engine's CUDA device `gpu` (Options), i.e. entry `gpu` of CUDA_VISIBLE_DEVICES
// (an index or a GPU-<uuid>), else NVML index `gpu`. With several ranks each rank passes the GPU
// it runs on, so each samples its own board. Indices are NVML's (PCI order), the same as CUDA's
// when CUDA_DEVICE_ORDER=PCI_BUS_ID or the GPUs are all of one kind.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flowrank/common/clock.hpp"

namespace flowrank::power {

struct Reading {
  Clock::time_point t{};
  double watts = 0;  // nvmlDeviceGetPowerUsage (averaged over 1 s by Ampere and later GPUs)
  // nvmlDeviceGetTotalEnergyConsumption in joules (Volta and later), NaN where unsupported.
  double counter_j = std::numeric_limits<double>::quiet_NaN();
};

struct Trace {
  std::string source;       // e.g. "nvml: NVIDIA H200 (GPU 0), every 20 ms, energy counter"
  std::string unavailable;  // why nothing was sampled (no NVML, no GPU, ...); empty otherwise
  std::vector<Reading> readings;
};

class BoardPowerSampler {
 public:
  struct Options {
    std::string library = "libnvidia-ml.so.1";
    std::chrono::milliseconds interval{20};
    int32_t gpu = 0;  // the CUDA device the engine runs on
  };
  // Starts the sampling thread; loading NVML happens there, off the caller's path.
  explicit BoardPowerSampler(Options options);
  ~BoardPowerSampler();
  BoardPowerSampler(const BoardPowerSampler&) = delete;
  BoardPowerSampler& operator=(const BoardPowerSampler&) = delete;

  // Takes a last reading, stops the thread and returns what was recorded. Call once.
  Trace stop();

 private:
  void run();
  bool wait_interval();  // false once stop() was called

  Options options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  Trace trace_;
  std::thread thread_;
};

}  // namespace flowrank::power
