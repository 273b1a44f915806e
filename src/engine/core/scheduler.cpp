#include "flowrank/engine/scheduler.hpp"

#include <algorithm>
#include <stdexcept>

namespace flowrank::engine {

Scheduler::Scheduler(SchedulerConfig config, PrefixCache& cache)
    : config_(config), cache_(&cache), block_size_(cache.pool().block_size()) {
  if (config_.max_batch_tokens < 1 || config_.max_seqs < 1)
    throw std::invalid_argument("Scheduler: max_batch_tokens and max_seqs must be >= 1");
  running_.reserve(static_cast<std::size_t>(config_.max_seqs));
}

void Scheduler::add(Sequence& seq) {
  seq.status = SequenceStatus::kWaiting;
  waiting_.push_back(&seq);
}

bool Scheduler::grow(Sequence& seq, int32_t n_tokens) {
  const int32_t need =
      cache_->pool().blocks_for(n_tokens) - static_cast<int32_t>(seq.block_table.size());
  if (need <= 0) return true;
  if (cache_->num_allocatable() < need) return false;
  for (int32_t i = 0; i < need; ++i) seq.block_table.push_back(cache_->allocate());
  return true;
}

void Scheduler::release_blocks(Sequence& seq) {
  // Last block first: in the LRU list a chain's tail then goes before its head, and a head
  // evicted first would strand the rest of its chain.
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) cache_->release(*it);
  seq.block_table.clear();
  seq.num_computed = 0;
  seq.num_published = 0;
}

void Scheduler::preempt(Sequence& seq) {
  release_blocks(seq);
  std::erase(running_, &seq);
  seq.status = SequenceStatus::kWaiting;
  ++seq.preemptions;
  ++preemptions_;
  waiting_.push_front(&seq);
}

bool Scheduler::admit(Sequence& seq, int32_t budget) {
  const int32_t n = seq.num_tokens();
  const std::span<const int32_t> tokens(seq.tokens);
  matched_.clear();
  if (cache_->enabled()) {
    for (int32_t i = 0; i < n / block_size_; ++i) {
      const int32_t b =
          cache_->lookup(seq.block_hash(i, block_size_),
                         tokens.subspan(static_cast<std::size_t>(i) * block_size_, block_size_));
      if (b < 0) break;
      matched_.push_back(b);
    }
  }
  for (;;) {
    const auto m = static_cast<int32_t>(matched_.size());
    int32_t cached = m * block_size_;
    // The last token must be computed so that its logits exist: on a full hit it is
    // recomputed into a private copy of the (shared) last block.
    const bool copy_last = cached >= n;
    if (copy_last) cached = n - 1;
    const int32_t count = std::min(n - cached, budget);
    const int32_t need = cache_->pool().blocks_for(cached + count) - m + (copy_last ? 1 : 0);
    int32_t revived = 0;  // matched blocks now evictable: acquiring them shrinks what is free
    for (int32_t b : matched_) revived += cache_->is_evictable(b) ? 1 : 0;
    if (cache_->num_allocatable() - revived < need) {
      if (!copy_last) return false;
      matched_.pop_back();  // no room for the copy: recompute the whole last block instead
      continue;
    }
    for (int32_t b : matched_) {
      cache_->acquire(b);
      seq.block_table.push_back(b);
    }
    if (copy_last) {
      const int32_t src = seq.block_table.back();
      const int32_t dst = cache_->allocate();
      out_.copies.push_back({src, dst});
      // Safe before the copy runs: nothing writes KV until this iteration's forward.
      cache_->release(src);
      seq.block_table.back() = dst;
    }
    seq.num_computed = cached;
    seq.num_cached = std::min(cached, seq.num_prompt);
    seq.num_published = m;
    if (!grow(seq, cached + count)) throw std::logic_error("Scheduler: admission lost its blocks");
    seq.status = SequenceStatus::kRunning;
    running_.push_back(&seq);
    out_.chunks.push_back({&seq, count});
    return true;
  }
}

const SchedulerOutput& Scheduler::schedule() {
  out_.chunks.clear();
  out_.copies.clear();
  out_.finished.clear();
  int32_t budget = config_.max_batch_tokens;

  for (std::size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence& seq = *running_[i];
    int32_t count = std::min(seq.num_uncomputed(), budget);
    bool scheduled = true;
    while (!grow(seq, seq.num_computed + count)) {
      if (running_.back() != &seq) {
        preempt(*running_.back());  // newest first; never one already planned (index > i)
        continue;
      }
      if (i > 0) {  // seq itself is the newest: it waits for the older ones
        preempt(seq);
        scheduled = false;
        break;
      }
      // Alone in the pool: compute what fits, or end it if not one more token fits.
      const int32_t room =
          (static_cast<int32_t>(seq.block_table.size()) + cache_->num_allocatable()) * block_size_ -
          seq.num_computed;
      if (room > 0) {
        count = std::min(count, room);
        continue;
      }
      seq.finish(FinishReason::kLength);
      out_.finished.push_back(&seq);
      running_.erase(running_.begin());
      scheduled = false;
      break;
    }
    if (!scheduled) continue;
    out_.chunks.push_back({&seq, count});
    budget -= count;
    ++i;
  }

  while (!waiting_.empty() && budget > 0 &&
         static_cast<int32_t>(running_.size()) < config_.max_seqs) {
    Sequence& seq = *waiting_.front();
    if (!admit(seq, budget)) break;  // FIFO: later requests do not overtake it
    waiting_.pop_front();
    budget -= out_.chunks.back().count;
  }
  return out_;
}

void Scheduler::computed(Sequence& seq, int32_t count) {
  seq.num_computed += count;
  if (!cache_->enabled()) return;
  const int32_t full = seq.num_computed / block_size_;
  const std::span<const int32_t> tokens(seq.tokens);
  for (int32_t i = seq.num_published; i < full; ++i)
    cache_->insert(seq.block_table[static_cast<std::size_t>(i)], seq.block_hash(i, block_size_),
                   tokens.subspan(static_cast<std::size_t>(i) * block_size_, block_size_));
  seq.num_published = std::max(seq.num_published, full);
}

void Scheduler::finish(Sequence& seq) {
  release_blocks(seq);
  std::erase(running_, &seq);
  seq.status = SequenceStatus::kFinished;
}

}  // namespace flowrank::engine
