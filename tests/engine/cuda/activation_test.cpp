// swiglu against cpu::swiglu (cpu::exp_ref and expf differ by an ulp or two, then one bf16
// rounding: within one bf16 ulp, relative 2^-7) and add_bias against bf16(q + b) (exact). Below a
// gate of -88, exp_ref stops at e^88 where expf overflows to inf: silu is then ~1e-36 on the CPU
// and -0 or ~1e-37 on the GPU, for a true value under 1e-38; kTailAbs covers that, and nothing
// else (a real activation is many orders of magnitude larger).
#include <vector>

#include "cuda_test_support.hpp"
#include "flowrank/engine/cpu/cpu_ops.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

using namespace testing;  // cuda_test_support.hpp

class Activation : public CudaTest {};

constexpr double kTailAbs = 1e-30;

TEST_F(Activation, SwigluMatchesTheCpu) {
  struct Shape {
    int32_t T, F;
  };
  for (const Shape& s : {Shape{1, 14336}, Shape{13, 1000}, Shape{5, 37}, Shape{300, 64}}) {
    // Gates wide enough for silu's tails (exp overflowing to inf for the most negative ones).
    const std::vector<float> gate_up =
        normal_bf16_values(static_cast<std::size_t>(s.T) * 2 * s.F, 0.0f, 30.0f, 21);
    std::vector<float> want(static_cast<std::size_t>(s.T) * s.F);
    for (int32_t r = 0; r < s.T; ++r) {
      const float* g = gate_up.data() + static_cast<std::ptrdiff_t>(r) * 2 * s.F;
      cpu::swiglu(g, g + s.F, want.data() + static_cast<std::ptrdiff_t>(r) * s.F, s.F);
    }
    DeviceBuffer<bf16> d_gate_up(to_bf16(gate_up)), act(want.size());
    act.poison();
    swiglu(d_gate_up.get(), act.get(), s.T, s.F, nullptr);
    EXPECT_TRUE(all_within(act.download(), want, kBf16Rel, kTailAbs)) << s.T << "x" << s.F;
  }
}

TEST_F(Activation, AddBiasIsExact) {
  struct Shape {
    int32_t T, n;
  };
  for (const Shape& s : {Shape{1, 4608}, Shape{11, 1152}, Shape{3, 45}}) {
    const std::vector<float> qkv =
        normal_bf16_values(static_cast<std::size_t>(s.T) * s.n, 0.0f, 2.0f, 22);
    const std::vector<float> bias = normal_bf16_values(s.n, 0.0f, 0.5f, 23);
    std::vector<float> want(qkv.size());
    for (std::size_t i = 0; i < qkv.size(); ++i) want[i] = qkv[i] + bias[i % s.n];
    DeviceBuffer<bf16> d_qkv(to_bf16(qkv)), d_bias(to_bf16(bias));
    add_bias(d_qkv.get(), d_bias.get(), s.T, s.n, nullptr);
    EXPECT_TRUE(all_equal(d_qkv.download(), to_bf16(want))) << s.T << "x" << s.n;
  }
}

}  // namespace
}  // namespace flowrank::engine::cuda
