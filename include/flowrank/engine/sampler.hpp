#pragma once
// Token sampling as a pure function of (logits, sampling params, key), the same on the CPU and on
// the GPU (engine/cuda/sample.cu) to the token. Given a row of f32 logits:
//   - greedy (temperature <= 0 or top_k == 1): argmax, the lowest id on ties; NaN never wins
//     (a row of NaN gives 0).
//   - otherwise, with m the greedy token's logit (not finite: greedy) and z_i = (logit_i - m) / T
//     in double, each token weighs the integer q_i = min(floor(exp(z_i) 2^32), 2^32 - 1) with
//     exp built from IEEE +, -, *, / only (sampling_rule.hpp), so q is bit-identical everywhere;
//     q_i = 0 (z_i <= -23, NaN or -inf logits) is never drawn (no token with q > 0: greedy).
//     Candidates are ranked by (q desc, id asc). top-k keeps the k first (k = 0: off); top-p
//     (< 1; 1 is off) keeps the shortest ranked prefix of those whose weight reaches
//     ceil(top_p * their weight) (one double multiply, at least one token). With W the kept
//     weight and u the key's 53 random bits, the target is floor(u W / 2^53) (128-bit product)
//     and the token is the first ranked candidate whose cumulative weight exceeds the target.
// Integer weights make every sum exact, so any summation order (the GPU's radix select) agrees
// with the CPU's. The draw comes from a counter-based generator keyed by (seed, workflow, step,
// token index), so a request's output never depends on batch composition, order or rank count.
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

// The key's 53 random bits (sampling::sample_bits53) as a uniform double in [0, 1).
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
  // Leaves the kept candidates (after top-k and top-p) in keys_[0, n) as a set and returns n
  // (0: sample greedily) with their total weight.
  std::size_t nucleus(std::span<const float> logits, const SamplingParams& params, int32_t best,
                      uint64_t& total);

  std::vector<uint64_t> keys_;  // candidates as (weight << 32 | ~id), reused between calls
};

}  // namespace flowrank::engine
