#pragma once
// Token sampling as a pure function of (logits, sampling params, key): greedy (argmax, lowest id
// on ties), or temperature -> top-k -> top-p (nucleus) -> one uniform draw. The draw comes from a
// counter-based generator keyed by (seed, workflow, step, token index), so a request's output
// never depends on batch composition, order or rank count. Weights are exp((logit - max) / T)
// (float exp, summed in double in a fixed order; tokens below e^-30 of the top one are never
// drawn), candidates are ranked by (weight desc, token id asc), so the result is reproducible
// bit for bit. top_k = 0 and top_p = 1 switch those filters off.
#include <cstdint>
#include <span>
#include <vector>

#include "flowrank/engine/engine.hpp"

namespace flowrank::engine {

struct SampleKey {
  uint64_t seed = 0;
  uint64_t workflow = 0;
  uint64_t step = 0;
  uint64_t index = 0;  // index of the generated token (0 = first)
};

// How one row is sampled: the request's rule and the key of the token being drawn.
struct SampleRow {
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  SampleKey key;
};

// Uniform double in [0, 1) from the key: splitmix64 rounds over the four values.
double uniform_from_key(const SampleKey& key);

class Sampler {
 public:
  // Index of the chosen token. logits.size() is the vocabulary size.
  int32_t sample(std::span<const float> logits, const SamplingParams& params, const SampleKey& key);
  int32_t sample(std::span<const float> logits, const SampleRow& row);

  // The distribution sample() draws from for these params (after temperature, top-k, top-p and
  // renormalisation), as (token, probability) pairs in draw order. For tests and diagnostics.
  std::vector<std::pair<int32_t, double>> distribution(std::span<const float> logits,
                                                       const SamplingParams& params);

  static int32_t argmax(std::span<const float> logits);

 private:
  // Log-weight range kept (relative probability > e^-30 ~ 1e-13), in unit buckets.
  static constexpr std::size_t kBuckets = 30;
  // Fills order_[0, n) with the candidates in draw order and probs_ with their unnormalised
  // weights; returns n and the total weight of the kept candidates.
  int32_t candidates(std::span<const float> logits, const SamplingParams& params, double& total);

  std::vector<double> weight_;  // per token, reused between calls
  std::vector<int32_t> order_;
};

}  // namespace flowrank::engine
