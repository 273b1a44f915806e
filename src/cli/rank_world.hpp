#pragma once
// This process's place in the run: the launcher's world, MPI (only under a launcher), one clock
// for every rank, the peer watch, and the signals that stop a run. Errors a rank detects that
// every rank detects alike end every rank quietly but rank 0, which says it in one line.
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flowrank/common/clock.hpp"
#include "flowrank/dist/communicator.hpp"
#include "flowrank/dist/peer_watch.hpp"
#include "flowrank/dist/world.hpp"

namespace flowrank::cli {

// Thrown on the ranks that stay silent about an error rank 0 reports; run_command returns `code`.
struct QuietExit {
  int code;
};

class RankWorld {
 public:
  // Detects the launcher and, under one, starts MPI. A build without MPI refuses a world > 1.
  explicit RankWorld(Clock::time_point local_start);
  ~RankWorld();

  const dist::World& world() const { return world_; }
  int32_t rank() const { return world_.rank; }
  int32_t size() const { return world_.size; }
  bool root() const { return world_.rank == 0; }
  const std::string& host() const { return host_; }
  dist::Communicator* comm() { return comm_.get(); }
  const std::vector<std::string>& hosts() const { return hosts_; }
  // Rank 0's start, in this rank's clock (set by connect()).
  Clock::time_point epoch() const { return epoch_; }

  // Collective: refuses ranks started with different job files or binaries (rank 0 names both
  // hashes in one line), measures the clock offset to rank 0 and starts the peer watch.
  void connect(const std::string& job_sha256);

  // Set by SIGTERM/SIGINT here or a stop from another rank: admit no more work, finish, gather.
  std::atomic<bool> stop{false};
  // Set when a rank was lost: leave at once, no gather.
  std::atomic<bool> abort{false};
  int stop_signal() const;  // the signal that stopped this rank, 0 if none (or another rank's)
  std::optional<int32_t> lost_rank() const;

  // The clean end: tells the other ranks that this one is done (before MPI_Finalize).
  void finished();
  // Rank 0 after a lost rank: ends every rank now.
  [[noreturn]] void end_job(int code);

 private:
  void on_lost(int32_t rank, bool abort_request);

  dist::World world_;
  std::string host_;
  std::unique_ptr<dist::Communicator> comm_;
  std::vector<std::string> hosts_;
  Clock::time_point epoch_;
  std::unique_ptr<dist::PeerWatch> watch_;
  mutable std::mutex mu_;
  std::optional<int32_t> lost_;
};

// The build id of this executable (NT_GNU_BUILD_ID), else the sha256 of its file.
std::string binary_identity();

}  // namespace flowrank::cli
