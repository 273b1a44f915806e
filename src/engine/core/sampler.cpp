#include "flowrank/engine/sampler.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <functional>

#include "flowrank/engine/sampling_rule.hpp"

namespace flowrank::engine {
namespace {

// A candidate as one integer: its weight above the complement of its id, so that the ranking
// (weight desc, id asc) is the integers' descending order and partitions compare plain values.
uint64_t rank_key(uint32_t q, int32_t id) {
  return (uint64_t{q} << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(id));
}
uint32_t weight_of(uint64_t key) {
  return static_cast<uint32_t>(key >> 32);
}
int32_t token_of(uint64_t key) {
  return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key));
}

uint64_t weight_of(const uint64_t* keys, std::size_t n) {
  uint64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += weight_of(keys[i]);
  return sum;
}

// Rearranges keys[0, n) so that keys[0, p] are its p + 1 highest-ranked candidates, where p is
// the first rank at which the cumulative weight reaches theta (1 <= theta <= their total
// weight); returns p and their weight in `cum`. Quickselect by halves: expected O(n).
std::size_t quick_weighted_select(uint64_t* keys, std::size_t n, uint64_t theta, uint64_t& cum) {
  std::size_t lo = 0, hi = n;  // keys[0, lo) rank first and weigh `above` < theta; p in [lo, hi)
  uint64_t above = 0;
  while (hi - lo > 1) {
    const std::size_t mid = lo + (hi - lo) / 2;
    std::nth_element(keys + lo, keys + mid, keys + hi, std::greater<>());
    const uint64_t w = weight_of(keys + lo, mid - lo);
    if (above + w >= theta) {
      hi = mid;
    } else {
      above += w;
      lo = mid;
    }
  }
  cum = above + weight_of(keys[lo]);
  return lo;
}

// A logarithmic bucket of a weight, monotone in it: the leading bit's position and the next 6
// bits (1.6 % wide), so the buckets above the one where theta is reached hold whole ranks.
std::size_t weight_bucket(uint32_t q) {
  const int lead = 31 - std::countl_zero(q | 1u);
  return lead < 6 ? q : (static_cast<std::size_t>(lead - 5) << 6) | ((q >> (lead - 6)) & 63u);
}

// As quick_weighted_select; large sets are first cut to the bucket where theta is reached (one
// counting pass and one partition), so the quickselect runs on that bucket alone.
std::size_t weighted_select(uint64_t* keys, std::size_t n, uint64_t theta, uint64_t& cum) {
  constexpr std::size_t kBuckets = 27 << 6;
  if (n <= 4096) return quick_weighted_select(keys, n, theta, cum);
  std::array<uint64_t, kBuckets> sum{};
  for (std::size_t i = 0; i < n; ++i) sum[weight_bucket(weight_of(keys[i]))] += weight_of(keys[i]);
  std::size_t b = kBuckets - 1;
  uint64_t above = 0;
  while (above + sum[b] < theta) above += sum[b--];
  uint64_t* const mid =
      std::partition(keys, keys + n, [b](uint64_t k) { return weight_bucket(weight_of(k)) > b; });
  uint64_t* const end =
      std::partition(mid, keys + n, [b](uint64_t k) { return weight_bucket(weight_of(k)) == b; });
  const std::size_t at =
      quick_weighted_select(mid, static_cast<std::size_t>(end - mid), theta - above, cum);
  cum += above;
  return static_cast<std::size_t>(mid - keys) + at;
}

bool greedy(const SamplingParams& params) {
  return params.temperature <= 0.0f || params.top_k == 1;
}

}  // namespace

double uniform_from_key(const SampleKey& key) {
  return static_cast<double>(sampling::sample_bits53(key.seed, key.workflow, key.step, key.index)) *
         0x1.0p-53;
}

int32_t Sampler::argmax(std::span<const float> logits) {
  // The lowest id of the largest value: strict > keeps the first of equals (-0 == +0), and NaN
  // compares false, so it never wins unless every entry is NaN (then 0).
  const auto n = static_cast<int32_t>(logits.size());
  int32_t best = 0;
  while (best < n && std::isnan(logits[static_cast<std::size_t>(best)])) ++best;
  if (best == n) return 0;
  float best_value = logits[static_cast<std::size_t>(best)];
  for (int32_t i = best + 1; i < n; ++i) {
    const float x = logits[static_cast<std::size_t>(i)];
    if (x > best_value) {
      best_value = x;
      best = i;
    }
  }
  return best;
}

std::size_t Sampler::nucleus(std::span<const float> logits, const SamplingParams& params,
                             int32_t best, uint64_t& total) {
  if (logits.empty()) return 0;
  const float max_logit = logits[static_cast<std::size_t>(best)];
  if (!std::isfinite(max_logit)) return 0;
  const double inv_t = sampling::inverse_temperature(params.temperature);
  keys_.clear();
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const uint32_t q = sampling::token_weight(logits[i], max_logit, inv_t);
    if (q != 0) keys_.push_back(rank_key(q, static_cast<int32_t>(i)));
  }
  std::size_t n = keys_.size();
  if (n == 0) return 0;
  if (params.top_k > 0 && static_cast<std::size_t>(params.top_k) < n) {
    n = static_cast<std::size_t>(params.top_k);
    std::nth_element(keys_.begin(), keys_.begin() + static_cast<std::ptrdiff_t>(n), keys_.end(),
                     std::greater<>());
  }
  uint64_t w = weight_of(keys_.data(), n);
  if (params.top_p < 1.0f) {
    const uint64_t theta = sampling::top_p_threshold(params.top_p, w);
    if (theta < w) n = weighted_select(keys_.data(), n, theta, w) + 1;
  }
  total = w;
  return n;
}

int32_t Sampler::sample(std::span<const float> logits, const SamplingParams& params,
                        const SampleKey& key) {
  const int32_t best = argmax(logits);
  uint64_t total = 0;
  const std::size_t n = greedy(params) ? 0 : nucleus(logits, params, best, total);
  if (n == 0) return best;
  const uint64_t u53 = sampling::sample_bits53(key.seed, key.workflow, key.step, key.index);
  uint64_t cum = 0;
  const std::size_t at =
      weighted_select(keys_.data(), n, sampling::draw_target(u53, total) + 1, cum);
  return token_of(keys_[at]);
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
  const int32_t best = argmax(logits);
  uint64_t total = 0;
  const std::size_t n = greedy(params) ? 0 : nucleus(logits, params, best, total);
  std::vector<std::pair<int32_t, double>> out;
  if (n == 0) {
    out.emplace_back(best, 1.0);
    return out;
  }
  std::sort(keys_.begin(), keys_.begin() + static_cast<std::ptrdiff_t>(n), std::greater<>());
  for (std::size_t i = 0; i < n; ++i)
    out.emplace_back(token_of(keys_[i]),
                     static_cast<double>(weight_of(keys_[i])) / static_cast<double>(total));
  return out;
}

}  // namespace flowrank::engine
