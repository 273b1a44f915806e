#include "flowrank/dist/sharding.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

using flowrank::dist::plan_shards;
using flowrank::dist::ShardItem;

namespace {

std::vector<ShardItem> costs(std::initializer_list<int64_t> c) {
  std::vector<ShardItem> out;
  for (int64_t v : c) out.push_back({v, -1, 0});
  return out;
}

}  // namespace

TEST(PlanShards, OneRankTakesEverythingInOrder) {
  const auto plan = plan_shards(costs({5, 1, 9}), 1);
  EXPECT_EQ(plan.items[0], (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(plan.load[0], 15);
}

// LPT by hand, loads (r0, r1): 9 -> r0 (9, 0); 7 -> r1 (9, 7); 6 -> r1 (9, 13); 5 -> r0 (14, 13);
// 4 -> r1 (14, 17); 2 -> r0 (16, 17).
TEST(PlanShards, LongestFirstOntoTheLeastLoadedRank) {
  const auto plan = plan_shards(costs({4, 9, 2, 7, 6, 5}), 2);
  EXPECT_EQ(plan.rank_of, (std::vector<int32_t>{1, 0, 0, 1, 1, 0}));
  EXPECT_EQ(plan.load, (std::vector<int64_t>{16, 17}));
  EXPECT_EQ(plan.items[0], (std::vector<int32_t>{1, 2, 5}));
}

// Round-robin by count would put both expensive items on rank 0; cost balancing does not.
TEST(PlanShards, BalancesCostNotCount) {
  const auto plan = plan_shards(costs({100, 1, 100, 1}), 2);
  EXPECT_NE(plan.rank_of[0], plan.rank_of[2]);
  EXPECT_EQ(plan.load[0], 101);
  EXPECT_EQ(plan.load[1], 101);
}

// A shared prefix is paid once per rank: a rank already holding the group takes a new item at its
// own cost only.
TEST(PlanShards, SharedPrefixCountedOncePerRank) {
  std::vector<ShardItem> items(4, ShardItem{10, 0, 1000});
  const auto plan = plan_shards(items, 2);
  EXPECT_EQ(plan.load[0], 1020);
  EXPECT_EQ(plan.load[1], 1020);
  // With one rank, four items share one prefix: 1000 + 4 * 10.
  EXPECT_EQ(plan_shards(items, 1).load[0], 1040);
}

TEST(PlanShards, EveryItemExactlyOnceAndMoreRanksThanItems) {
  const auto plan = plan_shards(costs({3, 3, 3}), 5);
  std::vector<int32_t> all;
  for (const auto& v : plan.items) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(std::count(plan.load.begin(), plan.load.end(), 0), 2);
  EXPECT_THROW(plan_shards({}, 0), std::invalid_argument);
}
