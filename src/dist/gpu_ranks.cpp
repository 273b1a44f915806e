#include "flowrank/dist/gpu_ranks.hpp"

#include <cstring>
#include <map>

#include "flowrank/common/error.hpp"

#if FLOWRANK_HAVE_CUDA_RUNTIME
#include <cuda_runtime_api.h>
#endif
#if FLOWRANK_HAVE_NCCL
#include <nccl.h>
#endif

namespace flowrank::dist {

GpuAssignment assign_gpus(const std::vector<std::string>& identities, int32_t rank,
                          int32_t device) {
  GpuAssignment a;
  std::map<std::string, int32_t> users;
  bool all_have = true;
  for (const auto& id : identities) {
    if (id.empty())
      all_have = false;
    else
      ++users[id];
  }
  const std::string& mine = identities.at(static_cast<std::size_t>(rank));
  if (!mine.empty()) {
    a.gpu = device;
    a.ranks_on_this_gpu = users[mine];
  }
  a.distinct_gpus = all_have && users.size() == identities.size();
  return a;
}

bool nccl_wanted(int32_t world_size, const GpuAssignment& gpus) {
  return world_size > 1 && gpus.distinct_gpus;
}

#if FLOWRANK_HAVE_CUDA_RUNTIME
namespace {
void cuda_check(cudaError_t rc, const std::string& what) {
  if (rc != cudaSuccess) throw RunError("CUDA " + what + ": " + cudaGetErrorString(rc));
}
}  // namespace

int32_t visible_gpu_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

std::string gpu_pci_id(int32_t device) {
  char id[32] = {};
  cuda_check(cudaDeviceGetPCIBusId(id, sizeof id, device), "cannot read the PCI bus id");
  return id;
}
#else
int32_t visible_gpu_count() {
  return 0;
}
std::string gpu_pci_id(int32_t) {
  return "";
}
#endif

#if FLOWRANK_HAVE_NCCL && FLOWRANK_HAVE_MPI && FLOWRANK_HAVE_CUDA_RUNTIME
namespace {
void nccl_check(ncclResult_t rc, const std::string& what) {
  if (rc != ncclSuccess) throw RunError("NCCL " + what + ": " + ncclGetErrorString(rc));
}
}  // namespace

struct DeviceBroadcast::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int32_t gpu = 0;
};

bool nccl_available() {
  return true;
}

DeviceBroadcast::DeviceBroadcast(Communicator& comm, int32_t gpu) : state_(new State) {
  state_->gpu = gpu;
  ncclUniqueId id{};
  if (comm.rank() == 0) nccl_check(ncclGetUniqueId(&id), "cannot create a unique id");
  std::string bytes(reinterpret_cast<const char*>(&id), sizeof id);
  comm.broadcast(bytes);
  std::memcpy(&id, bytes.data(), sizeof id);
  init_started_ = Clock::now();
  State* st = state_.get();
  const int32_t rank = comm.rank(), size = comm.size();
  init_done_ =
      std::async(std::launch::async, [st, id, rank, size] {
        cuda_check(cudaSetDevice(st->gpu), "cannot select GPU " + std::to_string(st->gpu));
        nccl_check(ncclCommInitRank(&st->comm, size, id, rank), "cannot create the communicator");
        cuda_check(cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking),
                   "cannot create a stream");
        return Clock::now();
      }).share();
}

DeviceBroadcast::~DeviceBroadcast() {
  if (init_done_.valid()) init_done_.wait();
  if (state_->stream) cudaStreamDestroy(state_->stream);
  if (state_->comm) ncclCommDestroy(state_->comm);
}

Clock::time_point DeviceBroadcast::init_ended() {
  return init_done_.get();  // rethrows the creation's error
}

void DeviceBroadcast::broadcast(void* device_ptr, std::size_t bytes) {
  init_ended();
  const Clock::time_point start = Clock::now();
  if (broadcasts_++ == 0) first_broadcast_ = start;
  cuda_check(cudaSetDevice(state_->gpu), "cannot select GPU " + std::to_string(state_->gpu));
  nccl_check(
      ncclBroadcast(device_ptr, device_ptr, bytes, ncclChar, 0, state_->comm, state_->stream),
      "weights broadcast failed");
  cuda_check(cudaStreamSynchronize(state_->stream), "weights broadcast failed");
  last_broadcast_end_ = Clock::now();
  bytes_ += bytes;
}
#else
struct DeviceBroadcast::State {};

bool nccl_available() {
  return false;
}

DeviceBroadcast::DeviceBroadcast(Communicator&, int32_t) {
  throw RunError("this build of flowrank has no NCCL (configure with CUDA and MPI)");
}
DeviceBroadcast::~DeviceBroadcast() = default;
Clock::time_point DeviceBroadcast::init_ended() {
  return init_started_;
}
void DeviceBroadcast::broadcast(void*, std::size_t) {}
#endif

}  // namespace flowrank::dist
