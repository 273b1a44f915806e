// The RMSNorm kernels against cpu::rms_norm (the CPU runner's op for each plan step). The GPU
// sums squares in a tree rather than in index order, so its f32 scale can differ by an ulp:
// bf16 outputs are compared within one bf16 ulp (relative 2^-7), the f32 residual stream x
// within 2^-20 of |x| + |update|.
#include <vector>

#include "cuda_test_support.hpp"
#include "flowrank/engine/cpu/cpu_ops.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

using namespace testing;  // cuda_test_support.hpp

constexpr float kEps = 1e-5f;
constexpr double kXRel = 1.0 / (1 << 20);

struct Shape {
  int32_t T, E;
};
// Vector paths (E % 8 == 0) and scalar ones, one row and many.
const Shape kShapes[] = {{1, 4096}, {7, 1001}, {300, 576}, {5, 12}, {3, 8}, {2, 5}};

// rmsnorm(row) * w on the host, row by row.
std::vector<float> rms_rows(const std::vector<float>& x, const std::vector<float>& w, int32_t E) {
  std::vector<float> out(x.size());
  for (std::size_t r = 0; r < x.size() / E; ++r)
    cpu::rms_norm(x.data() + r * E, w.data(), out.data() + r * E, E, kEps);
  return out;
}

class NormKernels : public CudaTest {};

TEST_F(NormKernels, EmbedRowsLooksUpAndNormalises) {
  for (const Shape& s : kShapes) {
    const int32_t vocab = 50;
    const std::vector<float> table =
        normal_bf16_values(static_cast<std::size_t>(vocab) * s.E, 0.0f, 0.05f, 1);
    const std::vector<float> w = normal_bf16_values(s.E, 1.0f, 0.2f, 2);
    std::vector<int32_t> ids(s.T);
    for (int32_t r = 0; r < s.T; ++r) ids[r] = (r * 37 + 11) % vocab;
    std::vector<float> x_want(static_cast<std::size_t>(s.T) * s.E);
    for (int32_t r = 0; r < s.T; ++r)
      std::copy_n(table.begin() + static_cast<std::ptrdiff_t>(ids[r]) * s.E, s.E,
                  x_want.begin() + static_cast<std::ptrdiff_t>(r) * s.E);
    DeviceBuffer<int32_t> d_ids(ids);
    DeviceBuffer<bf16> d_table(to_bf16(table)), d_w(to_bf16(w));
    for (bool with_norm : {true, false}) {
      DeviceBuffer<float> x(x_want.size());
      DeviceBuffer<bf16> h(x_want.size());
      x.poison();
      h.poison();
      embed_rows(d_ids.get(), d_table.get(), s.T, s.E, with_norm ? d_w.get() : nullptr, kEps,
                 x.get(), h.get(), nullptr);
      EXPECT_TRUE(all_within(x.download(), x_want, 0.0, 0.0)) << s.T << "x" << s.E;  // exact
      const std::vector<float> h_want = with_norm ? rms_rows(x_want, w, s.E) : x_want;
      EXPECT_TRUE(all_within(h.download(), h_want, kBf16Rel, 0.0))
          << s.T << "x" << s.E << " norm " << with_norm;
    }
  }
}

TEST_F(NormKernels, ResidualNormAddsAndNormalises) {
  for (const Shape& s : kShapes) {
    const std::size_t n = static_cast<std::size_t>(s.T) * s.E;
    const std::vector<float> x0 = normal_values(n, 2.0f, 3);
    const std::vector<float> proj = normal_bf16_values(n, 0.0f, 1.0f, 4);
    const std::vector<float> post_w = normal_bf16_values(s.E, 1.0f, 0.2f, 5);
    const std::vector<float> norm_w = normal_bf16_values(s.E, 1.0f, 0.2f, 6);
    DeviceBuffer<bf16> d_proj(to_bf16(proj)), d_post(to_bf16(post_w)), d_norm(to_bf16(norm_w));
    for (bool post : {false, true}) {
      for (bool norm : {false, true}) {
        // The plan's kResidual on the CPU.
        const std::vector<float> p = post ? rms_rows(proj, post_w, s.E) : proj;
        std::vector<float> x_want(n), scale(n);
        for (std::size_t i = 0; i < n; ++i) {
          x_want[i] = x0[i] + p[i];
          scale[i] = std::fabs(x0[i]) + std::fabs(p[i]);
        }
        DeviceBuffer<float> x(x0);
        DeviceBuffer<bf16> h(n);
        h.poison();
        residual_norm(d_proj.get(), post ? d_post.get() : nullptr, norm ? d_norm.get() : nullptr,
                      kEps, s.T, s.E, x.get(), h.get(), nullptr);
        const std::vector<float> x_got = x.download();
        EXPECT_TRUE(all_within(x_got, x_want, kXRel, 0.0, scale))
            << s.T << "x" << s.E << " post " << post << " norm " << norm;
        // h from the GPU's own x (where x cancels, an ulp of difference in x is a large relative
        // one in h): rmsnorm(x) * w, or bf16(x).
        const std::vector<float> h_want = norm ? rms_rows(x_got, norm_w, s.E) : x_got;
        EXPECT_TRUE(all_within(h.download(), h_want, kBf16Rel, 0.0))
            << s.T << "x" << s.E << " post " << post << " norm " << norm;
      }
    }
  }
}

TEST_F(NormKernels, QkNormNormalisesQAndKAndLeavesV) {
  struct QkShape {
    int32_t T, nq, nkv;
  };
  for (const QkShape& s : {QkShape{1, 2048, 512}, QkShape{9, 896, 128}, QkShape{4, 100, 36}}) {
    const int32_t row = s.nq + 2 * s.nkv;
    const std::vector<float> qkv =
        normal_bf16_values(static_cast<std::size_t>(s.T) * row, 0.0f, 1.5f, 7);
    const std::vector<float> wq = normal_bf16_values(s.nq, 1.0f, 0.2f, 8);
    const std::vector<float> wk = normal_bf16_values(s.nkv, 1.0f, 0.2f, 9);
    std::vector<float> want = qkv;
    for (int32_t r = 0; r < s.T; ++r) {
      float* q = want.data() + static_cast<std::ptrdiff_t>(r) * row;
      cpu::rms_norm(q, wq.data(), q, s.nq, kEps);
      cpu::rms_norm(q + s.nq, wk.data(), q + s.nq, s.nkv, kEps);
    }
    DeviceBuffer<bf16> d_qkv(to_bf16(qkv)), d_wq(to_bf16(wq)), d_wk(to_bf16(wk));
    qk_norm(d_qkv.get(), d_wq.get(), d_wk.get(), kEps, s.T, s.nq, s.nkv, nullptr);
    // v is untouched (exact); q and k within a bf16 ulp.
    EXPECT_TRUE(all_within(d_qkv.download(), want, kBf16Rel, 0.0))
        << s.T << " x (" << s.nq << ", " << s.nkv << ")";
  }
}

TEST_F(NormKernels, GatherNormTakesTheListedRows) {
  for (const Shape& s : kShapes) {
    const std::vector<float> x = normal_values(static_cast<std::size_t>(s.T) * s.E, 2.0f, 10);
    const std::vector<float> w = normal_bf16_values(s.E, 1.0f, 0.2f, 11);
    const std::vector<int32_t> rows = {s.T - 1, 0, (s.T - 1) / 2, s.T - 1};  // repeats allowed
    std::vector<float> picked;
    for (int32_t r : rows)
      picked.insert(picked.end(), x.begin() + static_cast<std::ptrdiff_t>(r) * s.E,
                    x.begin() + static_cast<std::ptrdiff_t>(r + 1) * s.E);
    DeviceBuffer<float> d_x(x);
    DeviceBuffer<int32_t> d_rows(rows);
    DeviceBuffer<bf16> d_w(to_bf16(w)), out(picked.size());
    out.poison();
    gather_norm(d_x.get(), d_rows.get(), static_cast<int32_t>(rows.size()), s.E, d_w.get(), kEps,
                out.get(), nullptr);
    EXPECT_TRUE(all_within(out.download(), rms_rows(picked, w, s.E), kBf16Rel, 0.0))
        << s.T << "x" << s.E;
  }
}

}  // namespace
}  // namespace flowrank::engine::cuda
