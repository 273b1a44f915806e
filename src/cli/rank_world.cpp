#include "rank_world.hpp"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"

namespace flowrank::cli {
namespace {

std::atomic<bool>* g_stop = nullptr;
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  g_signal = sig;
  if (g_stop) g_stop->store(true);
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}

// Seconds a rank waits after a peer was lost before ending itself, should its main thread be
// stuck in a collective with the dead rank.
constexpr int kLostDeadlineS = 10;

int find_build_id(dl_phdr_info* info, size_t, void* out) {
  if (info->dlpi_name && info->dlpi_name[0]) return 0;  // the executable comes first, unnamed
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    const char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* n = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const char* desc = p + sizeof(ElfW(Nhdr)) + ((n->n_namesz + 3) & ~3u);
      if (n->n_type == NT_GNU_BUILD_ID && desc + n->n_descsz <= end) {
        std::string hex;
        char b[3];
        for (unsigned k = 0; k < n->n_descsz; ++k) {
          std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(desc[k]));
          hex += b;
        }
        *static_cast<std::string*>(out) = hex;
        return 1;
      }
      p = desc + ((n->n_descsz + 3) & ~3u);
    }
  }
  return 1;
}

}  // namespace

std::string binary_identity() {
  std::string id;
  dl_iterate_phdr(find_build_id, &id);
  if (!id.empty()) return "build-id " + id;
  return "sha256 " + sha256_hex(read_file("/proc/self/exe"));
}

RankWorld::RankWorld(Clock::time_point local_start) : epoch_(local_start) {
  world_ = dist::detect_world();
  host_ = dist::host_name();
  hosts_ = {host_};
  g_stop = &stop;
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);  // what mpirun forwards to its ranks (it kills on SIGTERM)
  if (!world_.launched()) return;        // a plain local run: no MPI at all
  if (!dist::Communicator::available()) {
    if (world_.size > 1)
      throw RunError("world size " + std::to_string(world_.size) + " (launcher " + world_.launcher +
                     "): this build has no MPI (configure with -DFLOWRANK_MPI=ON); run one "
                     "process");
    world_.launcher = "local";  // a launched world of one runs as a local one
    return;
  }
  comm_ = dist::Communicator::init();
  if (comm_->size() != world_.size || comm_->rank() != world_.rank)
    throw RunError("MPI reports rank " + std::to_string(comm_->rank()) + " of " +
                   std::to_string(comm_->size()) + " but the launcher (" + world_.launcher +
                   ") said rank " + std::to_string(world_.rank) + " of " +
                   std::to_string(world_.size));
}

RankWorld::~RankWorld() {
  watch_.reset();
  g_stop = nullptr;
}

void RankWorld::connect(const std::string& job_sha256) {
  if (!comm_) return;
  const std::string mine = job_sha256 + "\t" + binary_identity() + "\t" + host_;
  const std::vector<std::string> all = comm_->all_gather(mine);
  hosts_.clear();
  for (const std::string& a : all) hosts_.push_back(a.substr(a.rfind('\t') + 1));
  const std::string& ref = all[0];
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r].substr(0, all[r].rfind('\t')) == ref.substr(0, ref.rfind('\t'))) continue;
    if (!root()) throw QuietExit{2};
    auto field = [](const std::string& s, int i) {
      std::size_t a = 0;
      for (int k = 0; k < i; ++k) a = s.find('\t', a) + 1;
      return s.substr(a, s.find('\t', a) - a);
    };
    throw InputError("rank " + std::to_string(r) + " on " + hosts_[r],
                     "started with job sha256 " + field(all[r], 0) + " and binary " +
                         field(all[r], 1) + ", rank 0 with job sha256 " + field(ref, 0) +
                         " and binary " + field(ref, 1) +
                         ": start every rank with the same job file and binary");
  }
  epoch_ = comm_->shared_epoch(epoch_);
  if (size() > 1) {
    dist::PeerEvents events;
    events.on_stop = [this](int32_t) { stop = true; };
    events.on_lost = [this](int32_t r, bool request) { on_lost(r, request); };
    watch_ = std::make_unique<dist::PeerWatch>(*comm_, hosts_, &stop, std::move(events));
  }
}

int RankWorld::stop_signal() const {
  return static_cast<int>(g_signal);
}

std::optional<int32_t> RankWorld::lost_rank() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

void RankWorld::on_lost(int32_t r, bool abort_request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lost_ || abort) return;
    if (!abort_request) lost_ = r;
  }
  abort = true;
  if (root()) {
    std::fprintf(stderr,
                 "flowrank: rank %d on %s died (its connection to rank 0 closed); ending "
                 "the job\n",
                 r, hosts_.at(static_cast<std::size_t>(r)).c_str());
    watch_->abort_all();
  } else if (r == 0 && rank() == 1) {  // one line, from the lowest surviving rank
    std::fprintf(stderr, "flowrank: rank 0 on %s died (its connection closed); ending the job\n",
                 hosts_.at(0).c_str());
  }
  std::fflush(stderr);
  // Should the main thread be stuck in a collective with the dead rank, end anyway.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(kLostDeadlineS));
    std::_Exit(1);
  }).detach();
}

void RankWorld::finished() {
  if (watch_) watch_->finished();
}

void RankWorld::end_job(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (comm_) comm_->abort(code);
  std::_Exit(code);
}

}  // namespace flowrank::cli
