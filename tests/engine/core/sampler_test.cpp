#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "flowrank/engine/sampler.hpp"
#include "flowrank/engine/sampling_rule.hpp"

using namespace flowrank::engine;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

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

// Probabilities within 1e-7: the integer weights are exp(z) to 2^-32 of the top token's.
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

// The rule of sampler.hpp written the straightforward way: every token's weight, one full sort
// by (weight desc, id asc), prefix sums, a linear scan.
struct Reference {
  int32_t greedy = 0;                              // the argmax
  std::vector<std::pair<int32_t, uint64_t>> kept;  // in draw order; empty: greedy
  uint64_t total = 0;

  int32_t draw(const SampleKey& key) const {
    const uint64_t target = sampling::draw_target(
        sampling::sample_bits53(key.seed, key.workflow, key.step, key.index), total);
    uint64_t cum = 0;
    for (const auto& [token, q] : kept) {
      cum += q;
      if (cum > target) return token;
    }
    return greedy;
  }
};

Reference reference_rule(const std::vector<float>& logits, const SamplingParams& p) {
  Reference ref;
  const int n = static_cast<int>(logits.size());
  // argmax: the lowest id of the largest non-NaN value (-0 equals +0); all NaN: 0.
  int best = -1;
  for (int i = 0; i < n; ++i) {
    if (std::isnan(logits[i])) continue;
    if (best < 0 || logits[i] > logits[best]) best = i;
  }
  ref.greedy = best < 0 ? 0 : best;
  if (p.temperature <= 0.0f || p.top_k == 1 || best < 0 || !std::isfinite(logits[best])) return ref;
  const double inv_t = sampling::inverse_temperature(p.temperature);
  std::vector<std::pair<int32_t, uint64_t>> c;
  for (int i = 0; i < n; ++i) {
    const uint32_t q = sampling::token_weight(logits[i], logits[best], inv_t);
    if (q > 0) c.emplace_back(i, q);
  }
  std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < c.size()) c.resize(p.top_k);
  uint64_t total = 0;
  for (const auto& e : c) total += e.second;
  if (p.top_p < 1.0f && !c.empty()) {
    const uint64_t theta = sampling::top_p_threshold(p.top_p, total);
    uint64_t cum = 0;
    std::size_t len = 0;
    while (cum < theta) cum += c[len++].second;
    c.resize(len);
    total = cum;
  }
  ref.kept = std::move(c);
  ref.total = total;
  return ref;
}

}  // namespace

TEST(Sampler, GreedyTakesLowestIdOnTies) {
  Sampler s;
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f};
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(s.sample(logits, params(0.0f), {7, 1, 2, i}), 1);
  EXPECT_EQ(s.sample(logits, params(1.0f, 1), {7, 1, 2, 0}), 1);   // top_k 1 is greedy too
  EXPECT_EQ(Sampler::argmax(std::vector<float>{-0.0f, 0.0f}), 0);  // -0 ties with +0
  EXPECT_EQ(Sampler::argmax(std::vector<float>{0.0f, -0.0f}), 0);
}

TEST(Sampler, NanNeverWinsAndInfinitiesAreGreedy) {
  Sampler s;
  EXPECT_EQ(Sampler::argmax(std::vector<float>{kNaN, -kInf, -5.0f, kNaN}), 2);
  EXPECT_EQ(Sampler::argmax(std::vector<float>{kNaN, -kInf, kNaN}), 1);
  EXPECT_EQ(Sampler::argmax(std::vector<float>{kNaN, kNaN}), 0);
  // Sampling from rows whose best logit is not finite falls back to greedy.
  EXPECT_EQ(s.sample(std::vector<float>{kNaN, -kInf, -kInf}, params(1.0f), {1, 2, 3, 4}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, kInf, kInf}, params(1.0f), {1, 2, 3, 4}), 1);
  // NaN and -inf entries weigh nothing.
  const std::vector<float> mixed = {kNaN, 0.0f, -kInf, 0.0f, kNaN};
  expect_dist(s.distribution(mixed, params(1.0f)), {{1, 0.5}, {3, 0.5}});
  for (uint64_t i = 0; i < 50; ++i) {
    const int32_t t = s.sample(mixed, params(1.0f), {5, 0, 0, i});
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
  // A NaN temperature leaves no weighted token: greedy.
  EXPECT_EQ(s.sample(kW1234, params(kNaN), {1, 1, 1, 1}), 3);
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
  // top_p 0 (or below) keeps the top token; just below 1 keeps all four.
  expect_dist(s.distribution(kW1234, params(1.0f, 0, 0.0f)), {{3, 1.0}});
  expect_dist(s.distribution(kW1234, params(1.0f, 0, -1.0f)), {{3, 1.0}});
  EXPECT_EQ(s.distribution(kW1234, params(1.0f, 0, 0.99f)).size(), 4u);
}

TEST(Sampler, TopPTiesAreRankedByTokenId) {
  Sampler s;
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(2.0f), 0.0f};  // 1 2 2 1
  expect_dist(s.distribution(logits, params(1.0f, 0, 0.3f)), {{1, 1.0}});
  expect_dist(s.distribution(logits, params(1.0f, 0, 0.5f)), {{1, 0.5}, {2, 0.5}});
  expect_dist(s.distribution(logits, params(1.0f, 2)), {{1, 0.5}, {2, 0.5}});
  // Flat rows: top-k keeps the lowest ids.
  const std::vector<float> flat(100, 0.25f);
  expect_dist(s.distribution(flat, params(0.7f, 3)), {{0, 1.0 / 3}, {1, 1.0 / 3}, {2, 1.0 / 3}});
}

TEST(SamplingRule, WeightsAreExpOfTheScaledGap) {
  for (double z = -22.99; z <= 0.0; z += 0.0137) {
    const double e = std::exp(z);
    EXPECT_NEAR(sampling::exp_nonpositive(z), e, e * 4e-16) << z;
  }
  EXPECT_EQ(sampling::exp_nonpositive(0.0), 1.0);
  EXPECT_EQ(sampling::token_weight(3.0f, 3.0f, 1.0), sampling::kMaxWeight);
  EXPECT_EQ(sampling::token_weight(2.0f, 3.0f, 1.0),
            static_cast<uint32_t>(std::floor(std::exp(-1.0) * 4294967296.0)));
  EXPECT_EQ(sampling::token_weight(-30.0f, 0.0f, 1.0), 0u);  // below 2^-32 of the top
  EXPECT_EQ(sampling::token_weight(kNaN, 0.0f, 1.0), 0u);
  EXPECT_EQ(sampling::token_weight(-kInf, 0.0f, 1.0), 0u);
  // Monotone in the logit over a fine sweep (ranking by weight follows the logits).
  uint32_t prev = 0;
  for (float x = -25.0f; x <= 0.0f; x += 0.001f) {
    const uint32_t q = sampling::token_weight(x, 0.0f, 1.0);
    EXPECT_GE(q, prev) << x;
    prev = q;
  }
}

TEST(SamplingRule, DrawTargetAndTopPThreshold) {
  __extension__ using u128 = unsigned __int128;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t u = rng() >> 11;
    const uint64_t total = (rng() >> (12 + i % 40)) + 1;
    const uint64_t t = sampling::draw_target(u, total);
    EXPECT_EQ(t, static_cast<uint64_t>((static_cast<u128>(u) * total) >> 53));
    EXPECT_LT(t, total);
  }
  EXPECT_EQ(sampling::draw_target((uint64_t{1} << 53) - 1, uint64_t{1} << 52),
            (uint64_t{1} << 52) - 1);
  EXPECT_EQ(sampling::top_p_threshold(0.5f, 10), 5u);
  EXPECT_EQ(sampling::top_p_threshold(0.55f, 10), 6u);  // ceil
  EXPECT_EQ(sampling::top_p_threshold(0.0f, 10), 1u);   // at least one token
  EXPECT_EQ(sampling::top_p_threshold(kNaN, 10), 1u);
  EXPECT_EQ(sampling::top_p_threshold(0.999999f, 10), 10u);
}

// The sampler against the straightforward implementation above, token for token, over rows
// that stress its partial selection: wide and flat nuclei, ties, NaN and -inf entries.
TEST(Sampler, MatchesStraightforwardRule) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  const auto make_row = [&](int kind, int n) {
    std::vector<float> row(n);
    for (int i = 0; i < n; ++i) {
      switch (kind) {
        case 0:
          row[i] = normal(rng);
          break;
        case 1:  // flat: every weight ties
          row[i] = 0.5f;
          break;
        case 2:  // few distinct values: many ties
          row[i] = std::floor(normal(rng));
          break;
        default:  // wide, with NaN and -inf sprinkled in
          row[i] = (i % 17 == 3) ? kNaN : (i % 13 == 5) ? -kInf : 20.0f * normal(rng);
          break;
      }
    }
    return row;
  };
  const std::vector<SamplingParams> rules = {
      params(1.0f),           params(0.7f, 0, 0.95f), params(1.3f, 50),
      params(1.0f, 40, 0.5f), params(2.0f, 0, 0.3f),  params(0.5f, 3000, 0.999f),
      params(1.0f, 0, 0.0f),  params(5.0f, 100000),
  };
  Sampler s;
  int checked = 0;
  for (int kind = 0; kind < 4; ++kind) {
    for (int n : {1, 2, 7, 1000, 49152}) {
      const std::vector<float> row = make_row(kind, n);
      for (const SamplingParams& p : rules) {
        const auto dist = s.distribution(row, p);
        const Reference want = reference_rule(row, p);
        if (!want.kept.empty()) {
          ASSERT_EQ(dist.size(), want.kept.size()) << kind << " " << n;
          for (std::size_t i = 0; i < dist.size(); ++i)
            ASSERT_EQ(dist[i].first, want.kept[i].first) << kind << " " << n << " rank " << i;
        }
        for (uint64_t i = 0; i < 20; ++i) {
          const SampleKey key{3, 7, static_cast<uint64_t>(kind), i};
          ASSERT_EQ(s.sample(row, p, key), want.draw(key))
              << "kind " << kind << " n " << n << " T " << p.temperature << " k " << p.top_k
              << " p " << p.top_p << " draw " << i;
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 4 * 5 * 8 * 20);
}

// Large vocabularies with wide nuclei: the kept set and its probabilities match exp(z) / sum.
TEST(Sampler, LargeNucleusFollowsExp) {
  std::vector<float> flat(5000);
  for (int i = 0; i < 5000; ++i) flat[i] = static_cast<float>((i * 7919) % 1000) / 2000.0f;
  Sampler s;
  const auto d = s.distribution(flat, params(0.7f));
  ASSERT_EQ(d.size(), flat.size());
  const float mx = *std::max_element(flat.begin(), flat.end());
  double sum = 0;
  for (float x : flat) sum += std::exp((static_cast<double>(x) - mx) / 0.7);
  for (const auto& [t, p] : d) {
    const double want = std::exp((static_cast<double>(flat[t]) - mx) / 0.7) / sum;
    EXPECT_NEAR(p, want, want * 1e-6) << t;
  }
  const auto nucleus = s.distribution(flat, params(0.7f, 0, 0.95f));
  ASSERT_GT(nucleus.size(), 1000u);
  ASSERT_LT(nucleus.size(), flat.size());
  for (std::size_t i = 1; i < nucleus.size(); ++i) {  // draw order: weight desc, then id asc
    EXPECT_TRUE(
        nucleus[i - 1].second > nucleus[i].second ||
        (nucleus[i - 1].second == nucleus[i].second && nucleus[i - 1].first < nucleus[i].first));
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
  // A flat 64-token row: each token within 0.006 of 1/64 over 20000 draws (about 5 sigma).
  const std::vector<float> flat(64, 1.0f);
  std::vector<int> count(64);
  for (uint64_t i = 0; i < draws; ++i) ++count[s.sample(flat, params(0.9f), {4, 4, 4, i})];
  for (int t = 0; t < 64; ++t) EXPECT_NEAR(count[t] / double(draws), 1.0 / 64, 0.006) << t;
  double sum = 0;
  for (uint64_t i = 0; i < draws; ++i) {
    const double u = uniform_from_key({1, 2, 3, i});
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / draws, 0.5, 0.01);
}
