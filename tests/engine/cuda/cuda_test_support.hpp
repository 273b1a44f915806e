#pragma once
// Shared by the GPU tests: the fixture that skips where no CUDA device is visible (a build
// machine without a GPU), device buffers, bf16 conversions and element-wise comparisons that
// report how many elements failed and the first of them.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "cuda_check.cuh"

namespace flowrank::engine::cuda::testing {

using bf16 = __nv_bfloat16;

inline bool cuda_available() {
  static const bool available = [] {
    int n = 0;
    const bool found = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    (void)cudaGetLastError();  // no driver or no device: not an error for later calls
    return found;
  }();
  return available;
}

// Every GPU test derives from this: skipped cleanly without a device; after the test, any
// asynchronous kernel fault surfaces as a failure of that test.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  }
  void TearDown() override {
    if (cuda_available()) {
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    }
  }
};

// n elements of T on the device, freed with the buffer.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) check(cudaMalloc(&ptr_, bytes()), "cudaMalloc");
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
  }

  T* get() const { return ptr_; }
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return n_ * sizeof(T); }

  void upload(const std::vector<T>& host) {
    check(cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice), "upload");
  }
  // Waits for the device, so a kernel's fault is reported here.
  std::vector<T> download() const {
    check(cudaDeviceSynchronize(), "kernel");
    std::vector<T> host(n_);
    check(cudaMemcpy(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost), "download");
    return host;
  }
  // All bytes 0xFF: bf16 0xFFFF and f32 0xFFFFFFFF are NaN, int32 -1; an element a kernel should
  // have written and did not stays so.
  void poison() { check(cudaMemset(ptr_, 0xFF, bytes()), "cudaMemset"); }

 private:
  std::size_t n_ = 0;
  T* ptr_ = nullptr;
};

inline uint16_t bits_of(bf16 x) {
  uint16_t b;
  std::memcpy(&b, &x, 2);
  return b;
}

inline std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16_rn(v[i]);
  return out;
}

inline std::vector<float> to_float(const std::vector<bf16>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = __bfloat162float(v[i]);
  return out;
}

// bf16-representable values drawn from N(mean, sd).
inline std::vector<float> normal_bf16_values(std::size_t n, float mean, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, sd);
  std::vector<float> out(n);
  for (float& x : out) x = __bfloat162float(__float2bfloat16_rn(dist(rng)));
  return out;
}

inline std::vector<float> normal_values(std::size_t n, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> out(n);
  for (float& x : out) x = dist(rng);
  return out;
}

// |got[i] - want[i]| <= rel * scale[i] + abs for every i (scale = |want| when empty); a NaN
// (an element never written) fails.
inline ::testing::AssertionResult all_within(const std::vector<float>& got,
                                             const std::vector<float>& want, double rel, double abs,
                                             const std::vector<float>& scale = {}) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes " << got.size() << " vs " << want.size();
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double s = scale.empty() ? std::fabs(want[i]) : std::fabs(scale[i]);
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(d <= rel * s + abs)) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements off; first [" << first << "]: got "
         << got[first] << ", want " << want[first];
}

inline ::testing::AssertionResult all_within(const std::vector<bf16>& got,
                                             const std::vector<float>& want, double rel, double abs,
                                             const std::vector<float>& scale = {}) {
  return all_within(to_float(got), want, rel, abs, scale);
}

// Bit for bit.
inline ::testing::AssertionResult all_equal(const std::vector<bf16>& got,
                                            const std::vector<bf16>& want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes " << got.size() << " vs " << want.size();
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (bits_of(got[i]) != bits_of(want[i]) && bad++ == 0) first = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg << bad << " of " << got.size() << " elements differ; first [" << first << "]: got 0x"
      << std::hex << bits_of(got[first]) << ", want 0x" << bits_of(want[first]);
  return ::testing::AssertionFailure() << msg.str();
}

// One bf16 ulp relative to the value: where the GPU and the CPU reference round nearly equal f32
// results to bf16, they are at most this far apart.
inline constexpr double kBf16Rel = 1.0 / 128;

}  // namespace flowrank::engine::cuda::testing
