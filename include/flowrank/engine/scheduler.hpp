#pragma once
// Continuous batching (nano-vllm / vLLM V1 style). Each iteration gets a budget of
// max_batch_tokens new tokens: running sequences first, oldest first (a decode takes 1 token, an
// unfinished prefill a chunk of what is left), then waiting sequences are admitted in FIFO order
// while the budget, max_seqs and the pool allow. A long prompt is thus prefilled in chunks over
// several iterations. Admission reuses the longest cached prefix of full blocks. When a running
// sequence needs a block and none is left, the newest running sequence is preempted: its blocks
// are released, it goes back to the front of the waiting queue and is recomputed later (its
// tokens, sampling keys and hence its output are unchanged).
#include <cstdint>
#include <deque>
#include <vector>

#include "flowrank/engine/model_runner.hpp"
#include "flowrank/engine/prefix_cache.hpp"
#include "flowrank/engine/sequence.hpp"

namespace flowrank::engine {

struct SchedulerConfig {
  int32_t max_batch_tokens = 2048;
  int32_t max_seqs = 64;
};

// This iteration computes tokens [seq->num_computed, seq->num_computed + count) of seq.
struct ScheduledChunk {
  Sequence* seq = nullptr;
  int32_t count = 0;
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;
  // A full-prompt prefix hit recomputes its last token on a private copy of the shared last
  // block: the copies to make before this iteration's forward.
  std::vector<BlockCopy> copies;
  // Sequences the scheduler ended (kLength): alone in the pool, they could not grow further.
  // They still hold their blocks until finish() is called.
  std::vector<Sequence*> finished;
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, PrefixCache& cache);

  // Queues a new sequence at the back of the waiting queue.
  void add(Sequence& seq);
  // Plans one iteration. The reference stays valid until the next call.
  const SchedulerOutput& schedule();
  // After the forward: `count` more tokens of seq have KV; its newly full blocks enter the
  // prefix cache.
  void computed(Sequence& seq, int32_t count);
  // Releases a finished sequence's blocks (full registered blocks stay cached) and drops it.
  void finish(Sequence& seq);

  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int64_t preemptions() const { return preemptions_; }

 private:
  bool grow(Sequence& seq, int32_t n_tokens);
  void release_blocks(Sequence& seq);
  void preempt(Sequence& seq);
  bool admit(Sequence& seq, int32_t budget);

  SchedulerConfig config_;
  PrefixCache* cache_;
  int32_t block_size_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // admission order: oldest first
  SchedulerOutput out_;
  std::vector<int32_t> matched_;
  int64_t preemptions_ = 0;
};

}  // namespace flowrank::engine
