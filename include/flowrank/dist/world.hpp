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
};

// Reads OMPI_COMM_WORLD_{SIZE,RANK,LOCAL_RANK}, PMIX_RANK (+ OMPI size), PMI_SIZE/PMI_RANK,
// SLURM_NTASKS/SLURM_PROCID/SLURM_LOCALID, in that order of preference. `env` is injectable for
// tests; by default the process environment. Malformed values throw InputError naming the variable.
World detect_world();
World detect_world(const std::map<std::string, std::string>& env);

}  // namespace flowrank::dist
