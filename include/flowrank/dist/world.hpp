#pragma once
// Where this process sits among the ranks of a run. Detection reads the launcher's environment
// only: a plain local run (size 1) never initialises MPI, NCCL or any communicator.
#include <cstdint>
#include <map>
#include <string>

namespace flowrank::dist {

struct World {
  int32_t rank = 0;
  int32_t size = 1;
  int32_t local_rank = 0;
  std::string launcher = "local";  // local | openmpi | pmix | pmi | slurm
  bool is_root() const { return rank == 0; }
  // Started by a launcher: MPI is initialised (even for a world of one), never otherwise.
  bool launched() const { return launcher != "local"; }
};

// Reads, in this order of preference: Open MPI's mpirun (OMPI_COMM_WORLD_{SIZE,RANK,LOCAL_RANK});
// PMIx (PMIX_RANK, with the size from the launcher that started it: OMPI_COMM_WORLD_SIZE,
// SLURM_NTASKS or PMIX_SIZE; local rank from PMIX_LOCAL_RANK or SLURM_LOCALID; PMIx itself does
// not usually export a size); PMI (PMI_SIZE/PMI_RANK); Slurm's srun
// (SLURM_NTASKS/SLURM_PROCID/SLURM_LOCALID, only inside a job step: SLURM_STEP_ID set, so that a
// process run directly by an sbatch script is a plain local run). `env` is injectable for tests;
// by default the process environment. Malformed values throw InputError naming the variable.
World detect_world();
World detect_world(const std::map<std::string, std::string>& env);

// This machine's host name (for one-line errors and the report).
std::string host_name();

}  // namespace flowrank::dist
