#include "flowrank/dist/sharding.hpp"

#include <algorithm>
#include <numeric>
#include <set>
#include <stdexcept>
#include <utility>

namespace flowrank::dist {

ShardPlan plan_shards(const std::vector<ShardItem>& items, int32_t ranks) {
  if (ranks < 1) throw std::invalid_argument("plan_shards: ranks must be >= 1");
  ShardPlan plan;
  plan.rank_of.assign(items.size(), 0);
  plan.items.assign(static_cast<std::size_t>(ranks), {});
  plan.load.assign(static_cast<std::size_t>(ranks), 0);
  std::vector<std::set<int32_t>> groups(static_cast<std::size_t>(ranks));

  std::vector<int32_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  auto full_cost = [&](int32_t i) { return items[i].cost + items[i].prefix_cost; };
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return full_cost(a) > full_cost(b); });
  for (int32_t i : order) {
    const ShardItem& item = items[i];
    int32_t best = 0;
    int64_t best_load = 0;
    for (int32_t r = 0; r < ranks; ++r) {
      const bool shared = item.prefix_group >= 0 && groups[r].count(item.prefix_group);
      const int64_t load = plan.load[r] + item.cost + (shared ? 0 : item.prefix_cost);
      if (r == 0 || load < best_load) {
        best = r;
        best_load = load;
      }
    }
    plan.rank_of[i] = best;
    plan.load[best] = best_load;
    plan.items[best].push_back(i);
    if (item.prefix_group >= 0) groups[best].insert(item.prefix_group);
  }
  for (auto& v : plan.items) std::sort(v.begin(), v.end());
  return plan;
}

}  // namespace flowrank::dist
