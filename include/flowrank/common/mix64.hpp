#pragma once
// splitmix64's output function: a bijective 64-bit mixer. The seeded sampler's key stream and the
// dummy-weight generator are built from it on the host and on the device alike.
#include <cstdint>

#include "flowrank/common/host_device.hpp"

namespace flowrank {

inline constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

FLOWRANK_HOST_DEVICE inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// One splitmix64 draw from counter x: mix64 of x advanced by the golden gamma.
FLOWRANK_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  return mix64(x + kGoldenGamma);
}

}  // namespace flowrank
