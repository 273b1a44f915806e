#include "flowrank/engine/sequence.hpp"

#include <algorithm>
#include <utility>

#include "flowrank/engine/prefix_cache.hpp"

namespace flowrank::engine {

Sequence::Sequence(uint64_t id_, std::vector<int32_t> prompt_tokens, SamplingParams sampling_,
                   StreamKey stream_, const Tokenizer& tokenizer, Clock::time_point submitted)
    : id(id_),
      tokens(std::move(prompt_tokens)),
      num_prompt(static_cast<int32_t>(tokens.size())),
      sampling(std::move(sampling_)),
      stream(stream_),
      tokenizer_(&tokenizer),
      decoder_(tokenizer) {
  timing.submitted = submitted;
  // Room for the output up front (bounded: max_tokens may be far above what is generated).
  tokens.reserve(tokens.size() +
                 static_cast<std::size_t>(std::clamp(sampling.max_tokens, 0, 4096)));
  for (const std::string& s : sampling.stop) longest_stop_ = std::max(longest_stop_, s.size());
}

uint64_t Sequence::block_hash(int32_t i, int32_t block_size) {
  while (static_cast<int32_t>(block_hashes_.size()) <= i) {
    const auto j = static_cast<int32_t>(block_hashes_.size());
    const uint64_t parent = j == 0 ? PrefixCache::kRootHash : block_hashes_.back();
    block_hashes_.push_back(PrefixCache::hash_block(
        parent, std::span<const int32_t>(tokens).subspan(static_cast<std::size_t>(j) * block_size,
                                                         static_cast<std::size_t>(block_size))));
  }
  return block_hashes_[static_cast<std::size_t>(i)];
}

bool Sequence::find_stop(std::size_t from) {
  // A stop string that ends in the new text starts at most longest_stop_ - 1 bytes before it.
  const std::size_t start = from >= longest_stop_ ? from - longest_stop_ + 1 : 0;
  std::size_t cut = std::string::npos;
  for (const std::string& s : sampling.stop) {
    if (s.empty()) continue;
    const std::size_t p = text.find(s, start);
    if (p < cut) cut = p;
  }
  if (cut == std::string::npos) return false;
  text.resize(cut);
  return true;
}

bool Sequence::append_token(int32_t token, int32_t max_len) {
  tokens.push_back(token);
  if (!sampling.ignore_eos && tokenizer_->is_end_of_generation(token)) {
    finish(FinishReason::kEos);
    return true;
  }
  const std::size_t before = text.size();
  text += decoder_.push(token);
  if (longest_stop_ > 0 && text.size() > before && find_stop(before)) {
    status = SequenceStatus::kFinished;
    finish_reason = FinishReason::kStop;  // held-back bytes come after the stop: dropped
    return true;
  }
  if (num_generated() >= sampling.max_tokens || num_tokens() >= max_len) {
    finish(FinishReason::kLength);
    return status == SequenceStatus::kFinished;
  }
  return false;
}

void Sequence::finish(FinishReason reason) {
  status = SequenceStatus::kFinished;
  finish_reason = reason;
  const std::size_t before = text.size();
  text += decoder_.flush();
  // The held-back tail may complete a stop string too.
  if (longest_stop_ > 0 && text.size() > before && find_stop(before))
    finish_reason = FinishReason::kStop;
}

Completion Sequence::completion() const {
  Completion c;
  c.id = id;
  c.text = text;
  c.tokens.assign(tokens.begin() + num_prompt, tokens.end());
  c.prompt_tokens = num_prompt;
  c.cached_tokens = num_cached;
  c.decode_tokens = num_generated();
  c.preemptions = preemptions;
  c.finish = finish_reason;
  c.timing = timing;
  return c;
}

}  // namespace flowrank::engine
