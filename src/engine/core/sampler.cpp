#include "flowrank/engine/sampler.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

#include "flowrank/common/mix64.hpp"

namespace flowrank::engine {
namespace {

constexpr uint64_t kGamma = kGoldenGamma;

// Ranking of candidates: higher weight first, lower token id on ties (a strict total order, so
// every sort below yields one and the same sequence).
struct ByWeight {
  const double* w;
  bool operator()(int32_t a, int32_t b) const { return w[a] != w[b] ? w[a] > w[b] : a < b; }
};

}  // namespace

double uniform_from_key(const SampleKey& key) {
  uint64_t h = mix64(key.seed + kGamma);
  h = mix64(h ^ mix64(key.workflow + 2 * kGamma));
  h = mix64(h ^ mix64(key.step + 3 * kGamma));
  h = mix64(h ^ mix64(key.index + 4 * kGamma));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

int32_t Sampler::argmax(std::span<const float> logits) {
  int32_t best = 0;
  float best_value = logits.empty() ? 0.0f : logits[0];
  const auto n = static_cast<int32_t>(logits.size());
  for (int32_t i = 1; i < n; ++i) {
    const float x = logits[static_cast<std::size_t>(i)];
    if (x > best_value) {  // strict: the lowest id wins a tie; NaN never wins
      best_value = x;
      best = i;
    }
  }
  return best;
}

int32_t Sampler::candidates(std::span<const float> logits, const SamplingParams& params,
                            double& total) {
  weight_.resize(logits.size());
  order_.clear();

  float max_logit = -std::numeric_limits<float>::infinity();
  for (float x : logits) max_logit = x > max_logit ? x : max_logit;  // NaN never wins
  // Tokens more than kBuckets below the top one in log weight (relative probability < 1e-13)
  // are never drawn: skipping them keeps exp() and the ranking to the tokens that matter.
  const double inv_t = 1.0 / static_cast<double>(params.temperature);
  const auto log_weight = [&](std::size_t i) {
    return (static_cast<double>(logits[i]) - max_logit) * inv_t;
  };
  // Bucket b holds the weight of candidates with log weight in (-(b+1), -b]: a cheap first cut
  // for top-p below.
  std::array<double, kBuckets> bucket{};
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double z = log_weight(i);
    if (z > -static_cast<double>(kBuckets)) {  // false for NaN
      weight_[i] = static_cast<double>(std::exp(static_cast<float>(z)));
      order_.push_back(static_cast<int32_t>(i));
      bucket[static_cast<std::size_t>(-z)] += weight_[i];
    }
  }
  const auto n_cand = static_cast<int32_t>(order_.size());
  if (n_cand == 0) return 0;  // no finite logit
  const ByWeight by_weight{weight_.data()};

  const int32_t k = params.top_k > 0 ? std::min(params.top_k, n_cand) : n_cand;
  if (k < n_cand) {
    std::nth_element(order_.begin(), order_.begin() + (k - 1), order_.end(), by_weight);
    std::sort(order_.begin(), order_.begin() + k, by_weight);
  }
  // Summed in draw order: by rank after top-k, else in token-id order.
  double k_total = 0.0;
  for (int32_t i = 0; i < k; ++i)
    k_total += weight_[static_cast<std::size_t>(order_[static_cast<std::size_t>(i)])];
  if (params.top_p >= 1.0f) {
    total = k_total;
    return k;
  }
  const double threshold = static_cast<double>(params.top_p) * k_total;

  // top-p: the smallest prefix of the ranked top-k whose weight reaches top_p of theirs.
  // Without top-k, first narrow to the leading buckets whose weight reaches the threshold: all
  // tokens above a weight form a prefix of the ranking, so the nucleus lies inside them (if
  // rounding says otherwise, one more bucket is taken).
  int32_t limit = k;
  if (k == n_cand) {
    double sum = 0.0;
    std::size_t b = 0;
    while (b + 1 < kBuckets && (sum += bucket[b]) < threshold) ++b;
    for (;; ++b) {
      const auto in_bucket = [&](int32_t t) {
        return static_cast<std::size_t>(-log_weight(static_cast<std::size_t>(t))) <= b;
      };
      const auto mid = std::partition(order_.begin(), order_.end(), in_bucket);
      limit = static_cast<int32_t>(mid - order_.begin());
      std::sort(order_.begin(), mid, by_weight);
      double cum = 0.0;
      for (int32_t n = 0; n < limit; ++n) {
        cum += weight_[static_cast<std::size_t>(order_[static_cast<std::size_t>(n)])];
        if (cum >= threshold) {
          total = cum;
          return n + 1;
        }
      }
      if (b + 1 >= kBuckets) {
        total = cum;  // rounding left the threshold unreached: keep all
        return limit;
      }
    }
  }
  double cum = 0.0;
  for (int32_t n = 0; n < limit; ++n) {
    cum += weight_[static_cast<std::size_t>(order_[static_cast<std::size_t>(n)])];
    if (cum >= threshold) {
      total = cum;
      return n + 1;
    }
  }
  total = cum;
  return limit;
}

int32_t Sampler::sample(std::span<const float> logits, const SamplingParams& params,
                        const SampleKey& key) {
  if (params.temperature <= 0.0f || params.top_k == 1) return argmax(logits);
  double total = 0.0;
  const int32_t n = candidates(logits, params, total);
  if (n == 0) return argmax(logits);
  const double target = uniform_from_key(key) * total;
  double acc = 0.0;
  int32_t last_positive = order_[0];
  for (int32_t i = 0; i < n; ++i) {
    const int32_t t = order_[static_cast<std::size_t>(i)];
    const double w = weight_[static_cast<std::size_t>(t)];
    if (w <= 0.0) continue;
    acc += w;
    last_positive = t;
    if (target < acc) return t;
  }
  return last_positive;  // target rounded onto the very end of the range
}

int32_t Sampler::sample(std::span<const float> logits, const SampleRow& row) {
  SamplingParams params;
  params.temperature = row.temperature;
  params.top_p = row.top_p;
  params.top_k = row.top_k;
  return sample(logits, params, row.key);
}

std::vector<std::pair<int32_t, double>> Sampler::distribution(std::span<const float> logits,
                                                              const SamplingParams& params) {
  std::vector<std::pair<int32_t, double>> out;
  if (params.temperature <= 0.0f || params.top_k == 1) {
    out.emplace_back(argmax(logits), 1.0);
    return out;
  }
  double total = 0.0;
  const int32_t n = candidates(logits, params, total);
  if (n == 0) out.emplace_back(argmax(logits), 1.0);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t t = order_[static_cast<std::size_t>(i)];
    out.emplace_back(t, weight_[static_cast<std::size_t>(t)] / total);
  }
  return out;
}

}  // namespace flowrank::engine
