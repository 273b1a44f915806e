#pragma once
// The CPU backend's worker threads. A decode step is ~150 short parallel loops, so waking workers
// must be cheap (they spin briefly between loops); and on a shared machine a worker that is not
// scheduled must not stall the others for long (they then sleep on a futex instead of spinning
// for milliseconds, which is what made OpenMP's default barriers 10x slower here under load).
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace flowrank::engine::cpu {

class ThreadPool {
 public:
  // `threads` in all: threads - 1 workers, and the calling thread.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // fn(begin, end) over [0, n) cut into size() contiguous ranges of nearly equal length, one per
  // thread (the same cut for the same n); returns when all are done. n <= 1 or a pool of one runs
  // on the caller alone.
  template <typename Fn>
  void for_ranges(int64_t n, Fn&& fn) {
    if (n <= 1 || size() == 1) {
      if (n > 0) fn(int64_t{0}, n);
      return;
    }
    const auto call = [&](int t) {
      const int64_t begin = n * t / size(), end = n * (t + 1) / size();
      if (begin < end) fn(begin, end);
    };
    run(call);
  }
  // fn(i) for every i in [0, n), handed out one by one as threads come free.
  template <typename Fn>
  void for_each(int64_t n, Fn&& fn) {
    if (n <= 1 || size() == 1) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    std::atomic<int64_t> next{0};
    const auto call = [&](int) {
      for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    };
    run(call);
  }

 private:
  struct Job {
    void (*call)(const void* fn, int thread);
    const void* fn;
  };
  template <typename Fn>
  void run(const Fn& fn) {
    run_job(Job{[](const void* f, int t) { (*static_cast<const Fn*>(f))(t); }, &fn});
  }
  void run_job(Job job);
  void work(int index);

  std::vector<std::thread> workers_;
  Job job_{};
  std::atomic<uint32_t> generation_{0};  // bumped per job; workers wait for it to change
  std::atomic<uint32_t> done_{0};        // workers finished with the current job
  bool stop_ = false;
};

}  // namespace flowrank::engine::cpu
