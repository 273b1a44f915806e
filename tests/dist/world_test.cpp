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
  auto w = detect_world({{"SLURM_NTASKS", "2"},
                         {"SLURM_PROCID", "1"},
                         {"SLURM_LOCALID", "1"},
                         {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.size, 2);
  EXPECT_EQ(w.rank, 1);
}

TEST(World, MalformedVariableNamesIt) {
  try {
    detect_world({{"SLURM_NTASKS", "two"}, {"SLURM_STEP_ID", "0"}});
    FAIL();
  } catch (const flowrank::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_NTASKS"), std::string::npos);
  }
  EXPECT_THROW(detect_world({{"PMI_SIZE", "2"}, {"PMI_RANK", "2"}}), flowrank::InputError);
}

// PMIx exports PMIX_RANK but usually no size: the size comes from the launcher that started it.
TEST(World, PmixRankWithTheLaunchersSize) {
  auto w = detect_world({{"PMIX_RANK", "2"},
                         {"SLURM_NTASKS", "3"},
                         {"SLURM_LOCALID", "0"},
                         {"SLURM_STEP_ID", "0"},
                         {"SLURM_PROCID", "2"}});
  EXPECT_EQ(w.launcher, "pmix");
  EXPECT_EQ(w.size, 3);
  EXPECT_EQ(w.rank, 2);
  EXPECT_TRUE(w.launched());
  // PMIX_SIZE alone (no other launcher variables) still counts.
  auto alone = detect_world({{"PMIX_RANK", "1"}, {"PMIX_SIZE", "2"}});
  EXPECT_EQ(alone.launcher, "pmix");
  EXPECT_EQ(alone.size, 2);
  // A PMIx rank without any size is not a launcher world.
  EXPECT_EQ(detect_world({{"PMIX_RANK", "0"}}).launcher, "local");
}

// An sbatch script's own shell has SLURM_NTASKS but is no task of a job step: a plain local run.
TEST(World, SlurmBatchShellIsLocal) {
  auto w = detect_world({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_JOB_ID", "7"}});
  EXPECT_EQ(w.launcher, "local");
  EXPECT_FALSE(w.launched());
}
