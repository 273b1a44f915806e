#include "flowrank/dist/peer_watch.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "flowrank/common/error.hpp"
#include "flowrank/dist/world.hpp"

namespace flowrank::dist {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw RunError("peer watch: " + what + ": " + std::strerror(errno));
}

int remaining_ms(Clock::time_point deadline) {
  const double s = seconds_between(Clock::now(), deadline);
  return s <= 0 ? 0 : static_cast<int>(s * 1000) + 1;
}

bool read_exact(int fd, void* buf, std::size_t n, Clock::time_point deadline) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) return false;
    const ssize_t got = ::recv(fd, p, n, 0);
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Rank 0: a listening socket on `loopback` or every interface; returns its port.
int listen_socket(bool loopback, uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(loopback ? INADDR_LOOPBACK : INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
  if (::listen(fd, SOMAXCONN) != 0) fail("listen");
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) fail("getsockname");
  *port = ntohs(addr.sin_port);
  return fd;
}

// The others: connect to rank 0's "host port", retrying until the deadline.
int connect_to(const std::string& host, const std::string& port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    throw RunError("peer watch: cannot resolve rank 0's host " + host + ": " + gai_strerror(rc));
  struct Free {
    addrinfo* p;
    ~Free() { ::freeaddrinfo(p); }
  } free_found{found};
  for (;;) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    if (::connect(fd, found->ai_addr, found->ai_addrlen) == 0) return fd;
    ::close(fd);
    if (Clock::now() >= deadline) fail("cannot connect to rank 0 at " + host + ":" + port);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

PeerWatch::PeerWatch(Communicator& comm, const std::vector<std::string>& hosts,
                     const std::atomic<bool>* local_stop, PeerEvents events, double timeout_s)
    : rank_(comm.rank()), local_stop_(local_stop), events_(std::move(events)) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(timeout_s * 1e3));
  bool same_host = true;
  for (const auto& h : hosts) same_host = same_host && h == hosts.front();
  std::string address;
  int listener = -1;
  if (rank_ == 0) {
    uint16_t port = 0;
    listener = listen_socket(same_host, &port);
    address = (same_host ? std::string("127.0.0.1") : host_name()) + " " + std::to_string(port);
  }
  comm.broadcast(address);
  if (rank_ == 0) {
    fds_.assign(static_cast<std::size_t>(comm.size() - 1), -1);
    for (int32_t i = 1; i < comm.size(); ++i) {
      pollfd pfd{listener, POLLIN, 0};
      if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) {
        ::close(listener);
        throw RunError("peer watch: only " + std::to_string(i - 1) + " of " +
                       std::to_string(comm.size() - 1) + " ranks connected to rank 0 in time");
      }
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) fail("accept");
      int32_t peer = -1;
      if (!read_exact(fd, &peer, sizeof peer, deadline) || peer < 1 || peer >= comm.size() ||
          fds_[peer - 1] >= 0)
        throw RunError("peer watch: a connection to rank 0 did not name a valid rank");
      fds_[peer - 1] = fd;
    }
    ::close(listener);
    for (int32_t r = 1; r < comm.size(); ++r) peer_rank_.push_back(r);
  } else {
    const auto space = address.find(' ');
    const int fd = connect_to(address.substr(0, space), address.substr(space + 1), deadline);
    ::send(fd, &rank_, sizeof rank_, MSG_NOSIGNAL);
    fds_.push_back(fd);
    peer_rank_.push_back(0);
  }
  for (int fd : fds_) no_delay(fd);
  peer_done_.assign(fds_.size(), false);
  if (::pipe2(wake_, O_CLOEXEC) != 0) fail("pipe");
  thread_ = std::thread([this] { watch(); });
}

PeerWatch::~PeerWatch() {
  const char x = 'x';
  [[maybe_unused]] ssize_t n = ::write(wake_[1], &x, 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : fds_) ::close(fd);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void PeerWatch::send(int fd, char message) {
  ::send(fd, &message, 1, MSG_NOSIGNAL);  // a closed peer is noticed by the watch thread
}

void PeerWatch::finished() {
  finishing_ = true;
  for (int fd : fds_) send(fd, 'F');
}

void PeerWatch::abort_all() {
  for (std::size_t i = 0; i < fds_.size(); ++i)
    if (!peer_done_[i]) send(fds_[i], 'A');
}

void PeerWatch::lost(std::size_t index) {
  if (peer_done_[index]) return;
  peer_done_[index] = true;
  if (finishing_) return;  // we are leaving too: a closing peer is no news
  if (events_.on_lost) events_.on_lost(peer_rank_[index], false);
}

void PeerWatch::handle(std::size_t index, char message) {
  if (message == 'F') {
    peer_done_[index] = true;
  } else if (message == 'A') {
    if (events_.on_lost) events_.on_lost(-1, true);
  } else if (message == 'S' && !stop_sent_) {
    stop_sent_ = true;  // no echo back
    if (rank_ == 0)
      for (std::size_t i = 0; i < fds_.size(); ++i)
        if (i != index) send(fds_[i], 'S');
    if (events_.on_stop) events_.on_stop(peer_rank_[index]);
  }
}

void PeerWatch::watch() {
  std::vector<pollfd> pfds;
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_[0], POLLIN, 0});
    for (std::size_t i = 0; i < fds_.size(); ++i)
      pfds.push_back({peer_done_[i] ? -1 : fds_[i], POLLIN, 0});
    const int n = ::poll(pfds.data(), pfds.size(), 100);
    if (n < 0 && errno != EINTR) return;
    if (pfds[0].revents) return;
    for (std::size_t i = 0; n > 0 && i < fds_.size(); ++i) {
      if (!pfds[i + 1].revents) continue;
      char buf[64];
      const ssize_t got = ::recv(fds_[i], buf, sizeof buf, 0);
      if (got <= 0) {
        lost(i);
        continue;
      }
      for (ssize_t k = 0; k < got; ++k) handle(i, buf[k]);
    }
    if (local_stop_ && local_stop_->load() && !stop_sent_) {
      stop_sent_ = true;
      for (int fd : fds_) send(fd, 'S');
    }
  }
}

}  // namespace flowrank::dist
