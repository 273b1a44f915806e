#pragma once
// Which rank runs which item (workflow), balanced by estimated cost rather than by count:
// longest first onto the least-loaded rank (LPT), where an item's cost on a rank includes its
// shared prefix only if that rank holds no item of the same prefix group yet (a prefix cache
// computes a shared prefix once per rank). Deterministic: ties go to the lower item index and the
// lower rank, so every rank computes the same plan from the same items.
#include <cstdint>
#include <vector>

namespace flowrank::dist {

struct ShardItem {
  int64_t cost = 0;           // the item's own cost
  int32_t prefix_group = -1;  // items of one group share a prefix; -1: none
  int64_t prefix_cost = 0;    // paid once per rank per group
};

struct ShardPlan {
  std::vector<int32_t> rank_of;             // per item
  std::vector<std::vector<int32_t>> items;  // per rank, item indices ascending
  std::vector<int64_t> load;                // per rank, estimated cost
};

// Throws std::invalid_argument for ranks < 1.
ShardPlan plan_shards(const std::vector<ShardItem>& items, int32_t ranks);

}  // namespace flowrank::dist
