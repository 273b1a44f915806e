#include <gtest/gtest.h>

#include "flowrank/common/error.hpp"
#include "flowrank/dist/world.hpp"

using flowrank::dist::detect_world;

TEST(World, PlainProcessIsSingleLocalRank) {
  auto w = detect_world({{"HOME", "/root"}});
  EXPECT_EQ(w.size, 1);
  EXPECT_EQ(w.rank, 0);
  EXPECT_EQ(w.launcher, "local");
}

TEST(World, OpenMpiWinsOverSlurm) {
  auto w = detect_world({{"OMPI_COMM_WORLD_SIZE", "4"},
                         {"OMPI_COMM_WORLD_RANK", "3"},
                         {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                         {"SLURM_NTASKS", "8"},
                         {"SLURM_PROCID", "7"}});
  EXPECT_EQ(w.launcher, "openmpi");
  EXPECT_EQ(w.size, 4);
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.local_rank, 1);
}

TEST(World, SlurmAlone) {
  auto w = detect_world({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "1"}});
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.size, 2);
  EXPECT_EQ(w.rank, 1);
}

TEST(World, MalformedVariableNamesIt) {
  try {
    detect_world({{"SLURM_NTASKS", "two"}});
    FAIL();
  } catch (const flowrank::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_NTASKS"), std::string::npos);
  }
  EXPECT_THROW(detect_world({{"PMI_SIZE", "2"}, {"PMI_RANK", "2"}}), flowrank::InputError);
}
