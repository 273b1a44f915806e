#include "flowrank/dist/gpu_ranks.hpp"

#include <gtest/gtest.h>

using namespace flowrank::dist;

TEST(AssignGpus, DistinctGpusOnTwoHostsUseNccl) {
  const std::vector<std::string> ids = {"a|0000:01:00.0", "a|0000:02:00.0", "b|0000:01:00.0"};
  const auto g = assign_gpus(ids, 2, 0);
  EXPECT_EQ(g.gpu, 0);
  EXPECT_EQ(g.ranks_on_this_gpu, 1);
  EXPECT_TRUE(g.distinct_gpus);
  EXPECT_TRUE(nccl_wanted(3, g));
}

TEST(AssignGpus, SharedGpuSkipsNcclAndCountsItsUsers) {
  const std::vector<std::string> ids = {"a|0000:01:00.0", "a|0000:01:00.0"};
  const auto g = assign_gpus(ids, 1, 0);
  EXPECT_EQ(g.ranks_on_this_gpu, 2);
  EXPECT_FALSE(g.distinct_gpus);
  EXPECT_FALSE(nccl_wanted(2, g));
}

TEST(AssignGpus, NoGpuAnywhereOrOneRankMeansNoNccl) {
  const auto cpu = assign_gpus({"", ""}, 0, 0);
  EXPECT_EQ(cpu.gpu, -1);
  EXPECT_FALSE(nccl_wanted(2, cpu));
  const auto one = assign_gpus({"a|0000:01:00.0"}, 0, 0);
  EXPECT_TRUE(one.distinct_gpus);
  EXPECT_FALSE(nccl_wanted(1, one));
}
