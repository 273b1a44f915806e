#include <gtest/gtest.h>

#include <string>

#include "fakes.hpp"
#include "flowrank/engine/prefix_cache.hpp"
#include "flowrank/engine/sequence.hpp"

using namespace flowrank;
using namespace flowrank::engine;
using flowrank::engine::testing::ByteTokenizer;

namespace {

Sequence make_seq(const ByteTokenizer& tok, SamplingParams sp) {
  return Sequence(1, tok.encode("prompt", true, false), std::move(sp), {}, tok, Clock::now());
}

// Feeds `text` byte by byte; returns how many tokens were taken before the sequence finished.
int feed(Sequence& seq, std::string_view text, int32_t max_len = 1 << 20) {
  int n = 0;
  for (unsigned char c : text) {
    ++n;
    if (seq.append_token(c, max_len)) return n;
  }
  return -1;
}

}  // namespace

TEST(Sequence, StopStringSpanningTokensIsCutWithEverythingAfterIt) {
  ByteTokenizer tok;
  SamplingParams sp;
  sp.max_tokens = 100;
  sp.stop = {"<END>", "zzz"};
  Sequence seq = make_seq(tok, sp);
  EXPECT_EQ(feed(seq, "hello<END>world"), 10);  // finished on '>'
  EXPECT_EQ(seq.finish_reason, FinishReason::kStop);
  EXPECT_EQ(seq.text, "hello");
  EXPECT_EQ(seq.num_generated(), 10);
  EXPECT_EQ(seq.completion().tokens.size(), 10u);
}

TEST(Sequence, EarliestStopStringWins) {
  ByteTokenizer tok;
  SamplingParams sp;
  sp.stop = {"cd", "bcd"};
  Sequence seq = make_seq(tok, sp);
  EXPECT_EQ(feed(seq, "abcdef"), 4);
  EXPECT_EQ(seq.text, "a");
}

TEST(Sequence, EosEndsUnlessIgnored) {
  ByteTokenizer tok;
  SamplingParams sp;
  sp.max_tokens = 3;
  Sequence seq = make_seq(tok, sp);
  EXPECT_FALSE(seq.append_token('a', 1000));
  EXPECT_TRUE(seq.append_token(ByteTokenizer::kEos, 1000));
  EXPECT_EQ(seq.finish_reason, FinishReason::kEos);
  EXPECT_EQ(seq.text, "a");
  EXPECT_EQ(seq.num_generated(), 2);  // EOS is a generated token, not text

  sp.ignore_eos = true;
  Sequence bench = make_seq(tok, sp);
  EXPECT_FALSE(bench.append_token(ByteTokenizer::kEos, 1000));
  EXPECT_FALSE(bench.append_token('b', 1000));
  EXPECT_TRUE(bench.append_token(ByteTokenizer::kEos, 1000));
  EXPECT_EQ(bench.finish_reason, FinishReason::kLength);
  EXPECT_EQ(bench.text, "b");
}

TEST(Sequence, MaxTokensAndContextEndTheSequence) {
  ByteTokenizer tok;
  SamplingParams sp;
  sp.max_tokens = 4;
  Sequence a = make_seq(tok, sp);
  EXPECT_EQ(feed(a, "abcdefgh"), 4);
  EXPECT_EQ(a.finish_reason, FinishReason::kLength);
  EXPECT_EQ(a.text, "abcd");
  // The prompt is BOS + "prompt" = 7 tokens; a limit of 9 tokens leaves room for 2.
  Sequence b = make_seq(tok, sp);
  EXPECT_EQ(feed(b, "abcdefgh", 9), 2);
  EXPECT_EQ(b.finish_reason, FinishReason::kLength);
}

TEST(Sequence, BlockHashesChainOverFullBlocks) {
  ByteTokenizer tok;
  Sequence seq = make_seq(tok, {});  // tokens: BOS p r o m p t
  const std::vector<int32_t> t = seq.tokens;
  const uint64_t h0 = PrefixCache::hash_block(PrefixCache::kRootHash, {t.data(), 3});
  const uint64_t h1 = PrefixCache::hash_block(h0, {t.data() + 3, 3});
  EXPECT_EQ(seq.block_hash(1, 3), h1);
  EXPECT_EQ(seq.block_hash(0, 3), h0);
}
