#include "flowrank/engine/cpu/cpu_ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flowrank::engine::cpu {
namespace {

// Fixed 8-way partial sums: vectorizable without -ffast-math, and a fixed order.
float dot(const float* a, const float* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Query heads per KV head that attention keeps on the stack (GQA groups are 1 to 8 in practice).
constexpr int kMaxGroup = 64;

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void rope_cos_sin(const RopeTable& table, int32_t pos, float* out) {
  for (std::size_t i = 0; i < table.inv_freq.size(); ++i) {
    const double angle = static_cast<double>(pos) * table.inv_freq[i];
    out[2 * i] = static_cast<float>(std::cos(angle)) * table.mscale;
    out[2 * i + 1] = static_cast<float>(std::sin(angle)) * table.mscale;
  }
}

void rope_apply(const RopeTable& table, float* v, int32_t n_heads, int32_t head_dim,
                const float* cos_sin) {
  const int pairs = table.dims / 2;
  const bool interleaved = table.style == RopeStyle::kInterleaved;
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + static_cast<std::ptrdiff_t>(h) * head_dim;
    for (int i = 0; i < pairs; ++i) {
      const float cs = cos_sin[2 * i];
      const float sn = cos_sin[2 * i + 1];
      const int a = interleaved ? 2 * i : i;
      const int b = interleaved ? 2 * i + 1 : i + pairs;
      const float x0 = x[a];
      const float x1 = x[b];
      x[a] = x0 * cs - x1 * sn;
      x[b] = x0 * sn + x1 * cs;
    }
  }
}

float silu(float x) {
  return x / (1.0f + std::exp(-x));
}

void swiglu(const float* gate, const float* up, float* act, int64_t n) {
  for (int64_t i = 0; i < n; ++i) act[i] = silu(gate[i]) * up[i];
}

void attend(const float* q, int32_t group, int32_t kv_head, std::span<const int32_t> pages,
            int32_t first, int32_t pos, const PagedKv& kv, float scale, float* out,
            std::vector<float>& scores) {
  const int32_t n_ctx = pos - first + 1;
  const int hd = kv.head_dim;
  const std::size_t row_floats = static_cast<std::size_t>(kv.n_head_kv) * hd;
  const std::size_t head_off = static_cast<std::size_t>(kv_head) * hd;
  if (scores.size() < static_cast<std::size_t>(group) * n_ctx)
    scores.resize(static_cast<std::size_t>(group) * n_ctx);
  // Visits positions [first, pos] block by block: fn(j, offset of row j's head in the pools).
  const auto for_each_position = [&](auto&& fn) {
    for (int32_t j = first; j <= pos;) {
      const int32_t b = j / kv.block_size;
      const std::size_t base =
          static_cast<std::size_t>(pages[static_cast<std::size_t>(b)]) * kv.block_stride + head_off;
      const int32_t end = std::min(pos, (b + 1) * kv.block_size - 1);
      for (; j <= end; ++j)
        fn(j, base + static_cast<std::size_t>(j - b * kv.block_size) * row_floats);
    }
  };
  float mx[kMaxGroup];
  for (int g = 0; g < group; ++g) mx[g] = -std::numeric_limits<float>::infinity();
  for_each_position([&](int32_t j, std::size_t off) {
    const float* kj = kv.k + off;
    for (int g = 0; g < group; ++g) {
      const float sc = dot(q + g * hd, kj, hd) * scale;
      scores[static_cast<std::size_t>(g) * n_ctx + (j - first)] = sc;
      mx[g] = std::max(mx[g], sc);
    }
  });
  float sum[kMaxGroup];
  for (int g = 0; g < group; ++g) {
    sum[g] = 0.0f;
    float* sg = scores.data() + static_cast<std::size_t>(g) * n_ctx;
    for (int32_t i = 0; i < n_ctx; ++i) sg[i] = std::exp(sg[i] - mx[g]);
  }
  std::fill(out, out + static_cast<std::ptrdiff_t>(group) * hd, 0.0f);
  for_each_position([&](int32_t j, std::size_t off) {
    const float* __restrict vj = kv.v + off;
    for (int g = 0; g < group; ++g) {
      const float e = scores[static_cast<std::size_t>(g) * n_ctx + (j - first)];
      sum[g] += e;
      float* __restrict og = out + static_cast<std::ptrdiff_t>(g) * hd;
      for (int d = 0; d < hd; ++d) og[d] += e * vj[d];
    }
  });
  for (int g = 0; g < group; ++g) {
    float* og = out + static_cast<std::ptrdiff_t>(g) * hd;
    const float inv = 1.0f / sum[g];
    for (int d = 0; d < hd; ++d) og[d] *= inv;
  }
}

}  // namespace flowrank::engine::cpu
