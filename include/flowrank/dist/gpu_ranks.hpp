#pragma once
// Ranks and GPUs: which GPU a rank takes, whether ranks share GPUs, and rank 0's weights copied
// to every rank's GPU over NCCL. The CUDA runtime and NCCL parts exist only in a CUDA + MPI build
// (FLOWRANK_HAVE_CUDA_RUNTIME, FLOWRANK_HAVE_NCCL); elsewhere the GPU count is 0 and no NCCL
// communicator can be made.
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "flowrank/common/clock.hpp"
#include "flowrank/dist/communicator.hpp"

namespace flowrank::dist {

// GPUs this process can see (0 without a CUDA runtime, a driver or a device). Initialises CUDA:
// call only when the run uses GPUs.
int32_t visible_gpu_count();
// A GPU's PCI bus id ("0000:3b:00.0"), unique on its host whatever CUDA_VISIBLE_DEVICES says.
std::string gpu_pci_id(int32_t device);

struct GpuAssignment {
  int32_t gpu = -1;               // device index for this rank; -1: no GPU
  int32_t ranks_on_this_gpu = 1;  // ranks sharing it (the memory fraction is divided by this)
  bool distinct_gpus = false;     // every rank of the world has a GPU of its own
};

// From every rank's "host|pci id" (all_gather): this rank's share, and whether all are distinct.
// `identities[r]` empty means rank r has no GPU.
GpuAssignment assign_gpus(const std::vector<std::string>& identities, int32_t rank, int32_t device);

// NCCL is used only when the world has more than one rank and every rank has a GPU of its own.
bool nccl_wanted(int32_t world_size, const GpuAssignment& gpus);

// Whether this build can make an NCCL communicator.
bool nccl_available();

// One NCCL communicator over the world, for broadcasting rank 0's device buffers. Its creation
// (the expensive part) runs on its own thread, started by the constructor; call the constructor
// when engine preload starts, so that creation overlaps the weight load. broadcast() waits for it.
class DeviceBroadcast {
 public:
  // Collective over `comm` (the NCCL id travels by MPI_Bcast). Throws RunError without NCCL.
  DeviceBroadcast(Communicator& comm, int32_t gpu);
  ~DeviceBroadcast();
  DeviceBroadcast(const DeviceBroadcast&) = delete;
  DeviceBroadcast& operator=(const DeviceBroadcast&) = delete;

  // Rank 0's `bytes` at `device_ptr` into every rank's `device_ptr`; returns when they are there.
  // Throws RunError naming the NCCL or CUDA error.
  void broadcast(void* device_ptr, std::size_t bytes);

  // When the communicator's creation started and ended (ended waits for it), and the span from
  // the first broadcast's start to the last one's end.
  Clock::time_point init_started() const { return init_started_; }
  Clock::time_point init_ended();
  bool broadcast_any() const { return broadcasts_ > 0; }
  Clock::time_point first_broadcast() const { return first_broadcast_; }
  Clock::time_point last_broadcast_end() const { return last_broadcast_end_; }
  std::size_t bytes_broadcast() const { return bytes_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  Clock::time_point init_started_{};
  std::shared_future<Clock::time_point> init_done_;
  Clock::time_point first_broadcast_{}, last_broadcast_end_{};
  std::size_t broadcasts_ = 0, bytes_ = 0;
};

}  // namespace flowrank::dist
