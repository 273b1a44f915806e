#include "flowrank/dist/communicator.hpp"

#include <climits>
#include <cstdlib>

#include "flowrank/common/error.hpp"

#if FLOWRANK_HAVE_MPI
#include <mpi.h>
#endif

namespace flowrank::dist {

#if FLOWRANK_HAVE_MPI
namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw RunError(std::string("MPI ") + what + " failed: " + std::string(text, len));
}

int as_count(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX))
    throw RunError("MPI: " + std::to_string(n) + " bytes in one message (limit 2^31-1)");
  return static_cast<int>(n);
}

// Byte offsets of each rank's part, and the total.
std::vector<int> displacements(const std::vector<int>& sizes, std::size_t* total) {
  std::vector<int> displs(sizes.size(), 0);
  std::size_t at = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    displs[i] = as_count(at);
    at += static_cast<std::size_t>(sizes[i]);
  }
  as_count(at);
  *total = at;
  return displs;
}

std::vector<std::string> split(const std::string& all, const std::vector<int>& sizes,
                               const std::vector<int>& displs) {
  std::vector<std::string> out(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) out[i] = all.substr(displs[i], sizes[i]);
  return out;
}

}  // namespace

bool Communicator::available() {
  return true;
}

std::unique_ptr<Communicator> Communicator::init() {
  int provided = 0;
  // Errors come back as codes (turned into one line) rather than aborting inside MPI.
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size), "comm_size");
  return std::unique_ptr<Communicator>(new Communicator(rank, size));
}

Communicator::~Communicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void Communicator::broadcast(std::string& bytes, int32_t root) {
  uint64_t n = bytes.size();
  check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "broadcast");
  bytes.resize(n);
  check(MPI_Bcast(bytes.data(), as_count(n), MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
}

std::vector<std::string> Communicator::gather(std::string_view mine, int32_t root) {
  const int n = as_count(mine.size());
  std::vector<int> sizes(rank_ == root ? size_ : 0);
  check(MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, root, MPI_COMM_WORLD), "gather");
  std::size_t total = 0;
  std::vector<int> displs;
  std::string all;
  if (rank_ == root) {
    displs = displacements(sizes, &total);
    all.resize(total);
  }
  check(MPI_Gatherv(mine.data(), n, MPI_BYTE, all.data(), sizes.data(), displs.data(), MPI_BYTE,
                    root, MPI_COMM_WORLD),
        "gatherv");
  if (rank_ != root) return {};
  return split(all, sizes, displs);
}

void Communicator::barrier() {
  check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

std::vector<std::string> Communicator::all_gather(std::string_view mine) {
  const int n = as_count(mine.size());
  std::vector<int> sizes(size_);
  check(MPI_Allgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), "allgather");
  std::size_t total = 0;
  const std::vector<int> displs = displacements(sizes, &total);
  std::string all(total, '\0');
  check(MPI_Allgatherv(mine.data(), n, MPI_BYTE, all.data(), sizes.data(), displs.data(), MPI_BYTE,
                       MPI_COMM_WORLD),
        "allgatherv");
  return split(all, sizes, displs);
}

Clock::time_point Communicator::shared_epoch(Clock::time_point root_epoch) {
  constexpr int kRounds = 8;
  constexpr int kTag = 4711;
  if (rank_ == 0) {
    for (int peer = 1; peer < size_; ++peer) {
      for (int k = 0; k < kRounds; ++k) {
        char ping = 0;
        check(MPI_Recv(&ping, 1, MPI_CHAR, peer, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "clock recv");
        const double since_epoch = seconds_between(root_epoch, Clock::now());
        check(MPI_Send(&since_epoch, 1, MPI_DOUBLE, peer, kTag, MPI_COMM_WORLD), "clock send");
      }
    }
    return root_epoch;
  }
  Clock::duration best_rtt = Clock::duration::max();
  Clock::time_point epoch{};
  for (int k = 0; k < kRounds; ++k) {
    const char ping = 0;
    const Clock::time_point t1 = Clock::now();
    check(MPI_Send(&ping, 1, MPI_CHAR, 0, kTag, MPI_COMM_WORLD), "clock send");
    double since_epoch = 0;
    check(MPI_Recv(&since_epoch, 1, MPI_DOUBLE, 0, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "clock recv");
    const Clock::time_point t2 = Clock::now();
    if (t2 - t1 < best_rtt) {
      best_rtt = t2 - t1;
      const Clock::time_point mid = t1 + (t2 - t1) / 2;
      epoch = mid - std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(since_epoch));
    }
  }
  return epoch;
}

void Communicator::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

#else  // no MPI in this build

bool Communicator::available() {
  return false;
}

std::unique_ptr<Communicator> Communicator::init() {
  throw RunError("this build of flowrank has no MPI (configure with -DFLOWRANK_MPI=ON)");
}

Communicator::~Communicator() = default;
void Communicator::broadcast(std::string&, int32_t) {}
void Communicator::barrier() {}
std::vector<std::string> Communicator::gather(std::string_view, int32_t) {
  return {};
}
std::vector<std::string> Communicator::all_gather(std::string_view mine) {
  return {std::string(mine)};
}
Clock::time_point Communicator::shared_epoch(Clock::time_point root_epoch) {
  return root_epoch;
}
void Communicator::abort(int code) {
  std::_Exit(code);
}

#endif

}  // namespace flowrank::dist
