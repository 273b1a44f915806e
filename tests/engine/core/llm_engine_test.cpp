#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fakes.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/engine/llm_engine.hpp"

using namespace flowrank;
using namespace flowrank::engine;
using flowrank::engine::testing::ByteTokenizer;
using flowrank::engine::testing::PagedToyRunner;

namespace {

struct ToySetup {
  int32_t context = 4096;
  int32_t block_size = 4;
  int32_t kv_blocks = 256;
  int32_t max_batch_tokens = 64;
  int32_t max_seqs = 16;
  bool prefix_cache = true;
  int32_t eos_at_length = 0;
};

struct Harness {
  std::unique_ptr<LlmEngine> engine;
  PagedToyRunner* runner = nullptr;  // owned by the engine
};

Harness make(const ToySetup& s) {
  auto runner = std::make_unique<PagedToyRunner>(s.context);
  runner->eos_at_length = s.eos_at_length;
  Harness h;
  h.runner = runner.get();
  EngineOptions o;
  o.block_size = s.block_size;
  o.kv_blocks = s.kv_blocks;
  o.max_batch_tokens = s.max_batch_tokens;
  o.max_seqs = s.max_seqs;
  o.prefix_cache = s.prefix_cache;
  h.engine = std::make_unique<LlmEngine>(std::move(runner), std::make_shared<ByteTokenizer>(), o,
                                         EngineInfo{"toy", "", "toy", "toy", 0, 0, 0, {}});
  h.engine->preload();
  return h;
}

// Every block is back: unreferenced, and either free or cached (ref 0, evictable).
void expect_pool_idle(const LlmEngine& engine) {
  const PrefixCache& cache = *engine.prefix_cache();
  const BlockPool& pool = cache.pool();
  for (int32_t b = 0; b < pool.num_blocks(); ++b) {
    EXPECT_EQ(pool.ref_count(b), 0) << "block " << b;
    EXPECT_TRUE(pool.is_free(b) || cache.is_evictable(b)) << "block " << b;
  }
  EXPECT_EQ(pool.num_free() + cache.num_evictable(), pool.num_blocks());
}

std::map<uint64_t, Completion> drain(LlmEngine& engine) {
  std::map<uint64_t, Completion> out;
  for (int guard = 0; engine.has_work(); ++guard) {
    EXPECT_LT(guard, 100000);
    for (Completion& c : engine.step()) out.emplace(c.id, std::move(c));
  }
  expect_pool_idle(engine);
  return out;
}

Request req(uint64_t id, std::string prompt, int32_t max_tokens, float temperature = 0.0f) {
  Request r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.sampling.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.top_p = temperature > 0 ? 0.9f : 1.0f;
  r.sampling.seed = 1000 + id;
  r.stream = {id / 3, id % 3};
  return r;
}

std::map<uint64_t, Completion> run(const ToySetup& s, const std::vector<Request>& requests) {
  Harness h = make(s);
  for (const Request& r : requests) h.engine->submit(r);
  return drain(*h.engine);
}

void expect_same_outputs(const std::map<uint64_t, Completion>& a,
                         const std::map<uint64_t, Completion>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, c] : a) {
    ASSERT_TRUE(b.contains(id));
    EXPECT_EQ(c.tokens, b.at(id).tokens) << "request " << id;
    EXPECT_EQ(c.text, b.at(id).text) << "request " << id;
    EXPECT_EQ(c.finish, b.at(id).finish) << "request " << id;
  }
}

// 26 requests: distinct prompts of 5..60 bytes, a mix of greedy and sampled ones.
std::vector<Request> many_requests() {
  std::vector<Request> out;
  for (uint64_t i = 0; i < 26; ++i) {
    std::string p = "task " + std::to_string(i) + ": ";
    for (uint64_t j = 0; j < (i * 7) % 50; ++j) p += static_cast<char>('a' + (i + j) % 26);
    out.push_back(req(i, p, 8 + static_cast<int32_t>(i % 5) * 6, i % 2 ? 0.8f : 0.0f));
  }
  return out;
}

}  // namespace

TEST(LlmEngine, GeneratesUpToMaxTokensWithCounts) {
  Harness h = make({});
  h.engine->submit(req(1, "hello world", 6));
  auto out = drain(*h.engine);
  const Completion& c = out.at(1);
  EXPECT_EQ(c.prompt_tokens, 12);  // BOS + 11 bytes
  EXPECT_EQ(c.decode_tokens, 6);
  EXPECT_EQ(c.tokens.size(), 6u);
  EXPECT_EQ(c.text.size(), 6u);
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.cached_tokens, 0);
  EXPECT_LE(c.timing.submitted, c.timing.first_scheduled);
  EXPECT_LE(c.timing.first_scheduled, c.timing.first_token);
  EXPECT_LE(c.timing.first_token, c.timing.finished);
  EXPECT_EQ(h.engine->info().kv_blocks, 256);
  EXPECT_EQ(h.engine->info().block_size, 4);
  EXPECT_EQ(h.engine->info().device, "toy");
}

TEST(LlmEngine, PrefixCacheHitsExactlyOnSharedFullBlocksAndChangesNothing) {
  // Block size 4. A = BOS + "abcdefghij" (11 tokens), run first; then, one at a time:
  //   B shares BOS+"abcdefg" (8 tokens)   -> 2 full blocks -> 8 cached
  //   C shares BOS+"abcde" (6 tokens)     -> 1 full block  -> 4 cached
  //   D shares nothing                    -> 0
  //   E = A's prompt (11 tokens)          -> blocks 0..1 full in E -> 8 cached
  //   F = A's prompt + A's first output token (12 tokens = 3 full blocks, all cached since A
  //       computed 15 tokens) -> a full hit: the last token is recomputed -> 11 cached
  auto run_all = [](bool prefix_cache, std::map<uint64_t, Completion>& out, int32_t& copies) {
    ToySetup s;
    s.prefix_cache = prefix_cache;
    Harness h = make(s);
    h.engine->submit(req(0, "abcdefghij", 5));
    out = drain(*h.engine);
    const std::string a_first(1, static_cast<char>(out.at(0).tokens.at(0)));
    const std::vector<Request> later = {req(1, "abcdefgXYZ", 5), req(2, "abcdeQRSTU", 5),
                                        req(3, "zzzzzzzzzz", 5), req(4, "abcdefghij", 5),
                                        req(5, "abcdefghij" + a_first, 5)};
    for (const Request& r : later) {
      h.engine->submit(r);
      for (auto& [id, c] : drain(*h.engine)) out.emplace(id, c);
    }
    copies = h.runner->copies;
  };
  std::map<uint64_t, Completion> on, off;
  int32_t copies_on = 0, copies_off = 0;
  run_all(true, on, copies_on);
  run_all(false, off, copies_off);
  expect_same_outputs(on, off);
  const std::map<uint64_t, int32_t> want = {{0, 0}, {1, 8}, {2, 4}, {3, 0}, {4, 8}, {5, 11}};
  for (const auto& [id, n] : want) {
    EXPECT_EQ(on.at(id).cached_tokens, n) << "request " << id;
    EXPECT_EQ(off.at(id).cached_tokens, 0) << "request " << id;
  }
  EXPECT_EQ(copies_on, 1);  // F's shared last block, copied before its last token is recomputed
  EXPECT_EQ(copies_off, 0);
}

TEST(LlmEngine, ConcurrentSharedPrefixesGiveTheSameOutputs) {
  // Ten requests with a 40-byte common prefix, all submitted at once, some sampled.
  std::vector<Request> rs;
  const std::string common = "Shared context: the quick brown fox jum";
  for (uint64_t i = 0; i < 10; ++i)
    rs.push_back(req(i, common + "task " + std::to_string(i), 12, i % 2 ? 0.7f : 0.0f));
  ToySetup on;
  on.max_batch_tokens = 20;  // chunked prefill, so later requests can hit earlier blocks
  ToySetup off = on;
  off.prefix_cache = false;
  const auto a = run(on, rs);
  expect_same_outputs(a, run(off, rs));
  int32_t cached = 0;
  for (const auto& [id, c] : a) cached += c.cached_tokens;
  EXPECT_GT(cached, 0);
}

TEST(LlmEngine, PreemptionWhenThePoolIsShortChangesNothing) {
  // Each request needs up to ceil((prompt + 20) / 4) = 8..10 blocks; 14 blocks hold one or two.
  std::vector<Request> rs;
  for (uint64_t i = 0; i < 8; ++i)
    rs.push_back(req(i, "req " + std::to_string(i) + " body", 20, i % 2 ? 0.9f : 0.0f));
  for (bool cache : {true, false}) {
    ToySetup big;
    big.prefix_cache = cache;
    ToySetup tight = big;
    tight.kv_blocks = 14;
    const auto a = run(big, rs);
    const auto b = run(tight, rs);
    expect_same_outputs(a, b);
    int32_t preempted = 0;
    for (const auto& [id, c] : b) {
      preempted += c.preemptions;
      EXPECT_EQ(c.decode_tokens, 20);
      EXPECT_LE(c.cached_tokens, c.prompt_tokens);
    }
    for (const auto& [id, c] : a) EXPECT_EQ(c.preemptions, 0);
    EXPECT_GT(preempted, 0) << "prefix cache " << cache;
  }
}

TEST(LlmEngine, OutputsDoNotDependOnBatchCompositionOrOrder) {
  const std::vector<Request> rs = many_requests();
  ToySetup s;
  s.max_seqs = 32;
  const auto together = run(s, rs);
  ASSERT_EQ(together.size(), 26u);
  std::vector<Request> reversed(rs.rbegin(), rs.rend());
  expect_same_outputs(together, run(s, reversed));
  ToySetup small = s;
  small.max_batch_tokens = 7;
  small.max_seqs = 5;
  expect_same_outputs(together, run(small, rs));
  for (const Request& r : rs) {
    const auto alone = run(s, {r});
    EXPECT_EQ(alone.at(r.id).tokens, together.at(r.id).tokens) << "request " << r.id;
    EXPECT_EQ(alone.at(r.id).text, together.at(r.id).text) << "request " << r.id;
  }
  // Sampled requests differ from greedy ones with the same prompt (the sampler is really used).
  Request greedy = rs[1];
  greedy.sampling.temperature = 0.0f;
  EXPECT_NE(run(s, {greedy}).at(1).tokens, together.at(1).tokens);
}

TEST(LlmEngine, ChunkedPrefillSpreadsALongPromptWithinTheBudget) {
  ToySetup s;
  s.max_batch_tokens = 16;
  Harness h = make(s);
  h.engine->submit(req(1, std::string(99, 'x'), 3));  // 100 tokens with BOS
  const auto out = drain(*h.engine);
  const auto& b = h.runner->batches;
  // 100 = 6 x 16 + 4: seven prefill chunks (the last one also samples), then 2 decode steps.
  ASSERT_EQ(b.size(), 9u);
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(b[i].size(), 1u);
    EXPECT_EQ(b[i][0].start_pos, 16 * i);
    EXPECT_EQ(b[i][0].size, i < 6 ? 16 : 4);
    EXPECT_EQ(b[i][0].want_logits, i == 6);
  }
  EXPECT_EQ(b[7][0].start_pos, 100);
  EXPECT_EQ(b[8][0].start_pos, 101);
  EXPECT_EQ(out.at(1).decode_tokens, 3);
}

TEST(LlmEngine, BatchesNeverExceedTheTokenBudgetOrSeqLimit) {
  ToySetup s;
  s.max_batch_tokens = 10;
  s.max_seqs = 3;
  Harness h = make(s);
  for (const Request& r : many_requests()) h.engine->submit(r);
  drain(*h.engine);
  bool split = false;
  for (const auto& batch : h.runner->batches) {
    int32_t tokens = 0;
    for (const auto& item : batch) {
      tokens += item.size;
      split = split || (item.start_pos > 0 && item.size > 1);  // a continued prefill chunk
    }
    EXPECT_LE(tokens, 10);
    EXPECT_LE(batch.size(), 3u);
  }
  EXPECT_TRUE(split);
  EXPECT_LE(h.engine->stats().max_batch_tokens_seen, 10);
}

TEST(LlmEngine, StopStringIsRemovedAndLaterTokensAreNotEmitted) {
  const auto plain = run({}, {req(1, "tell me", 30)}).at(1);
  ASSERT_EQ(plain.text.size(), 30u);
  const std::string stop = plain.text.substr(10, 3);
  const std::size_t at = plain.text.find(stop);
  Request r = req(1, "tell me", 30);
  r.sampling.stop = {stop};
  const auto c = run({}, {r}).at(1);
  EXPECT_EQ(c.finish, FinishReason::kStop);
  EXPECT_EQ(c.text, plain.text.substr(0, at));
  // One token per byte: the tokens end with the one that completed the stop string.
  EXPECT_EQ(c.tokens.size(), at + stop.size());
  EXPECT_TRUE(std::equal(c.tokens.begin(), c.tokens.end(), plain.tokens.begin()));
}

TEST(LlmEngine, EosEndsTheRequestUnlessIgnored) {
  ToySetup s;
  s.eos_at_length = 15;  // prompt BOS + "hello!" = 7 tokens: 8 letters, then EOS
  auto c = run(s, {req(1, "hello!", 50)}).at(1);
  EXPECT_EQ(c.finish, FinishReason::kEos);
  EXPECT_EQ(c.decode_tokens, 9);
  EXPECT_EQ(c.tokens.back(), ByteTokenizer::kEos);
  EXPECT_EQ(c.text.size(), 8u);
  Request r = req(1, "hello!", 12);
  r.sampling.ignore_eos = true;
  c = run(s, {r}).at(1);
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.decode_tokens, 12);
  EXPECT_EQ(c.tokens[8], ByteTokenizer::kEos);
}

TEST(LlmEngine, StopsAtTheModelContext) {
  ToySetup s;
  s.context = 16;
  const auto c = run(s, {req(1, "0123456789", 100)}).at(1);  // 11 prompt tokens
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.decode_tokens, 5);  // 16 tokens in all
}

TEST(LlmEngine, ASequenceThatOutgrowsTheWholePoolEndsInsteadOfCrashing) {
  ToySetup s;
  s.kv_blocks = 4;                                          // 16 KV slots
  const auto c = run(s, {req(1, "abcdefghi", 100)}).at(1);  // 10 prompt tokens
  // Tokens 0..15 get KV; the 17th token is sampled from position 15's logits, then no room.
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.decode_tokens, 7);
}

TEST(LlmEngine, ChatPromptsUseTheTemplate) {
  Harness h = make({});
  Request r = req(1, "hi", 2);
  r.chat = true;
  h.engine->submit(r);
  const auto c = drain(*h.engine).at(1);
  EXPECT_EQ(c.prompt_tokens,
            1 + static_cast<int32_t>(std::string("<|user|>\nhi\n<|assistant|>\n").size()));
  EXPECT_EQ(h.engine->tokenize("abc"), (std::vector<int32_t>{'a', 'b', 'c'}));
}

TEST(LlmEngine, RejectsPromptsThatCannotFit) {
  ToySetup s;
  s.context = 64;
  s.kv_blocks = 4;
  s.block_size = 4;
  Harness h = make(s);
  auto message = [&](const Request& r) -> std::string {
    try {
      h.engine->submit(r);
    } catch (const InputError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message(req(7, std::string(100, 'a'), 4)),
            "request 7: prompt of 101 tokens exceeds the model context of 64");
  EXPECT_EQ(message(req(8, std::string(30, 'a'), 4)),
            "request 8: prompt of 31 tokens needs 8 KV blocks, the pool has 4");
  Request bad = req(9, "x", 4);
  bad.sampling.top_p = 0.0f;
  EXPECT_EQ(message(bad), "request 9: top_p must be in (0, 1]");
  bad = req(10, "x", 0);
  EXPECT_EQ(message(bad), "request 10: max_tokens must be >= 1, found 0");
  h.engine->submit(req(11, "x", 4));
  EXPECT_EQ(message(req(11, "y", 4)), "request 11: id already in flight");
  EXPECT_TRUE(h.engine->has_work());  // the rejected requests left no trace; 11 is queued
  const auto out = drain(*h.engine);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out.begin()->first, 11u);
}

TEST(LlmEngine, RejectsBadOptions) {
  EngineOptions o;
  o.max_batch_tokens = 0;
  try {
    LlmEngine e(std::make_unique<PagedToyRunner>(), std::make_shared<ByteTokenizer>(), o, {});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "engine options: max_batch_tokens must be >= 1, found 0");
  }
}

TEST(LlmEngine, PoolIsSizedFromContextAndBackendLimit) {
  EngineOptions o;
  o.block_size = 16;
  o.max_batch_tokens = 2048;
  o.max_seqs = 4;
  LlmEngine a(std::make_unique<PagedToyRunner>(1000, 1 << 20), std::make_shared<ByteTokenizer>(), o,
              {});
  a.preload();
  EXPECT_EQ(a.info().kv_blocks, 4 * 63);  // ceil(1000 / 16) = 63 per sequence
  LlmEngine b(std::make_unique<PagedToyRunner>(1000, 100), std::make_shared<ByteTokenizer>(), o,
              {});
  b.preload();
  EXPECT_EQ(b.info().kv_blocks, 100);
}

TEST(LlmEngine, EvictionTakesTheLeastRecentlyReleasedCachedBlocks) {
  // Block size 4, 8 blocks. A = BOS + "abcdefghij" with 5 new tokens computes 15 tokens: its
  // blocks 0..2 are full and stay cached, released last-first, so the LRU order is 2, 1, 0.
  // D (20 prompt tokens + 6 new = 25 computed = 7 blocks) finds 5 free blocks and evicts two
  // cached ones: A's blocks 2 and 1. A's prompt again (E) then hits only block 0: 4 cached
  // tokens; E needs 3 more blocks: D's partial last block is free, two more are evicted.
  auto run_all = [](bool prefix_cache, std::vector<int64_t>& evictions) {
    ToySetup s;
    s.kv_blocks = 8;
    s.prefix_cache = prefix_cache;
    Harness h = make(s);
    std::map<uint64_t, Completion> out;
    for (const Request& r :
         {req(0, "abcdefghij", 5), req(1, "0123456789012345678", 6), req(2, "abcdefghij", 5)}) {
      h.engine->submit(r);
      for (auto& [id, c] : drain(*h.engine)) out.emplace(id, c);
      evictions.push_back(h.engine->stats().evictions);
    }
    return out;
  };
  std::vector<int64_t> evictions_on, evictions_off;
  const auto on = run_all(true, evictions_on);
  const auto off = run_all(false, evictions_off);
  expect_same_outputs(on, off);
  EXPECT_EQ(on.at(1).cached_tokens, 0);
  EXPECT_EQ(on.at(2).cached_tokens, 4);
  EXPECT_EQ(evictions_on, (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(evictions_off, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(on.at(0).tokens, on.at(2).tokens);
}

TEST(LlmEngine, FullHitWithoutRoomForACopyRecomputesTheLastBlock) {
  // 3 blocks of 4. A = BOS + "abcdefghij" + 2 new tokens: 12 computed = 3 full cached blocks.
  // F = A's prompt + A's first token = exactly those 12 tokens. Copying the last block needs a
  // fourth block, so F takes blocks 0..1 from the cache (8 tokens) and recomputes block 2.
  auto run_all = [](bool prefix_cache, int32_t& copies) {
    ToySetup s;
    s.kv_blocks = 3;
    s.prefix_cache = prefix_cache;
    Harness h = make(s);
    h.engine->submit(req(0, "abcdefghij", 2));
    auto out = drain(*h.engine);
    h.engine->submit(req(1, "abcdefghij" + std::string(1, char(out.at(0).tokens[0])), 1));
    for (auto& [id, c] : drain(*h.engine)) out.emplace(id, c);
    copies = h.runner->copies;
    return out;
  };
  int32_t copies_on = 0, copies_off = 0;
  const auto on = run_all(true, copies_on);
  expect_same_outputs(on, run_all(false, copies_off));
  EXPECT_EQ(on.at(1).cached_tokens, 8);
  EXPECT_EQ(copies_on, 0);
  EXPECT_EQ(on.at(1).tokens[0], on.at(0).tokens[1]);  // greedy continuation of the same text
}

TEST(LlmEngineLogits, KeptOnlyWhenAskedOneRowPerGeneratedToken) {
  Harness h = make(ToySetup{});
  h.engine->submit(req(1, "hello there", 6));
  drain(*h.engine);
  EXPECT_TRUE(h.engine->take_logits(1).empty()) << "logits kept without being asked";

  h.engine->keep_logits(true);
  h.engine->submit(req(2, "hello there", 6));
  const auto done = drain(*h.engine);
  const std::vector<float> rows = h.engine->take_logits(2);
  const Completion& c = done.at(2);
  const std::size_t vocab = 258;
  ASSERT_EQ(rows.size(), c.tokens.size() * vocab);
  // Greedy: each token is the argmax of the row it was drawn from.
  for (std::size_t i = 0; i < c.tokens.size(); ++i) {
    const float* row = rows.data() + i * vocab;
    EXPECT_EQ(std::max_element(row, row + vocab) - row, c.tokens[i]) << "token " << i;
  }
  EXPECT_TRUE(h.engine->take_logits(2).empty()) << "taken rows are forgotten";
}
