// The whole CPU engine (tokenizer, scheduler, prefix cache, sampler, CPU runner) on the bundled
// SmolLM2: outputs must not depend on batch composition, the prefix cache or preemption.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "flowrank/engine/engine.hpp"

using namespace flowrank::engine;

namespace {

const std::string kModel =
    std::string(FLOWRANK_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

// A shared context (so prefixes are shared across requests), then a per-request question.
const std::string kContext =
    "def score(ticket):\n    base = PRIORITY_WEIGHTS[ticket.priority]\n    age = "
    "ticket.age_hours()\n"
    "    return base * (1 + age / 24) / max(1, ticket.reopen_count)\n\n"
    "def route(ticket, rules):\n    for rule in rules:\n        if rule.matches(ticket):\n"
    "            return rule.queue\n    return 'default'\n";
const char* kQuestions[] = {
    "What does score() return for a new ticket?",
    "Which queue gets unmatched tickets?",
    "Can score() divide by zero?",
    "Name one rule attribute.",
    "Summarise route() in one line.",
    "What is PRIORITY_WEIGHTS?",
    "Write a docstring for score().",
    "How does age affect the score?",
};

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  int32_t cached = 0;
  int32_t preemptions = 0;
};

Request make_request(uint64_t id, int q) {
  Request r;
  r.id = id;
  r.prompt = kContext + "\nQuestion: " + kQuestions[q] + "\nAnswer:";
  r.sampling.max_tokens = 12;
  r.sampling.temperature = q % 2 ? 0.8f : 0.0f;  // sampled and greedy
  r.sampling.top_p = 0.9f;
  r.sampling.seed = 1234;
  r.sampling.ignore_eos = true;
  r.stream = {static_cast<uint64_t>(q), 0};
  return r;
}

std::map<int, Outcome> run(Engine& e, const std::vector<int>& questions) {
  std::map<uint64_t, int> by_id;
  uint64_t id = 100;
  for (int q : questions) {
    by_id[id] = q;
    e.submit(make_request(id++, q));
  }
  std::map<int, Outcome> out;
  while (e.has_work())
    for (auto& c : e.step())
      out[by_id.at(c.id)] = {c.tokens, c.text, c.cached_tokens, c.preemptions};
  return out;
}

EngineOptions options() {
  EngineOptions o;
  o.model = kModel;
  o.tokenizer_model = kModel;
  o.device = "cpu";
  o.kv_blocks = 256;
  o.max_batch_tokens = 256;
  return o;
}

class CpuEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "bundled model absent";
  }
};

}  // namespace

TEST_F(CpuEngine, OutputsDoNotDependOnBatchOrPrefixCacheOrPreemption) {
  const std::vector<int> all = {0, 1, 2, 3, 4, 5, 6, 7};

  // Reference: each request alone on a fresh engine with no prefix cache.
  EngineOptions solo_opts = options();
  solo_opts.prefix_cache = false;
  std::map<int, Outcome> alone;
  for (int q : all) {
    auto e = make_engine(solo_opts);
    e->preload();
    alone[q] = run(*e, {q}).at(q);
    EXPECT_EQ(alone[q].cached, 0);
    EXPECT_EQ(alone[q].tokens.size(), 12u);
  }

  // All together, reversed order, prefix cache on.
  auto batched_engine = make_engine(options());
  batched_engine->preload();
  auto batched = run(*batched_engine, {7, 6, 5, 4, 3, 2, 1, 0});

  // A pool too small for all eight at once: preemption by recompute.
  EngineOptions tight = options();
  tight.kv_blocks = 16;
  auto tight_engine = make_engine(tight);
  tight_engine->preload();
  auto preempted = run(*tight_engine, all);
  int preemptions = 0;

  const std::size_t shared = batched_engine->tokenize(kContext).size();
  for (int q : all) {
    EXPECT_EQ(batched.at(q).tokens, alone.at(q).tokens) << "question " << q;
    EXPECT_EQ(batched.at(q).text, alone.at(q).text) << "question " << q;
    EXPECT_EQ(preempted.at(q).tokens, alone.at(q).tokens) << "question " << q;
    preemptions += preempted.at(q).preemptions;
  }
  EXPECT_GT(preemptions, 0) << "the tight pool should have forced preemption";
  // The prefix cache serves whole 16-token blocks of the shared context to all but the
  // first-admitted request (requests admitted in the same iteration as the first compute it
  // themselves, so at least one request beyond the first must hit).
  int hits = 0;
  for (int q : all) {
    const int32_t cached = batched.at(q).cached;
    EXPECT_EQ(cached % 16, 0);
    EXPECT_LE(cached, static_cast<int32_t>(shared / 16 * 16 + 16));
    hits += cached > 0;
  }
  EXPECT_GT(hits, 0);
}

// Step sizes left at 0 are the backend's: a prompt longer than the CPU's 2,048-token step is
// prefilled in chunks of exactly that size, and the CPU engine says it is batch invariant.
TEST(CpuEngineOptions, StepSizesLeftUnsetAreTheBackendDefaults) {
  EngineOptions o;
  o.model = "dummy:llama3-mini";
  o.tokenizer_model =
      std::string(FLOWRANK_SOURCE_DIR) + "/fixtures/tokenizers/smollm2.tokenizer.gguf";
  o.device = "cpu";
  ASSERT_EQ(o.max_batch_tokens, 0);
  ASSERT_EQ(o.max_seqs, 0);
  auto e = make_engine(o);
  e->preload();
  EXPECT_TRUE(e->info().batch_invariant);
  Request r;
  r.id = 1;
  for (int i = 0; i < 400; ++i) r.prompt += "ticket " + std::to_string(i) + " reopened. ";
  ASSERT_GT(e->tokenize(r.prompt).size(), 2048u + 16u);
  r.sampling.max_tokens = 1;
  r.sampling.ignore_eos = true;
  e->submit(r);
  while (e->has_work()) e->step();
  EXPECT_EQ(e->stats().max_batch_tokens_seen, 2048);
}
