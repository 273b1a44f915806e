#include <gtest/gtest.h>

#include "fakes.hpp"
#include "flowrank/engine/scheduler.hpp"

using namespace flowrank;
using namespace flowrank::engine;
using flowrank::engine::testing::ByteTokenizer;

namespace {

Sequence make_seq(uint64_t id, const ByteTokenizer& tok, std::string_view prompt) {
  SamplingParams sp;
  sp.max_tokens = 100;
  return Sequence(id, tok.encode(prompt, true, false), sp, {}, tok, Clock::now());
}

}  // namespace

TEST(Scheduler, PreemptsTheNewestRunningSequenceWhenBlocksRunOut) {
  ByteTokenizer tok;
  BlockPool pool(6, 4);
  PrefixCache cache(pool, false);
  Scheduler sched({64, 8}, cache);
  Sequence a = make_seq(1, tok, "abcdefg"), b = make_seq(2, tok, "hijklmn"),
           c = make_seq(3, tok, "opqrstu");  // 8 tokens = 2 blocks each
  for (Sequence* s : {&a, &b, &c}) sched.add(*s);

  const SchedulerOutput& first = sched.schedule();
  ASSERT_EQ(first.chunks.size(), 3u);
  for (const ScheduledChunk& ch : first.chunks) {
    EXPECT_EQ(ch.count, 8);
    EXPECT_EQ(ch.seq->block_table.size(), 2u);
  }
  EXPECT_EQ(pool.num_free(), 0);
  for (Sequence* s : {&a, &b, &c}) {
    sched.computed(*s, 8);
    s->append_token('x', 1000);  // 9 tokens: the next step needs a third block each
  }

  const SchedulerOutput& second = sched.schedule();
  // A (oldest) needs a block: C (newest) is preempted; its two blocks serve A and B.
  ASSERT_EQ(second.chunks.size(), 2u);
  EXPECT_EQ(second.chunks[0].seq, &a);
  EXPECT_EQ(second.chunks[1].seq, &b);
  EXPECT_EQ(second.chunks[0].count, 1);
  EXPECT_EQ(c.status, SequenceStatus::kWaiting);
  EXPECT_EQ(c.preemptions, 1);
  EXPECT_TRUE(c.block_table.empty());
  EXPECT_EQ(sched.num_running(), 2);
  EXPECT_EQ(sched.num_waiting(), 1);  // C needs 3 blocks for its 9 tokens; none are free
  EXPECT_EQ(sched.preemptions(), 1);

  // A finishes: its 3 blocks let C back in, recomputing all 9 of its tokens.
  sched.computed(a, 1);
  sched.computed(b, 1);
  b.append_token('y', 1000);
  sched.finish(a);
  const SchedulerOutput& third = sched.schedule();
  ASSERT_EQ(third.chunks.size(), 2u);
  EXPECT_EQ(third.chunks[0].seq, &b);
  EXPECT_EQ(third.chunks[1].seq, &c);
  EXPECT_EQ(third.chunks[1].count, 9);
  EXPECT_EQ(c.num_computed, 0);
}
