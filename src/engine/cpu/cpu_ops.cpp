#include "flowrank/engine/cpu/cpu_ops.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace flowrank::engine::cpu {

float reduce16(const float* p) {
  float r8[8], r4[4];
  for (int i = 0; i < 8; ++i) r8[i] = p[i] + p[i + 8];
  for (int i = 0; i < 4; ++i) r4[i] = r8[i] + r8[i + 4];
  return (r4[0] + r4[2]) + (r4[1] + r4[3]);
}

float dot16(const float* x, const float* w, int64_t k) {
  float acc[16] = {};
  for (int64_t i = 0; i < k; ++i) acc[i % 16] = std::fma(x[i], w[i], acc[i % 16]);
  return reduce16(acc);
}

float sum16(const float* v, int64_t n) {
  float acc[16] = {};
  for (int64_t i = 0; i < n; ++i) acc[i % 16] += v[i];
  return reduce16(acc);
}

float exp_ref(float x) {
  if (x < kExpMin) return 0.0f;
  x = x < kExpMax ? x : kExpMax;  // as a vector min: NaN becomes kExpMax
  const float n = std::nearbyint(x * kLog2e);
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  float p = kExpPoly[0];
  for (int i = 1; i < 6; ++i) p = std::fma(p, r, kExpPoly[i]);
  p = std::fma(p, r * r, r) + 1.0f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

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
  return x / (1.0f + exp_ref(-x));
}

void swiglu(const float* gate, const float* up, float* act, int64_t n) {
  for (int64_t i = 0; i < n; ++i) act[i] = silu(gate[i]) * up[i];
}

void attend(const float* q, int32_t group, int32_t kv_head, std::span<const int32_t> pages,
            int32_t first, int32_t pos, const PagedKv& kv, float scale, float* out,
            std::vector<float>& scores) {
  const int32_t n_ctx = pos - first + 1;
  const int hd = kv.head_dim;
  const int32_t bs = kv.block_size;
  if (scores.size() < static_cast<std::size_t>(n_ctx))
    scores.resize(static_cast<std::size_t>(n_ctx));
  for (int g = 0; g < group; ++g) {
    const float* qg = q + static_cast<std::ptrdiff_t>(g) * hd;
    float* og = out + static_cast<std::ptrdiff_t>(g) * hd;
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t j = first; j <= pos; ++j) {
      const int32_t page = pages[static_cast<std::size_t>(j / bs)];
      float s = 0.0f;
      for (int d = 0; d < hd; ++d) s = std::fma(qg[d], *kv.key(page, kv_head, d, j % bs), s);
      s *= scale;
      scores[static_cast<std::size_t>(j - first)] = s;
      mx = std::max(mx, s);
    }
    for (int32_t i = 0; i < n_ctx; ++i)
      scores[static_cast<std::size_t>(i)] = exp_ref(scores[static_cast<std::size_t>(i)] - mx);
    const float sum = sum16(scores.data(), n_ctx);
    std::fill(og, og + hd, 0.0f);
    for (int32_t j = first; j <= pos; ++j) {
      const float e = scores[static_cast<std::size_t>(j - first)];
      const float* vj = kv.value(pages[static_cast<std::size_t>(j / bs)], kv_head, j % bs);
      for (int d = 0; d < hd; ++d) og[d] = std::fma(e, vj[d], og[d]);
    }
    const float inv = 1.0f / sum;
    for (int d = 0; d < hd; ++d) og[d] *= inv;
  }
}

}  // namespace flowrank::engine::cpu
