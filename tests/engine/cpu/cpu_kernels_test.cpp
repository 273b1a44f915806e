// The CPU kernels against their scalar references (cpu_ops), bit for bit, on every kernel set
// this processor runs; the references against double precision; and the batch invariance the
// runner builds on: a row's result does not depend on the rows, tiles or threads around it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "flowrank/engine/cpu/cpu_kernels.hpp"
#include "flowrank/engine/cpu/cpu_ops.hpp"

namespace flowrank::engine::cpu {
namespace {

bool same_bits(const float* a, const float* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

// Every kernel set this processor runs (the portable one at least), restoring the default after.
class EachIsa : public ::testing::Test {
 protected:
  void TearDown() override { set_kernel_isa(saved_); }
  template <typename Fn>
  void for_each_isa(Fn&& fn) {
    for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
      if (set_kernel_isa(isa) != isa) continue;  // not on this processor
      SCOPED_TRACE(isa_name(isa));
      fn(isa);
    }
  }
  Isa saved_ = kernel_isa();
};

// Random rows of `type`: random quants, small finite f16 scales.
std::vector<unsigned char> random_rows(TensorType type, int64_t rows, int64_t k,
                                       std::mt19937& rng) {
  const std::size_t bytes = tensor_bytes(type, rows * k);
  std::vector<unsigned char> data(bytes);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : data) b = static_cast<unsigned char>(byte(rng));
  // f16 in [2^-9, 2^-4), either sign: exponent bits 6..10.
  std::uniform_int_distribution<int> exp(6, 10), mant(0, 1023), sign(0, 1);
  const auto put_half = [&](unsigned char* p, bool may_be_negative) {
    const auto h = static_cast<uint16_t>(((may_be_negative && sign(rng)) ? 0x8000 : 0) |
                                         (exp(rng) << 10) | mant(rng));
    std::memcpy(p, &h, 2);
  };
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t be = block_elements(type);
  const std::size_t bb = tensor_bytes(type, be);
  for (std::size_t at = 0; at < bytes; at += bb) {
    unsigned char* b = data.data() + at;
    switch (type) {
      case TensorType::kF32:
        for (std::size_t i = 0; i < bb; i += 4) {
          const float v = normal(rng);
          std::memcpy(b + i, &v, 4);
        }
        break;
      case TensorType::kF16:
        put_half(b, true);
        break;
      case TensorType::kBF16: {
        const float v = normal(rng);
        uint32_t u;
        std::memcpy(&u, &v, 4);
        const auto h = static_cast<uint16_t>(u >> 16);
        std::memcpy(b, &h, 2);
        break;
      }
      case TensorType::kQ8_0:
      case TensorType::kQ4_0:
        put_half(b, true);
        break;
      case TensorType::kQ4_1:
      case TensorType::kQ4_K:
        put_half(b, true);
        put_half(b + 2, true);
        break;
      case TensorType::kQ6_K:
        put_half(b + 208, true);
        break;
    }
  }
  return data;
}

std::vector<float> random_floats(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

constexpr TensorType kTypes[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,
                                 TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_1,
                                 TensorType::kQ4_K, TensorType::kQ6_K};

// ---------------------------------------------------------------------------------------------
// References.

TEST(CpuOps, Dot16IsTheDoubleProductWithinRounding) {
  std::mt19937 rng(3);
  for (int64_t k : {1, 15, 16, 17, 100, 576, 1536}) {
    const auto x = random_floats(static_cast<std::size_t>(k), rng);
    const auto w = random_floats(static_cast<std::size_t>(k), rng);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < k; ++i) {
      ref += static_cast<double>(x[i]) * w[i];
      mag += std::fabs(static_cast<double>(x[i]) * w[i]);
    }
    EXPECT_NEAR(dot16(x.data(), w.data(), k), ref, 1e-6 * mag + 1e-30) << "k=" << k;
  }
}

TEST(CpuOps, Dot16SumsIn16LanesThenATree) {
  // Lane i % 16 gets element i: a vector whose only nonzero products sit in one lane adds up in
  // that lane's order (1e8 + 1 - 1e8 = 0 in f32, not 1).
  std::vector<float> x(48, 0.0f), w(48, 1.0f);
  x[3] = 1e8f;
  x[19] = 1.0f;
  x[35] = -1e8f;
  EXPECT_EQ(dot16(x.data(), w.data(), 48), 0.0f);
  // In different lanes the tree adds 1e8 + (-1e8) first (lanes 3 and 11 meet at step one).
  x[19] = 0.0f;
  x[35] = 0.0f;
  x[11] = -1e8f;
  x[4] = 1.0f;
  EXPECT_EQ(dot16(x.data(), w.data(), 48), 1.0f);
  const float p[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  EXPECT_EQ(reduce16(p), 136.0f);
  EXPECT_EQ(sum16(p, 16), 136.0f);
}

TEST(CpuOps, ExpRefIsWithinTwoUlpOfExp) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double ref = std::exp(static_cast<double>(x));
    const double rel = std::fabs(exp_ref(x) - ref) / ref;
    worst = std::max(worst, rel);
  }
  EXPECT_LT(worst, 2.5e-7);  // f32 ulp is 1.2e-7 relative at worst
  EXPECT_EQ(exp_ref(0.0f), 1.0f);
  EXPECT_EQ(exp_ref(-100.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(exp_ref(1000.0f)));
}

TEST(CpuOps, AttendIsSoftmaxAttentionInDouble) {
  std::mt19937 rng(5);
  const int hd = 16, bs = 4, n_kv = 2, group = 2;
  const int32_t pos = 9, blocks = 3;
  const std::size_t stride = static_cast<std::size_t>(bs) * n_kv * hd;
  const auto k = random_floats(stride * blocks, rng), v = random_floats(stride * blocks, rng);
  const auto q = random_floats(static_cast<std::size_t>(group) * hd, rng);
  PagedKv kv{k.data(), v.data(), stride, bs, n_kv, hd};
  const std::vector<int32_t> pages = {2, 0, 1};
  std::vector<float> out(static_cast<std::size_t>(group) * hd), scores;
  const float scale = 0.25f;
  for (int32_t first : {0, 4}) {
    attend(q.data(), group, 1, pages, first, pos, kv, scale, out.data(), scores);
    for (int g = 0; g < group; ++g) {
      std::vector<double> s;
      double mx = -1e300, sum = 0;
      for (int32_t j = first; j <= pos; ++j) {
        double dot = 0;
        for (int d = 0; d < hd; ++d) dot += q[g * hd + d] * *kv.key(pages[j / bs], 1, d, j % bs);
        s.push_back(dot * scale);
        mx = std::max(mx, s.back());
      }
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int d = 0; d < hd; ++d) {
        double o = 0;
        for (int32_t j = first; j <= pos; ++j)
          o += s[static_cast<std::size_t>(j - first)] * kv.value(pages[j / bs], 1, j % bs)[d];
        EXPECT_NEAR(out[static_cast<std::size_t>(g * hd + d)], o / sum, 1e-5);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels against the references, bit for bit, on every kernel set.

TEST_F(EachIsa, DequantizeRowsIsTheReference) {
  std::mt19937 rng(1);
  for (TensorType type : kTypes) {
    const int64_t rows = 3, k = 512;
    const auto data = random_rows(type, rows, k, rng);
    std::vector<float> ref(static_cast<std::size_t>(rows * k));
    dequantize(type, data.data(), ref.data(), rows * k);
    for_each_isa([&](Isa) {
      std::vector<float> got(ref.size());
      dequantize_rows(WeightRows{type, data.data(), rows, k}, 0, rows, got.data());
      EXPECT_TRUE(same_bits(got.data(), ref.data(), ref.size())) << tensor_type_name(type);
    });
  }
}

// y = x W^T through matmul, checked element by element against dot16 over dequantized rows.
void expect_matmul_is_dot16(std::span<const WeightRows> parts, const std::vector<float>& x,
                            int64_t m, int threads) {
  const int64_t k = parts[0].k;
  int64_t n = 0;
  for (const WeightRows& w : parts) n += w.rows;
  std::vector<float> y(static_cast<std::size_t>(m * n), -1.0f);
  ThreadPool pool(threads);
  matmul(x.data(), m, k, parts, y.data(), n, pool);
  int64_t col = 0, bad = 0;
  std::vector<float> row(static_cast<std::size_t>(k));
  for (const WeightRows& w : parts) {
    for (int64_t j = 0; j < w.rows; ++j, ++col) {
      dequantize(w.type, w.row(j), row.data(), k);
      for (int64_t i = 0; i < m; ++i) {
        const float ref = dot16(x.data() + i * k, row.data(), k);
        if (std::memcmp(&ref, &y[static_cast<std::size_t>(i * n + col)], 4) != 0) ++bad;
      }
    }
  }
  EXPECT_EQ(bad, 0) << "m=" << m << " n=" << n << " k=" << k << " threads=" << threads;
}

TEST_F(EachIsa, MatmulIsDot16OfEveryTypeAndShape) {
  std::mt19937 rng(2);
  for (TensorType type : kTypes) {
    SCOPED_TRACE(tensor_type_name(type));
    const int64_t k = block_elements(type) == 1 ? 100 : 512;  // 100: a partial vector at the end
    const auto data = random_rows(type, 37, k, rng);
    const WeightRows w{type, data.data(), 37, k};
    for_each_isa([&](Isa) {
      for (int64_t m : {1, 2, 3, 4, 5, 7, 16, 29}) {
        const auto x = random_floats(static_cast<std::size_t>(m * k), rng);
        expect_matmul_is_dot16({&w, 1}, x, m, 2);
      }
    });
  }
}

TEST_F(EachIsa, MatmulStacksPartsOfDifferentTypes) {
  std::mt19937 rng(4);
  const int64_t k = 256;
  const auto a = random_rows(TensorType::kQ4_1, 20, k, rng);
  const auto b = random_rows(TensorType::kQ6_K, 7, k, rng);
  const auto c = random_rows(TensorType::kF16, 13, k, rng);
  const WeightRows parts[] = {{TensorType::kQ4_1, a.data(), 20, k},
                              {TensorType::kQ6_K, b.data(), 7, k},
                              {TensorType::kF16, c.data(), 13, k}};
  for_each_isa([&](Isa) {
    for (int64_t m : {1, 6}) expect_matmul_is_dot16(parts, random_floats(m * k, rng), m, 2);
  });
}

TEST_F(EachIsa, MatmulRowsDoNotDependOnTheirBatchOrThreads) {
  // SmolLM2's projection shapes, large enough for several weight chunks and x blocks.
  std::mt19937 rng(6);
  struct Shape {
    int64_t n, k;
  };
  for (Shape s : {Shape{960, 576}, Shape{576, 1536}, Shape{3072, 576}}) {
    const auto data = random_rows(TensorType::kQ4_1, s.n, s.k, rng);
    const WeightRows w{TensorType::kQ4_1, data.data(), s.n, s.k};
    // 230 rows: more than one block of x rows per weight chunk (the portable set, slow where
    // fma is a library call, takes fewer).
    const int64_t m_max = 230;
    const auto x = random_floats(static_cast<std::size_t>(m_max * s.k), rng);
    std::vector<float> batch(static_cast<std::size_t>(m_max * s.n));
    std::vector<float> alone(static_cast<std::size_t>(s.n));
    ThreadPool one(1), two(2);
    for_each_isa([&](Isa isa) {
      const int64_t m = isa == Isa::kPortable ? 24 : m_max;
      matmul(x.data(), m, s.k, {&w, 1}, batch.data(), s.n, two);
      int bad = 0;
      for (int64_t r : {int64_t{0}, int64_t{1}, int64_t{17}, m / 2, m - 1}) {
        for (ThreadPool* pool : {&one, &two}) {
          matmul(x.data() + r * s.k, 1, s.k, {&w, 1}, alone.data(), s.n, *pool);
          if (!same_bits(alone.data(), batch.data() + r * s.n, static_cast<std::size_t>(s.n)))
            ++bad;
        }
      }
      EXPECT_EQ(bad, 0) << "n=" << s.n << " k=" << s.k;
    });
  }
}

TEST_F(EachIsa, SwigluRowsIsTheReference) {
  std::mt19937 rng(8);
  const int64_t n = 77;
  auto gu = random_floats(static_cast<std::size_t>(2 * n), rng, 4.0f);
  gu[0] = 100.0f;  // exp_ref's clamps
  gu[1] = -100.0f;
  std::vector<float> ref(static_cast<std::size_t>(n));
  swiglu(gu.data(), gu.data() + n, ref.data(), n);
  for_each_isa([&](Isa) {
    std::vector<float> got(static_cast<std::size_t>(n));
    swiglu_rows(gu.data(), got.data(), 1, n);
    EXPECT_TRUE(same_bits(got.data(), ref.data(), ref.size()));
  });
}

struct AttentionCase {
  int head_dim, block_size, group, window, rows, pos0;
};

TEST_F(EachIsa, AttentionTilesAreAttendPerQuery) {
  std::mt19937 rng(9);
  const int n_kv = 3;
  const AttentionCase cases[] = {
      {64, 16, 3, 0, 1, 0}, {64, 16, 3, 0, 1, 40},  {64, 16, 3, 0, 8, 33},  {64, 16, 3, 0, 8, 0},
      {16, 4, 2, 0, 5, 7},  {16, 4, 2, 6, 5, 11},   {128, 32, 4, 0, 6, 70}, {80, 16, 1, 0, 24, 3},
      {64, 8, 3, 0, 3, 95}, {64, 16, 8, 20, 3, 60}, {16, 16, 3, 0, 8, 100}, {32, 64, 2, 0, 12, 64}};
  for (const AttentionCase& c : cases) {
    SCOPED_TRACE("hd " + std::to_string(c.head_dim) + " bs " + std::to_string(c.block_size) +
                 " group " + std::to_string(c.group) + " window " + std::to_string(c.window) +
                 " rows " + std::to_string(c.rows) + " pos0 " + std::to_string(c.pos0));
    const int32_t last = c.pos0 + c.rows - 1;
    const int32_t n_blocks = last / c.block_size + 1;
    const std::size_t stride = static_cast<std::size_t>(c.block_size) * n_kv * c.head_dim;
    // Pages shuffled over a pool with a spare block. Positions no query may see (after the
    // last, before the first query's window) hold NaN: one read of them would show.
    std::vector<int32_t> pages(static_cast<std::size_t>(n_blocks));
    std::iota(pages.begin(), pages.end(), 1);
    std::shuffle(pages.begin(), pages.end(), rng);
    auto k = random_floats(stride * (n_blocks + 1), rng);
    auto v = random_floats(stride * (n_blocks + 1), rng);
    const PagedKv kv{k.data(), v.data(), stride, c.block_size, n_kv, c.head_dim};
    const int32_t first_seen = c.window > 0 ? std::max(0, c.pos0 - c.window + 1) : 0;
    for (int32_t j = 0; j < n_blocks * c.block_size; ++j) {
      if (j >= first_seen && j <= last) continue;
      const int32_t page = pages[static_cast<std::size_t>(j / c.block_size)];
      for (int h = 0; h < n_kv; ++h) {
        for (int d = 0; d < c.head_dim; ++d)
          *const_cast<float*>(kv.key(page, h, d, j % c.block_size)) = NAN;
        float* vj = const_cast<float*>(kv.value(page, h, j % c.block_size));
        std::fill(vj, vj + c.head_dim, NAN);
      }
    }
    const int64_t width = int64_t{n_kv} * c.group * c.head_dim;  // all query heads of a row
    const auto q = random_floats(static_cast<std::size_t>(c.rows * width), rng);
    const int kv_head = n_kv - 1;
    const int64_t head0 = int64_t{kv_head} * c.group * c.head_dim;
    std::vector<float> ref(static_cast<std::size_t>(c.rows * width), 0.0f), scores;
    for (int r = 0; r < c.rows; ++r) {
      const int32_t pos = c.pos0 + r;
      const int32_t first = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
      attend(q.data() + r * width + head0, c.group, kv_head, pages, first, pos, kv, 0.125f,
             ref.data() + r * width + head0, scores);
    }
    for_each_isa([&](Isa) {
      std::vector<float> got(ref.size(), 0.0f), scratch;
      AttentionTile t;
      t.q = q.data() + head0;
      t.ldq = width;
      t.out = got.data() + head0;
      t.ldo = width;
      t.rows = c.rows;
      t.pos0 = c.pos0;
      t.group = c.group;
      t.kv_head = kv_head;
      t.window = c.window;
      t.pages = pages;
      t.kv = kv;
      t.scale = 0.125f;
      attend_tile(t, scratch);
      EXPECT_TRUE(same_bits(got.data(), ref.data(), ref.size()));
    });
  }
}

}  // namespace
}  // namespace flowrank::engine::cpu
