#pragma once
// One request inside the engine: its tokens (prompt, then generated), how many of them have KV in
// the pool, its block table, and the incremental text used for stop strings.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "flowrank/common/clock.hpp"
#include "flowrank/engine/engine.hpp"
#include "flowrank/engine/tokenizer.hpp"

namespace flowrank::engine {

enum class SequenceStatus { kWaiting, kRunning, kFinished };

class Sequence {
 public:
  Sequence(uint64_t id, std::vector<int32_t> prompt_tokens, SamplingParams sampling,
           StreamKey stream, const Tokenizer& tokenizer, Clock::time_point submitted);

  int32_t num_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t num_generated() const { return num_tokens() - num_prompt; }
  // Tokens whose KV is not yet in the pool (>= 1 for a running sequence: at least the last one).
  int32_t num_uncomputed() const { return num_tokens() - num_computed; }
  std::span<const int32_t> generated() const {
    return std::span<const int32_t>(tokens).subspan(static_cast<std::size_t>(num_prompt));
  }

  // Hash of full block i of `tokens` (chained over blocks 0..i), computed once and remembered:
  // tokens never change, so the hashes survive preemption.
  uint64_t block_hash(int32_t i, int32_t block_size);

  // Appends a sampled token and decides whether the sequence is done: EOS (unless ignore_eos;
  // the EOS token is kept in `tokens`, not in `text`), a stop string (cut from `text` with
  // everything after it; the token that completed it is the last one kept), max_tokens, or
  // `max_len` tokens (the next token would have no position in the context). Returns true when
  // finished; `finish_reason` then says why. The caller sets the finish time.
  bool append_token(int32_t token, int32_t max_len);
  // Ends the sequence for a reason found outside append_token (e.g. the pool cannot hold it).
  void finish(FinishReason reason);

  Completion completion() const;

  uint64_t id;
  std::vector<int32_t> tokens;
  int32_t num_prompt;
  int32_t num_computed = 0;   // tokens whose KV is in the pool (through block_table)
  int32_t num_cached = 0;     // prompt tokens taken from the prefix cache at the last admission
  int32_t num_published = 0;  // leading blocks of block_table registered in the prefix cache
  std::vector<int32_t> block_table;
  SamplingParams sampling;
  StreamKey stream;
  SequenceStatus status = SequenceStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kLength;
  RequestTiming timing;
  int32_t preemptions = 0;
  std::string text;  // generated text so far

 private:
  bool find_stop(std::size_t from);

  const Tokenizer* tokenizer_;
  StreamDecoder decoder_;
  std::vector<uint64_t> block_hashes_;
  std::size_t longest_stop_ = 0;
};

}  // namespace flowrank::engine
