#pragma once
// Test doubles for the engine core: a byte tokenizer and a toy paged "model" whose logits are a
// pure function of every token up to the current position, read back from the KV slots it wrote
// through the block table. A wrong block table, start_pos or prefix-cache hit changes its output
// (or makes it throw when it reads a slot that holds another position).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowrank/common/mix64.hpp"
#include "flowrank/engine/model_runner.hpp"
#include "flowrank/engine/sampler.hpp"
#include "flowrank/engine/tokenizer.hpp"

namespace flowrank::engine::testing {

// One token per byte; 256 = BOS, 257 = EOS.
class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kEos = 257;
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool) const override {
    std::vector<int32_t> out;
    if (add_bos) out.push_back(kBos);
    for (unsigned char c : text) out.push_back(c);
    return out;
  }
  std::string decode(std::span<const int32_t> tokens, bool render_special) const override {
    std::string s;
    for (int32_t t : tokens) s += piece(t, render_special);
    return s;
  }
  std::string piece(int32_t token, bool render_special) const override {
    if (token < 256) return std::string(1, static_cast<char>(token));
    if (!render_special) return "";
    return token == kBos ? "<s>" : "</s>";
  }
  int32_t vocab_size() const override { return 258; }
  int32_t bos() const override { return kBos; }
  int32_t eos() const override { return kEos; }
  bool is_end_of_generation(int32_t token) const override { return token == kEos; }
  std::string apply_chat_template(std::string_view user) const override {
    return "<|user|>\n" + std::string(user) + "\n<|assistant|>\n";
  }
};

inline uint64_t toy_mix(uint64_t z) {
  return splitmix64(z);
}

struct SeenItem {
  int32_t start_pos;
  int32_t size;
  bool want_logits;
};

class PagedToyRunner : public ModelRunner {
 public:
  struct Slot {
    int32_t token = -1;
    int32_t pos = -1;
  };

  explicit PagedToyRunner(int32_t context_length = 4096, int32_t max_blocks = 1 << 20)
      : max_blocks_(max_blocks) {
    config_.arch = "toy";
    config_.n_vocab = 258;
    config_.context_length = context_length;
  }
  const ModelConfig& config() const override { return config_; }
  int32_t preload(const RunnerLimits& limits) override {
    num_blocks_ = limits.kv_blocks > 0 ? limits.kv_blocks : max_blocks_;
    if (limits.kv_blocks == 0 && limits.kv_blocks_cap > 0)
      num_blocks_ = std::min(num_blocks_, limits.kv_blocks_cap);
    block_size_ = limits.block_size;
    kv_.assign(static_cast<std::size_t>(num_blocks_) * block_size_, Slot{});
    return num_blocks_;
  }
  std::string device_name() const override { return "toy"; }

  void launch(const StepBatch& batch) override {
    for (const BlockCopy& c : batch.copies) {
      check_block(c.src);
      check_block(c.dst);
      for (int32_t i = 0; i < block_size_; ++i) kv_[slot(c.dst, i)] = kv_[slot(c.src, i)];
      ++copies;
    }
    std::vector<SeenItem> seen;
    logits_.assign(batch.sampling.size() * static_cast<std::size_t>(config_.n_vocab), 0.0f);
    tokens_.clear();
    std::size_t row = 0;
    for (int32_t s = 0; s < batch.num_seqs(); ++s) {
      const auto su = static_cast<std::size_t>(s);
      const int32_t q0 = batch.query_start[su], n = batch.query_start[su + 1] - q0;
      const int32_t end = batch.seq_lens[su];
      const bool want = row < batch.sample_seqs.size() && batch.sample_seqs[row] == s;
      seen.push_back({end - n, n, want});
      const std::span<const int32_t> table(
          batch.pages.data() + batch.page_start[su],
          static_cast<std::size_t>(batch.page_start[su + 1] - batch.page_start[su]));
      if (static_cast<int64_t>(table.size()) * block_size_ < end)
        throw std::runtime_error("block table too short");
      if (end > config_.context_length) throw std::runtime_error("position past the context");
      for (int32_t j = 0; j < n; ++j) {
        const auto t = static_cast<std::size_t>(q0 + j);
        if (batch.slot_mapping[t] != where(table, batch.positions[t]))
          throw std::runtime_error("slot mapping disagrees with the pages");
        kv_[static_cast<std::size_t>(batch.slot_mapping[t])] =
            Slot{batch.input_ids[t], batch.positions[t]};
      }
      if (!want) continue;
      // The "attention": fold every token 0..end-1 as stored in the KV pool.
      uint64_t state = 0x1234;
      for (int32_t p = 0; p < end; ++p) {
        const Slot& sl = kv_[static_cast<std::size_t>(where(table, p))];
        if (sl.pos != p)
          throw std::runtime_error("KV slot of position " + std::to_string(p) + " holds position " +
                                   std::to_string(sl.pos));
        state = toy_mix(state ^ static_cast<uint64_t>(sl.token) * 0x100000001b3ULL);
      }
      float* out = logits_.data() + row * static_cast<std::size_t>(config_.n_vocab);
      for (int32_t v = 0; v < config_.n_vocab; ++v) {
        const bool letter = (v >= 'a' && v <= 'z') || v == ' ';
        out[v] =
            letter ? static_cast<float>((toy_mix(state ^ static_cast<uint64_t>(v)) >> 40) % 4096) /
                         1024.0f
                   : -std::numeric_limits<float>::infinity();
      }
      if (eos_at_length > 0 && end >= eos_at_length) out[ByteTokenizer::kEos] = 100.0f;
      tokens_.push_back(
          sampler_.sample(std::span<const float>(out, static_cast<std::size_t>(config_.n_vocab)),
                          batch.sampling[row]));
      ++row;
    }
    batches.push_back(std::move(seen));
    keep_logits_ = batch.return_logits;
  }
  void finish(StepResult& result) override {
    result.tokens = tokens_;
    result.logits.clear();
    if (keep_logits_) result.logits = logits_;
  }

  int32_t eos_at_length = 0;  // > 0: EOS is the clear argmax once a sequence has this many tokens
  std::vector<std::vector<SeenItem>> batches;
  int32_t copies = 0;

 private:
  std::size_t slot(int32_t block, int32_t offset) const {
    return static_cast<std::size_t>(block) * block_size_ + offset;
  }
  void check_block(int32_t b) const {
    if (b < 0 || b >= num_blocks_) throw std::runtime_error("block id out of range");
  }
  int32_t where(std::span<const int32_t> table, int32_t pos) const {
    const int32_t b = table[static_cast<std::size_t>(pos / block_size_)];
    check_block(b);
    return static_cast<int32_t>(slot(b, pos % block_size_));
  }

  ModelConfig config_;
  int32_t max_blocks_;
  int32_t num_blocks_ = 0;
  int32_t block_size_ = 0;
  std::vector<Slot> kv_;
  Sampler sampler_;
  std::vector<float> logits_;
  std::vector<int32_t> tokens_;
  bool keep_logits_ = false;
};

}  // namespace flowrank::engine::testing
