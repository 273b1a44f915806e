// RoPE against cpu::rope_cos_sin and cpu::rope_apply: the tables of real model plans (llama3
// scaling, OLMo-3's YaRN with mscale != 1) within 2 f32 ulps (cos/sin in double on both sides,
// libraries differ by an ulp or two, then one rounding), and the rotation bit for bit given the
// same table (the same f32 products and sums, then one bf16 rounding).
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "flowrank/engine/cpu/cpu_ops.hpp"
#include "flowrank/engine/model_plan.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

using namespace testing;  // cuda_test_support.hpp

double ulp(float x) {
  const float a = std::fabs(x);
  return static_cast<double>(std::nextafter(a, std::numeric_limits<float>::infinity())) - a;
}

// The host's table: max_pos rows of (cos, sin) pairs.
std::vector<float2> host_table(const RopeTable& t, int32_t max_pos) {
  const std::size_t pairs = t.inv_freq.size();
  std::vector<float2> out(static_cast<std::size_t>(max_pos) * pairs);
  std::vector<float> row(2 * pairs);
  for (int32_t pos = 0; pos < max_pos; ++pos) {
    cpu::rope_cos_sin(t, pos, row.data());
    for (std::size_t i = 0; i < pairs; ++i)
      out[static_cast<std::size_t>(pos) * pairs + i] = make_float2(row[2 * i], row[2 * i + 1]);
  }
  return out;
}

class Rope : public CudaTest {};

TEST_F(Rope, TablesOfRealPlansWithinTwoUlps) {
  const int32_t max_pos = 32771;  // angles up to ~3e4 rad
  for (const std::string shape : {"smollm2-135m", "llama3-8b", "olmo3-7b"}) {
    const ModelPlan plan = ModelPlan::build(dummy_model_config(shape));
    for (const RopeTable& t : plan.ropes) {
      const auto pairs = static_cast<int32_t>(t.inv_freq.size());
      DeviceBuffer<double> inv_freq(t.inv_freq);
      DeviceBuffer<float2> table(static_cast<std::size_t>(max_pos) * pairs);
      table.poison();
      rope_table(inv_freq.get(), pairs, t.mscale, max_pos, table.get(), nullptr);
      const std::vector<float2> got = table.download();
      const std::vector<float2> want = host_table(t, max_pos);
      std::size_t bad = 0, first = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        const bool ok = std::fabs(got[i].x - want[i].x) <= 2 * ulp(want[i].x) &&
                        std::fabs(got[i].y - want[i].y) <= 2 * ulp(want[i].y);
        if (!ok && bad++ == 0) first = i;
      }
      EXPECT_EQ(bad, 0u) << shape << " mscale " << t.mscale << ": first at pos " << first / pairs
                         << " pair " << first % pairs << ": got (" << got[first].x << ", "
                         << got[first].y << "), want (" << want[first].x << ", " << want[first].y
                         << ")";
    }
  }
}

TEST_F(Rope, ApplyRotatesQAndKLikeTheCpu) {
  struct Case {
    int32_t n_head, n_head_kv, head_dim, dims;
    RopeStyle style;
  };
  const Case cases[] = {{32, 8, 128, 128, RopeStyle::kInterleaved},
                        {4, 2, 64, 64, RopeStyle::kNeox},
                        {6, 2, 64, 32, RopeStyle::kNeox},  // partial: the last 32 dims stay
                        {3, 1, 80, 80, RopeStyle::kInterleaved}};
  const int32_t T = 17, max_pos = 2048;
  std::mt19937 rng(3);
  for (const Case& c : cases) {
    RopeTable t;
    t.style = c.style;
    t.dims = c.dims;
    t.mscale = 1.1f;
    for (int32_t i = 0; i < c.dims / 2; ++i)
      t.inv_freq.push_back(std::pow(10000.0, -2.0 * i / c.dims));
    const int32_t nq = c.n_head * c.head_dim, nkv = c.n_head_kv * c.head_dim;
    const int32_t row = nq + 2 * nkv;
    const std::vector<float> qkv =
        normal_bf16_values(static_cast<std::size_t>(T) * row, 0.0f, 1.0f, 4);
    std::vector<int32_t> positions(T);
    for (int32_t& p : positions) p = static_cast<int32_t>(rng() % max_pos);
    positions[0] = 0;
    positions[1] = max_pos - 1;
    const std::vector<float2> table = host_table(t, max_pos);
    std::vector<float> want = qkv;
    for (int32_t r = 0; r < T; ++r) {
      float* q = want.data() + static_cast<std::ptrdiff_t>(r) * row;
      const float* cs = reinterpret_cast<const float*>(
          table.data() + static_cast<std::size_t>(positions[r]) * (c.dims / 2));
      cpu::rope_apply(t, q, c.n_head, c.head_dim, cs);
      cpu::rope_apply(t, q + nq, c.n_head_kv, c.head_dim, cs);
    }
    DeviceBuffer<bf16> d_qkv(to_bf16(qkv));
    DeviceBuffer<int32_t> d_pos(positions);
    DeviceBuffer<float2> d_table(table);
    apply_rope(d_qkv.get(), d_pos.get(), d_table.get(), c.style == RopeStyle::kInterleaved, c.dims,
               c.head_dim, c.n_head, c.n_head_kv, T, nullptr);
    EXPECT_TRUE(all_equal(d_qkv.download(), to_bf16(want)))
        << c.n_head << "/" << c.n_head_kv << " heads of " << c.head_dim << ", dims " << c.dims;
  }
}

}  // namespace
}  // namespace flowrank::engine::cuda
