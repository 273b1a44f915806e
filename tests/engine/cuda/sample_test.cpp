// sample_rows against the CPU Sampler: the same rows of logits under the same rules and keys give
// the same tokens, exactly (the rule is integer arithmetic from IEEE double weights; see
// sampler.hpp), for realistic vocabularies, 1 and 256 rows, flat rows, ties, NaN and infinities.
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "flowrank/engine/sampler.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

using namespace testing;  // cuda_test_support.hpp

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kRowKinds = 9;

// Row kind k of n logits: the shapes that stress selection (see the comments).
std::vector<float> make_row(int kind, int32_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(static_cast<std::size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    float& x = row[static_cast<std::size_t>(i)];
    switch (kind) {
      case 0:  // a dummy model's: every token a candidate, no clear winner
        x = 1.3f * normal(rng);
        break;
      case 1:  // flat: every weight ties, ranks by id alone
        x = 0.25f;
        break;
      case 2:  // one spike over a spread
        x = i == n / 3 ? 15.0f : 2.0f * normal(rng);
        break;
      case 3:  // few distinct values: long ties
        x = std::floor(2.0f * normal(rng));
        break;
      case 4:  // NaN and -inf sprinkled in
        x = i % 11 == 4 ? kNaN : i % 7 == 2 ? -kInf : 1.5f * normal(rng);
        break;
      case 5:  // all -inf but one token
        x = i == n - 1 ? 0.0f : -kInf;
        break;
      case 6:  // all NaN: greedy fallback to token 0
        x = kNaN;
        break;
      case 7:  // +inf present: greedy fallback to the first +inf
        x = i == n / 2 || i == n / 2 + 3 ? kInf : normal(rng);
        break;
      default:  // an LLM's: wide, most tokens far below the top
        x = 4.0f * normal(rng);
        break;
    }
  }
  return row;
}

SampleRow make_rule(int r, int32_t n_vocab) {
  struct Rule {
    float temperature, top_p;
    int32_t top_k;
  };
  const Rule rules[] = {
      {0.0f, 1.0f, 0},    {1.0f, 1.0f, 0},     {0.7f, 0.9f, 0},
      {1.0f, 1.0f, 50},   {0.8f, 0.95f, 40},   {1.5f, 1.0f, 5000},
      {1.0f, 1.0f, 1},    {1.0f, 0.5f, 0},     {2.0f, 1.0f, 0},
      {0.3f, 0.999f, 0},  {1.0f, 0.0f, 0},     {1e-3f, 1.0f, 0},
      {100.0f, 0.97f, 0}, {1.0f, 0.9f, 20000}, {1.0f, 1.0f, n_vocab + 10},
  };
  const Rule& rule = rules[static_cast<std::size_t>(r) % std::size(rules)];
  SampleRow row;
  row.temperature = rule.temperature;
  row.top_p = rule.top_p;
  row.top_k = rule.top_k;
  row.key = SampleKey{static_cast<uint64_t>(1000 + r), 7, static_cast<uint64_t>(r / 3),
                      static_cast<uint64_t>(r)};
  return row;
}

std::string describe(const SampleRow& row, int kind) {
  std::ostringstream s;
  s << "kind " << kind << ", T " << row.temperature << ", top_k " << row.top_k << ", top_p "
    << row.top_p << ", key index " << row.key.index;
  return s.str();
}

// n_rows rows (kinds and rules cycling at different strides) through both samplers.
void expect_same_tokens(int32_t n_rows, int32_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> logits;
  std::vector<SampleRow> rules;
  std::vector<int> kinds;
  for (int32_t r = 0; r < n_rows; ++r) {
    kinds.push_back(static_cast<int>((r + seed) % kRowKinds));
    const std::vector<float> row = make_row(kinds.back(), n_vocab, rng);
    logits.insert(logits.end(), row.begin(), row.end());
    rules.push_back(make_rule(r * 7 + static_cast<int>(seed), n_vocab));
  }
  std::vector<DeviceSampleRow> device_rules;
  for (const SampleRow& r : rules) device_rules.push_back(device_sample_row(r));
  DeviceBuffer<float> d_logits(logits);
  DeviceBuffer<DeviceSampleRow> d_rules(device_rules);
  DeviceBuffer<unsigned char> workspace(sample_workspace_bytes(n_rows, n_vocab));
  DeviceBuffer<int32_t> tokens(static_cast<std::size_t>(n_rows));
  workspace.poison();
  tokens.poison();
  sample_rows(d_logits.get(), n_rows, n_vocab, d_rules.get(), workspace.get(), tokens.get(),
              nullptr);
  const std::vector<int32_t> got = tokens.download();
  // Twice: the same bits (no order-dependent arithmetic).
  tokens.poison();
  sample_rows(d_logits.get(), n_rows, n_vocab, d_rules.get(), workspace.get(), tokens.get(),
              nullptr);
  EXPECT_EQ(tokens.download(), got) << n_rows << " rows of " << n_vocab;
  Sampler cpu;
  int mismatches = 0;
  for (int32_t r = 0; r < n_rows; ++r) {
    const std::span<const float> row(logits.data() + static_cast<std::size_t>(r) * n_vocab,
                                     static_cast<std::size_t>(n_vocab));
    const int32_t want = cpu.sample(row, rules[static_cast<std::size_t>(r)]);
    if (got[static_cast<std::size_t>(r)] != want && ++mismatches <= 10)
      ADD_FAILURE() << "row " << r << " of " << n_rows << " x " << n_vocab << " ("
                    << describe(rules[static_cast<std::size_t>(r)],
                                kinds[static_cast<std::size_t>(r)])
                    << "): gpu " << got[static_cast<std::size_t>(r)] << ", cpu " << want;
  }
  EXPECT_EQ(mismatches, 0) << n_rows << " rows of " << n_vocab;
}

class SampleRows : public CudaTest {};

TEST_F(SampleRows, SmallVocabularies) {
  for (int32_t n_vocab : {1, 2, 3, 7, 100, 4097})
    expect_same_tokens(64, n_vocab, static_cast<uint32_t>(n_vocab));
}

TEST_F(SampleRows, OneRowOfRealVocabularies) {
  for (uint32_t seed = 0; seed < 12; ++seed) {
    for (int32_t n_vocab : {49152, 100278, 128256, 151936}) expect_same_tokens(1, n_vocab, seed);
  }
}

TEST_F(SampleRows, FullBatchesOfRealVocabularies) {
  for (int32_t n_vocab : {49152, 100278, 128256, 151936}) expect_same_tokens(256, n_vocab, 5);
}

TEST_F(SampleRows, RefusesVocabulariesBeyondTheKeyWidth) {
  EXPECT_THROW(sample_rows(nullptr, 1, (1 << 20) + 1, nullptr, nullptr, nullptr, nullptr),
               RunError);
}

}  // namespace
}  // namespace flowrank::engine::cuda
