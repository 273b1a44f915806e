#pragma once
// Owning handles for device and pinned host memory. An allocation that fails says how much was
// asked, how much the device had free, and what it was for.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>

#include "cuda_check.cuh"

namespace flowrank::engine::cuda {

inline std::string gib(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  return buf;
}

// Throws RunError("out of memory on cuda device: <what> needs N GiB, M GiB free").
[[noreturn]] inline void throw_device_oom(const std::string& what, std::size_t bytes) {
  (void)cudaGetLastError();
  std::size_t free_bytes = 0, total = 0;
  (void)cudaMemGetInfo(&free_bytes, &total);
  throw RunError("out of memory on cuda device: " + what + " needs " + gib(bytes) + ", " +
                 gib(free_bytes) + " free of " + gib(total));
}

struct DeviceAllocator {
  static void* allocate(std::size_t bytes, const std::string& what) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) throw_device_oom(what, bytes);
    return p;
  }
  static void release(void* p) { (void)cudaFree(p); }
};

// Page-locked host memory: the only kind the device copies to and from asynchronously.
struct PinnedAllocator {
  static void* allocate(std::size_t bytes, const std::string& what) {
    void* p = nullptr;
    if (cudaMallocHost(&p, bytes) != cudaSuccess) {
      (void)cudaGetLastError();
      throw RunError("out of pinned host memory: " + what + " needs " + gib(bytes));
    }
    return p;
  }
  static void release(void* p) { (void)cudaFreeHost(p); }
};

template <class Allocator>
class OwnedMemory {
 public:
  OwnedMemory() = default;
  OwnedMemory(std::size_t bytes, const std::string& what)
      : ptr_(bytes > 0 ? Allocator::allocate(bytes, what) : nullptr), bytes_(bytes) {}
  ~OwnedMemory() {
    if (ptr_ != nullptr) Allocator::release(ptr_);
  }
  OwnedMemory(OwnedMemory&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  OwnedMemory& operator=(OwnedMemory&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  OwnedMemory(const OwnedMemory&) = delete;
  OwnedMemory& operator=(const OwnedMemory&) = delete;

  template <class T = void>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

using DeviceBuffer = OwnedMemory<DeviceAllocator>;
using PinnedBuffer = OwnedMemory<PinnedAllocator>;

}  // namespace flowrank::engine::cuda
