#pragma once
// Liveness and stop requests between the ranks of a launched run, outside MPI (which has no way
// to notice a dead peer). Every other rank holds one TCP connection to rank 0; when a process
// dies, its kernel closes the connection, so the other end learns of it within milliseconds even
// when the process was killed with SIGKILL. One byte per message:
//   'S' stop (admit no more work, finish, gather): a rank sends it to rank 0, rank 0 to everyone;
//   'A' abort (a rank was lost): rank 0 to everyone;
//   'F' finished: this rank reached its end cleanly, so the closing connection is no death.
// A watch thread polls the connections (and, every 100 ms, the local stop flag, to pass a local
// SIGTERM on).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "flowrank/dist/communicator.hpp"

namespace flowrank::dist {

struct PeerEvents {
  // A stop request arrived from another rank (not called for the local flag).
  std::function<void(int32_t from_rank)> on_stop;
  // Rank `rank` died (its connection closed before it finished), or rank 0 asked to abort.
  std::function<void(int32_t rank, bool abort_request)> on_lost;
};

class PeerWatch {
 public:
  // Collective. Rank 0 listens (on the loopback interface when every rank runs on this host,
  // else on every interface) and broadcasts its address; the others connect within `timeout_s`.
  // `local_stop` is the flag a local signal sets. Throws RunError when the connections fail.
  PeerWatch(Communicator& comm, const std::vector<std::string>& hosts,
            const std::atomic<bool>* local_stop, PeerEvents events, double timeout_s = 60);
  ~PeerWatch();  // stops the watch thread and closes the connections (not a clean finish)
  PeerWatch(const PeerWatch&) = delete;
  PeerWatch& operator=(const PeerWatch&) = delete;

  // This rank is done: rank 0 after its gather, the others after their part of it.
  void finished();
  // Rank 0: tell every rank to abort at once (a rank was lost).
  void abort_all();

 private:
  void watch();
  void send(int fd, char message);
  void handle(std::size_t index, char message);
  void lost(std::size_t index);

  int32_t rank_ = 0;
  std::vector<int> fds_;  // rank 0: one per peer (index = rank - 1); others: one, to rank 0
  std::vector<int32_t> peer_rank_;
  std::vector<bool> peer_done_;  // sent 'F' (or already reported lost)
  const std::atomic<bool>* local_stop_ = nullptr;
  bool stop_sent_ = false;
  PeerEvents events_;
  int wake_[2] = {-1, -1};  // self-pipe that ends the watch thread
  std::atomic<bool> finishing_{false};
  std::thread thread_;
};

}  // namespace flowrank::dist
