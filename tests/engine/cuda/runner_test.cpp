// The CUDA runner against the CPU runner (f32, exact): whole-model logits for dummy shapes of
// each architecture and for real SmolLM2 weights, greedy tokens through the whole engine, and
// what the GPU backend promises: prefix cache, cascade, CUDA graphs, batch composition and
// preemption change logits only within tolerance; two runs give the same bits.
//
// Tolerance: bf16 weights and activations against f32 everywhere: logits agree within
// kLogitTolerance x (largest |logit| of the CPU row, at least 1); greedy tokens agree, or part
// only where the CPU's top two logits are within kNearTie x that scale (a near-tie).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../step_batch_support.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/engine/cpu/cpu_model_runner.hpp"
#include "flowrank/engine/cuda/cuda_model_runner.hpp"
#include "flowrank/engine/engine.hpp"

namespace flowrank::engine {
namespace {

namespace fs = std::filesystem;
using testing::forward_logits;
using testing::preload_blocks;
using testing::TestBatch;
using testing::TestItem;

constexpr double kLogitTolerance = 0.05;
constexpr double kNearTie = 0.02;
// The checkout: compiled in, or $FLOWRANK_SOURCE_DIR for a build made on another machine.
const fs::path kSource = [] {
  const char* env = std::getenv("FLOWRANK_SOURCE_DIR");
  return fs::path(env != nullptr && *env != '\0' ? env : FLOWRANK_SOURCE_DIR);
}();

bool have_gpu() {
  return cuda_device_count() > 0;
}

// SmolLM2 cut to its first 4 layers (tools/make_test_models.py cut; scripts/setup makes it).
std::string cut_model_path() {
  if (const char* env = std::getenv("FLOWRANK_TEST_CUT_MODEL"); env && *env) return env;
  return (kSource / "models" / "SmolLM2-135M-Instruct.4-layers.gguf").string();
}

struct Compared {
  double worst = 0;     // max |gpu - cpu| / scale over all rows
  int argmax_diff = 0;  // rows whose argmax differs at a gap the CPU does not call a tie
};

// Largest |x| of a row, at least 1.
double scale_of(const float* row, int64_t n) {
  double s = 1.0;
  for (int64_t i = 0; i < n; ++i) s = std::max(s, static_cast<double>(std::fabs(row[i])));
  return s;
}

// Top two logits' gap of a row, relative to its scale.
double top2_gap(const float* row, int64_t n) {
  float a = -INFINITY, b = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    if (row[i] > a) {
      b = a;
      a = row[i];
    } else if (row[i] > b) {
      b = row[i];
    }
  }
  return (static_cast<double>(a) - b) / scale_of(row, n);
}

int64_t argmax(const float* row, int64_t n) {
  return std::max_element(row, row + n) - row;
}

void compare_rows(const std::vector<float>& cpu, const std::vector<float>& gpu, int64_t vocab,
                  Compared& out) {
  ASSERT_EQ(cpu.size(), gpu.size());
  for (std::size_t r = 0; r * vocab < cpu.size(); ++r) {
    const float* c = cpu.data() + r * vocab;
    const float* g = gpu.data() + r * vocab;
    const double s = scale_of(c, vocab);
    for (int64_t i = 0; i < vocab; ++i) {
      ASSERT_TRUE(std::isfinite(g[i])) << "row " << r << " logit " << i;
      out.worst = std::max(out.worst, std::fabs(static_cast<double>(g[i]) - c[i]) / s);
    }
    if (argmax(c, vocab) != argmax(g, vocab) && top2_gap(c, vocab) > kNearTie) ++out.argmax_diff;
  }
}

// Two sequences on shuffled pages: a prefill of both in one step, then decode steps of both.
Compared logits_against_cpu(ModelWeights cpu_weights, ModelWeights gpu_weights) {
  CpuModelRunner cpu(std::move(cpu_weights));
  CudaRunnerOptions options;
  options.cuda_graphs = false;
  auto gpu = make_cuda_runner(std::move(gpu_weights), options);
  preload_blocks(cpu, 64, 16);
  preload_blocks(*gpu, 64, 16);
  const int64_t vocab = cpu.config().n_vocab;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> tok(
      3, static_cast<int32_t>(std::min<int64_t>(vocab, 49152)) - 1);
  std::vector<std::vector<int32_t>> seqs(2);
  for (int i = 0; i < 150; ++i) seqs[0].push_back(tok(rng));
  for (int i = 0; i < 97; ++i) seqs[1].push_back(tok(rng));
  const std::vector<std::vector<int32_t>> tables = {{40, 3, 17, 9, 60, 22, 31, 5, 8, 11, 12},
                                                    {50, 33, 1, 14, 2, 7, 30, 29}};
  Compared out;
  TestBatch batch;
  for (std::size_t s = 0; s < 2; ++s) batch.items.push_back({seqs[s], 0, tables[s], true});
  std::vector<float> lc, lg;
  forward_logits(cpu, batch, lc);
  forward_logits(*gpu, batch, lg);
  compare_rows(lc, lg, vocab, out);
  for (int step = 0; step < 6; ++step) {
    std::vector<std::vector<int32_t>> next(2);
    for (std::size_t s = 0; s < 2; ++s) {
      next[s] = {static_cast<int32_t>(argmax(lc.data() + s * vocab, vocab) % 49152)};
      batch.items[s] = {next[s], static_cast<int32_t>(seqs[s].size()), tables[s], true};
      seqs[s].push_back(next[s][0]);
    }
    forward_logits(cpu, batch, lc);
    forward_logits(*gpu, batch, lg);
    compare_rows(lc, lg, vocab, out);
  }
  return out;
}

class GpuLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuLogits, MatchTheCpuBackend) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const std::string spec = GetParam();
  if (spec.rfind("dummy:", 0) != 0 && !fs::exists(spec)) GTEST_SKIP() << spec << " missing";
  const Compared c = logits_against_cpu(load_model(spec), load_model(spec, 0, false));
  std::printf("%s: worst |gpu - cpu| / scale = %.3g, argmax differences %d\n", spec.c_str(),
              c.worst, c.argmax_diff);
  EXPECT_LT(c.worst, kLogitTolerance) << spec;
  EXPECT_EQ(c.argmax_diff, 0) << spec;
}

INSTANTIATE_TEST_SUITE_P(Models, GpuLogits,
                         ::testing::Values("dummy:llama3-mini", "dummy:olmo3-mini",
                                           "dummy:smollm2-135m", cut_model_path()));

// ---- the whole engine ----------------------------------------------------------------------

EngineOptions engine_options(const std::string& device, const std::string& model) {
  EngineOptions o;
  o.model = model;
  o.tokenizer_model = (kSource / "fixtures" / "tokenizers" / "smollm2.tokenizer.gguf").string();
  o.device = device;
  o.max_seqs = 16;
  o.max_batch_tokens = 512;
  return o;
}

struct EngineRun {
  std::vector<std::vector<int32_t>> tokens;  // per request, in id order
};

// Eight prompts sharing a long prefix (so the prefix cache and cascade have work), greedy.
EngineRun run_engine(const EngineOptions& o, int32_t max_tokens = 48) {
  auto eng = make_engine(o);
  eng->preload();
  std::string shared = "Shared context for every request.";
  for (int i = 0; i < 40; ++i)
    shared += " The ticket router reads rules in order " + std::to_string(i) + ".";
  for (uint64_t id = 1; id <= 8; ++id) {
    Request r;
    r.id = id;
    r.prompt = shared + " Question " + std::to_string(id) + ": what is rule " +
               std::to_string(id * 7) + "?";
    r.sampling.max_tokens = max_tokens;
    r.sampling.ignore_eos = true;
    eng->submit(std::move(r));
  }
  EngineRun run;
  run.tokens.resize(8);
  while (eng->has_work())
    for (Completion& c : eng->step()) run.tokens[c.id - 1] = c.tokens;
  return run;
}

// Tokens agree, or first part where a CPU-side near-tie makes either choice right: checked by
// the caller through the count of requests that part at all (a near-tie is rare at these
// lengths; more than a quarter parting means a real error).
int parted(const EngineRun& a, const EngineRun& b) {
  int n = 0;
  for (std::size_t i = 0; i < a.tokens.size(); ++i) n += a.tokens[i] != b.tokens[i] ? 1 : 0;
  return n;
}

// The golden prompts of tests/data/golden/smollm2_greedy.json, greedy for 48 tokens on both
// runners over the cut SmolLM2, all 12 in one batch: token for token equal, or parting first
// where the CPU's top two logits are a near-tie.
TEST(GpuRunner, GreedyTokensOfRealWeightsMatchTheCpuRunner) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const std::string model = cut_model_path();
  if (!fs::exists(model)) GTEST_SKIP() << model << " missing";
  const auto golden = nlohmann::json::parse(
      read_file(kSource / "tests" / "data" / "golden" / "smollm2_greedy.json"));
  CpuModelRunner cpu(load_model(model));
  auto gpu = make_cuda_runner(load_model(model), CudaRunnerOptions{});
  preload_blocks(cpu, 128, 16);
  preload_blocks(*gpu, 128, 16);
  const int64_t vocab = cpu.config().n_vocab;
  std::vector<std::vector<int32_t>> seqs, tables;
  for (const auto& c : golden["cases"]) seqs.push_back(c["prompt_ids"].get<std::vector<int32_t>>());
  tables.assign(seqs.size(), {});
  for (std::size_t s = 0; s < seqs.size(); ++s)
    for (int32_t b = 0; b < 10; ++b) tables[s].push_back(static_cast<int32_t>(s * 10 + b));
  std::vector<int32_t> computed(seqs.size(), 0), parted_at(seqs.size(), -1);
  for (int step = 0; step < 48; ++step) {
    TestBatch batch;
    for (std::size_t s = 0; s < seqs.size(); ++s) {
      const auto n = static_cast<std::size_t>(static_cast<int32_t>(seqs[s].size()) - computed[s]);
      batch.items.push_back(
          {std::span<const int32_t>(seqs[s]).subspan(static_cast<std::size_t>(computed[s]), n),
           computed[s], tables[s], true});
    }
    std::vector<float> lc, lg;
    forward_logits(cpu, batch, lc);
    forward_logits(*gpu, batch, lg);
    for (std::size_t s = 0; s < seqs.size(); ++s) {
      computed[s] = static_cast<int32_t>(seqs[s].size());
      const float* c = lc.data() + s * vocab;
      const int64_t tc = argmax(c, vocab), tg = argmax(lg.data() + s * vocab, vocab);
      if (tc != tg && parted_at[s] < 0) {
        parted_at[s] = step;
        EXPECT_LT(top2_gap(c, vocab), kNearTie)
            << "case " << s << " parts at token " << step << " without a near-tie";
      }
      seqs[s].push_back(static_cast<int32_t>(tc));  // both continue on the CPU's token
    }
  }
  for (std::size_t s = 0; s < seqs.size(); ++s)
    std::printf("case %zu: %s\n", s,
                parted_at[s] < 0
                    ? "48 of 48 greedy tokens equal"
                    : ("parts at a near-tie at token " + std::to_string(parted_at[s])).c_str());
}

TEST(GpuEngine, TwoRunsGiveTheSameBits) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const EngineOptions o = engine_options("cuda", "dummy:llama3-mini");
  EXPECT_EQ(run_engine(o).tokens, run_engine(o).tokens);
}

TEST(GpuEngine, PrefixCacheCascadeGraphsAndPreemptionKeepTheTokens) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const std::string model = fs::exists(cut_model_path()) ? cut_model_path() : "dummy:llama3-mini";
  const EngineRun base = run_engine(engine_options("cuda", model));
  EngineOptions o = engine_options("cuda", model);
  o.prefix_cache = false;
  EXPECT_LE(parted(base, run_engine(o)), 2) << "prefix cache off";
  o = engine_options("cuda", model);
  o.cascade_attention = false;
  EXPECT_LE(parted(base, run_engine(o)), 2) << "cascade off";
  o = engine_options("cuda", model);
  o.cuda_graphs = false;
  EXPECT_LE(parted(base, run_engine(o)), 2) << "graphs off";
  o = engine_options("cuda", model);
  o.max_seqs = 3;  // other batch compositions
  EXPECT_LE(parted(base, run_engine(o)), 2) << "max_seqs 3";
  o = engine_options("cuda", model);
  o.kv_blocks = 40;  // too few blocks for 8 sequences of ~520 tokens: preemption
  EXPECT_LE(parted(base, run_engine(o)), 2) << "preemption";
}

TEST(GpuEngine, MissingDeviceIsOneLine) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  EngineOptions o = engine_options("cuda", "dummy:llama3-mini");
  o.gpu = 99;
  try {
    make_engine(o);
    FAIL() << "expected RunError";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find("device 99 does not exist"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace flowrank::engine
