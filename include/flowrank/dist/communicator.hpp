#pragma once
// MPI over the world of a launched run, as plain bytes. Exists only under a launcher: a local run
// never constructs one, so it never calls MPI_Init. A build without MPI refuses to construct one.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flowrank/common/clock.hpp"

namespace flowrank::dist {

class Communicator {
 public:
  // MPI_Init_thread (MPI calls come from the calling thread only). Throws RunError in a build
  // without MPI, or when MPI cannot start.
  static std::unique_ptr<Communicator> init();
  // Whether this build has MPI at all.
  static bool available();
  ~Communicator();  // MPI_Finalize
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int32_t rank() const { return rank_; }
  int32_t size() const { return size_; }

  // `bytes` on `root` reaches every rank (length first, then the bytes).
  void broadcast(std::string& bytes, int32_t root = 0);
  // Every rank's bytes on `root`, by rank (MPI_Gatherv); other ranks get an empty vector.
  std::vector<std::string> gather(std::string_view mine, int32_t root = 0);
  // Returns once every rank has called it.
  void barrier();
  // Every rank's bytes on every rank, by rank.
  std::vector<std::string> all_gather(std::string_view mine);

  // Rank 0's `root_epoch` expressed in this rank's clock, measured by ping-pong with rank 0 (the
  // round trip with the least delay wins; the offset is taken at its midpoint). Rank 0 gets
  // `root_epoch` back. Collective.
  Clock::time_point shared_epoch(Clock::time_point root_epoch);

  // Ends every rank of the job now (MPI_Abort).
  [[noreturn]] void abort(int code);

 private:
  Communicator(int32_t rank, int32_t size) : rank_(rank), size_(size) {}
  int32_t rank_ = 0;
  int32_t size_ = 1;
};

}  // namespace flowrank::dist
