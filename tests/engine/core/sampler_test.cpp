#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "flowrank/engine/sampler.hpp"

using namespace flowrank::engine;

namespace {

SamplingParams params(float temperature, int32_t top_k = 0, float top_p = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  return p;
}

std::map<int32_t, double> as_map(const std::vector<std::pair<int32_t, double>>& d) {
  return {d.begin(), d.end()};
}

void expect_dist(const std::vector<std::pair<int32_t, double>>& got,
                 const std::map<int32_t, double>& want) {
  const auto m = as_map(got);
  ASSERT_EQ(m.size(), want.size());
  for (const auto& [t, p] : want) {
    ASSERT_TRUE(m.contains(t)) << "token " << t;
    EXPECT_NEAR(m.at(t), p, 1e-7) << "token " << t;  // logits are floats
  }
}

// Weights 1, 2, 3, 4 at temperature 1.
const std::vector<float> kW1234 = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};

}  // namespace

TEST(Sampler, GreedyTakesLowestIdOnTies) {
  Sampler s;
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f};
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(s.sample(logits, params(0.0f), {7, 1, 2, i}), 1);
  EXPECT_EQ(s.sample(logits, params(1.0f, 1), {7, 1, 2, 0}), 1);  // top_k 1 is greedy too
}

TEST(Sampler, TemperatureScalesLogits) {
  Sampler s;
  const std::vector<float> logits = {0.0f, 1.0f};
  const double e2 = std::exp(2.0);  // (1 - 0) / 0.5
  expect_dist(s.distribution(logits, params(0.5f)), {{0, 1 / (1 + e2)}, {1, e2 / (1 + e2)}});
}

TEST(Sampler, TopKKeepsTheKLargest) {
  Sampler s;
  expect_dist(s.distribution(kW1234, params(1.0f, 2)), {{3, 4.0 / 7}, {2, 3.0 / 7}});
  expect_dist(s.distribution(kW1234, params(1.0f, 10)), {{0, 0.1}, {1, 0.2}, {2, 0.3}, {3, 0.4}});
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  Sampler s;
  // Sorted 0.4, 0.3, 0.2, 0.1: 0.4 < 0.65 <= 0.7.
  expect_dist(s.distribution(kW1234, params(1.0f, 0, 0.65f)), {{3, 4.0 / 7}, {2, 3.0 / 7}});
  expect_dist(s.distribution(kW1234, params(1.0f, 0, 0.3f)), {{3, 1.0}});
  // top-k first (3, 2, 1 -> 4/9, 3/9, 2/9), then top-p 0.5 over them: 4/9 < 0.5 <= 7/9.
  expect_dist(s.distribution(kW1234, params(1.0f, 3, 0.5f)), {{3, 4.0 / 7}, {2, 3.0 / 7}});
}

TEST(Sampler, TopPTiesAreRankedByTokenId) {
  Sampler s;
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(2.0f), 0.0f};  // 1 2 2 1
  expect_dist(s.distribution(logits, params(1.0f, 0, 0.3f)), {{1, 1.0}});
  expect_dist(s.distribution(logits, params(1.0f, 0, 0.5f)), {{1, 0.5}, {2, 0.5}});
  expect_dist(s.distribution(logits, params(1.0f, 2)), {{1, 0.5}, {2, 0.5}});
}

// An independent (brute force) nucleus: every token ranked by a full sort, weights as the
// sampler defines them (float exp of the scaled logit gap; none below e^-30 of the top one).
std::map<int32_t, double> brute_force_nucleus(const std::vector<float>& logits, float temperature,
                                              float top_p) {
  const int n = static_cast<int>(logits.size());
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  const double inv_t = 1.0 / static_cast<double>(temperature);
  std::vector<double> w(n, 0.0);
  double total = 0;
  for (int i = 0; i < n; ++i) {
    const double z = (static_cast<double>(logits[i]) - max_logit) * inv_t;
    if (z > -30.0) total += (w[i] = std::exp(static_cast<float>(z)));
  }
  std::vector<int> idx(n);
  for (int i = 0; i < n; ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return w[a] > w[b]; });
  std::map<int32_t, double> want;
  double cum = 0;
  for (int i : idx) {
    want[i] = w[i];
    cum += w[i];
    if (cum >= top_p * total) break;
  }
  for (auto& [t, p] : want) p /= cum;
  return want;
}

// Large vocabularies with wide nuclei, so the sampler's bucketed ranking has to widen.
TEST(Sampler, LargeNucleusMatchesBruteForce) {
  std::vector<float> flat(5000), wide(3000);
  for (int i = 0; i < 5000; ++i) flat[i] = static_cast<float>((i * 7919) % 1000) / 2000.0f;
  for (int i = 0; i < 3000; ++i) wide[i] = static_cast<float>((i * 7919) % 3000) / 100.0f;
  Sampler s;
  const auto a = brute_force_nucleus(flat, 0.7f, 0.95f);
  ASSERT_GT(a.size(), 1000u);
  expect_dist(s.distribution(flat, params(0.7f, 0, 0.95f)), a);
  for (float top_p : {0.5f, 0.9f, 0.999f}) {
    const auto b = brute_force_nucleus(wide, 3.0f, top_p);  // log weights spread over (-10, 0]
    ASSERT_GT(b.size(), 10u);
    expect_dist(s.distribution(wide, params(3.0f, 0, top_p)), b);
  }
}

TEST(Sampler, SameKeySameTokenAndTheIndexChangesTheDraw) {
  Sampler s;
  const std::vector<float> flat(1000, 0.0f);
  const SamplingParams p = params(1.0f);
  const SampleKey key{42, 3, 1, 0};
  const int32_t first = s.sample(flat, p, key);
  EXPECT_EQ(s.sample(flat, p, key), first);
  EXPECT_NE(uniform_from_key({42, 3, 1, 0}), uniform_from_key({42, 3, 1, 1}));
  EXPECT_NE(uniform_from_key({42, 3, 1, 0}), uniform_from_key({42, 3, 2, 0}));
  EXPECT_NE(uniform_from_key({42, 3, 1, 0}), uniform_from_key({42, 4, 1, 0}));
  EXPECT_NE(uniform_from_key({42, 3, 1, 0}), uniform_from_key({43, 3, 1, 0}));
  // Over a flat 1000-token distribution, ten consecutive indices do not all give one token.
  std::map<int32_t, int> seen;
  for (uint64_t i = 0; i < 10; ++i) ++seen[s.sample(flat, p, {42, 3, 1, i})];
  EXPECT_GT(seen.size(), 5u);
}

TEST(Sampler, FrequenciesFollowTheDistribution) {
  Sampler s;
  const int draws = 20000;
  struct Case {
    SamplingParams p;
    std::map<int32_t, double> want;
  };
  const std::vector<Case> cases = {
      {params(1.0f), {{0, 0.1}, {1, 0.2}, {2, 0.3}, {3, 0.4}}},
      {params(1.0f, 2), {{2, 3.0 / 7}, {3, 4.0 / 7}}},
      {params(1.0f, 0, 0.65f), {{2, 3.0 / 7}, {3, 4.0 / 7}}},
  };
  for (const Case& c : cases) {
    std::map<int32_t, int> count;
    for (uint64_t i = 0; i < draws; ++i) ++count[s.sample(kW1234, c.p, {9, 1, 0, i})];
    for (const auto& [t, n] : count) EXPECT_TRUE(c.want.contains(t)) << "token " << t;
    for (const auto& [t, p] : c.want) EXPECT_NEAR(count[t] / double(draws), p, 0.015) << t;
  }
  double sum = 0;
  for (uint64_t i = 0; i < draws; ++i) {
    const double u = uniform_from_key({1, 2, 3, i});
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / draws, 0.5, 0.01);
}
