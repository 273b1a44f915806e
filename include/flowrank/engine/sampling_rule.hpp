#pragma once
// The arithmetic of the sampling rule (sampler.hpp), shared by the CPU Sampler and the CUDA
// sampler (engine/cuda/sample.cu) so that both pick the same token from the same logits, always.
// Only IEEE double +, -, *, / (each rounded on its own: no library exp, no fused multiply-add;
// __dmul_rn and friends on the device, -ffp-contract=off on the host) and integer operations, so
// every result is bit for bit the same on either side. Integer weights make every sum exact, so
// the GPU may add them in any order.
#include <bit>
#include <cstdint>

#include "flowrank/common/host_device.hpp"
#include "flowrank/common/mix64.hpp"

namespace flowrank::engine::sampling {

// A token's weight is q = min(floor(exp(z) * 2^32), 2^32 - 1) for z = (logit - max) / T <= 0:
// the top token weighs 2^32 - 1, and a token below 2^-32 of it weighs 0 and is never drawn.
inline constexpr double kWeightScale = 4294967296.0;  // 2^32
inline constexpr uint32_t kMaxWeight = 0xFFFFFFFFu;
// Below this z, exp(z) < 2^-33: the weight is 0 whatever the rounding.
inline constexpr double kMinLogWeight = -23.0;

namespace ieee {

FLOWRANK_HOST_DEVICE inline double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

FLOWRANK_HOST_DEVICE inline double add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

FLOWRANK_HOST_DEVICE inline double sub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

FLOWRANK_HOST_DEVICE inline double div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

// 2^n for a normal exponent (-1022 <= n <= 1023), exactly.
FLOWRANK_HOST_DEVICE inline double pow2(int n) {
  const auto bits = static_cast<uint64_t>(n + 1023) << 52;
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  return std::bit_cast<double>(bits);
#endif
}

FLOWRANK_HOST_DEVICE inline uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  return std::bit_cast<uint32_t>(x);
#endif
}

}  // namespace ieee

// exp(z) for kMinLogWeight < z <= 0, within a few double ulps: z = n ln2 + r with |r| <= ln2/2
// (Cody and Waite's two-part ln 2, so n * ln2_hi is exact), then the Taylor polynomial of degree
// 12 in r (truncation error below 2e-16) in Horner form, times 2^n.
FLOWRANK_HOST_DEVICE inline double exp_nonpositive(double z) {
  using namespace ieee;
  constexpr double kLog2e = 0x1.71547652b82fep+0;
  constexpr double kLn2Hi = 0x1.62e42fee00000p-1;
  constexpr double kLn2Lo = 0x1.a39ef35793c76p-33;
  // 0.5 - z log2(e) >= 0.5, so truncation is floor: n is z log2(e) rounded to nearest.
  const int n = -static_cast<int>(sub(0.5, mul(z, kLog2e)));
  const double dn = static_cast<double>(n);
  const double r = sub(sub(z, mul(dn, kLn2Hi)), mul(dn, kLn2Lo));
  double p = 0x1.1eed8eff8d898p-29;  // 1/12!
  p = add(mul(p, r), 0x1.ae64567f544e4p-26);
  p = add(mul(p, r), 0x1.27e4fb7789f5cp-22);
  p = add(mul(p, r), 0x1.71de3a556c734p-19);
  p = add(mul(p, r), 0x1.a01a01a01a01ap-16);
  p = add(mul(p, r), 0x1.a01a01a01a01ap-13);
  p = add(mul(p, r), 0x1.6c16c16c16c17p-10);
  p = add(mul(p, r), 0x1.1111111111111p-7);
  p = add(mul(p, r), 0x1.5555555555555p-5);
  p = add(mul(p, r), 0x1.5555555555555p-3);
  p = add(mul(p, r), 0.5);
  p = add(mul(p, r), 1.0);
  p = add(mul(p, r), 1.0);
  return mul(p, pow2(n));
}

// 1 / T in double, the factor every scaled logit gap is multiplied by.
FLOWRANK_HOST_DEVICE inline double inverse_temperature(float temperature) {
  return ieee::div(1.0, static_cast<double>(temperature));
}

// The integer weight of a token: z = (logit - max_logit) * inv_t in double; 0 when z is NaN or
// at most kMinLogWeight (NaN and -inf logits weigh 0).
FLOWRANK_HOST_DEVICE inline uint32_t token_weight(float logit, float max_logit, double inv_t) {
  using namespace ieee;
  const double z = mul(sub(static_cast<double>(logit), static_cast<double>(max_logit)), inv_t);
  if (!(z > kMinLogWeight)) return 0;
  if (z >= 0.0) return kMaxWeight;
  const double w = mul(exp_nonpositive(z), kWeightScale);  // exact: a power of two
  return w >= 4294967295.0 ? kMaxWeight : static_cast<uint32_t>(w);
}

// Orders floats for greedy argmax: larger is better, -0 equals +0, NaN below everything.
FLOWRANK_HOST_DEVICE inline uint32_t logit_order_key(float x) {
  if (x != x) return 0;
  const uint32_t bits = ieee::float_bits(x == 0.0f ? 0.0f : x);
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

// The draw's 53 random bits: splitmix64 rounds over (seed, workflow, step, index).
FLOWRANK_HOST_DEVICE inline uint64_t sample_bits53(uint64_t seed, uint64_t workflow, uint64_t step,
                                                   uint64_t index) {
  uint64_t h = mix64(seed + kGoldenGamma);
  h = mix64(h ^ mix64(workflow + 2 * kGoldenGamma));
  h = mix64(h ^ mix64(step + 3 * kGoldenGamma));
  h = mix64(h ^ mix64(index + 4 * kGoldenGamma));
  return h >> 11;
}

// floor(u53 * total / 2^53) with a 128-bit product: the draw's target in [0, total).
FLOWRANK_HOST_DEVICE inline uint64_t draw_target(uint64_t u53, uint64_t total) {
  const uint64_t a0 = u53 & 0xFFFFFFFFu, a1 = u53 >> 32;
  const uint64_t b0 = total & 0xFFFFFFFFu, b1 = total >> 32;
  const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
  const uint64_t hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  const uint64_t lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
  return (hi << 11) | (lo >> 53);
}

// top-p's integer threshold: ceil(top_p * total) with one double multiply, clamped to
// [1, total] (total < 2^53, so the conversions are exact).
FLOWRANK_HOST_DEVICE inline uint64_t top_p_threshold(float top_p, uint64_t total) {
  const double t = ieee::mul(static_cast<double>(top_p), static_cast<double>(total));
  if (!(t > 1.0)) return 1;
  if (t >= static_cast<double>(total)) return total;
  auto c = static_cast<uint64_t>(t);
  if (static_cast<double>(c) < t) ++c;
  return c;
}

}  // namespace flowrank::engine::sampling
