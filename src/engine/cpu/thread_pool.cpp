#include "flowrank/engine/cpu/thread_pool.hpp"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace flowrank::engine::cpu {

namespace {

// How long a thread spins for the next job (or for the workers to finish) before it sleeps:
// longer than the serial gap between two loops of a step, short enough that a peer the OS has
// not scheduled costs little.
constexpr auto kSpin = std::chrono::microseconds(50);

void relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Returns once `a` differs from `old`: spinning first, then sleeping on its futex.
uint32_t wait_change(const std::atomic<uint32_t>& a, uint32_t old) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    const uint32_t v = a.load(std::memory_order_acquire);
    if (v != old) return v;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) break;
    relax();
  }
  for (;;) {
    a.wait(old, std::memory_order_acquire);
    const uint32_t v = a.load(std::memory_order_acquire);
    if (v != old) return v;
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::work(int index) {
  uint32_t seen = 0;
  for (;;) {
    seen = wait_change(generation_, seen);
    if (stop_) return;
    job_.call(job_.fn, index);
    done_.fetch_add(1, std::memory_order_acq_rel);
    done_.notify_one();
  }
}

void ThreadPool::run_job(Job job) {
  job_ = job;
  done_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  job.call(job.fn, static_cast<int>(workers_.size()));  // the caller takes the last share
  const auto workers = static_cast<uint32_t>(workers_.size());
  for (uint32_t d = done_.load(std::memory_order_acquire); d != workers;) d = wait_change(done_, d);
}

}  // namespace flowrank::engine::cpu
