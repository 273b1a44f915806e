#pragma once
// The backend-independent Engine: tokenizes and validates requests, runs the Scheduler, builds a
// ForwardBatch per iteration for the ModelRunner, samples and finishes sequences. A backend only
// supplies the ModelRunner.
//
// One step(): schedule -> runner.copy_block for each planned copy -> runner.forward (KV of every
// chunk written through its block table; logits for the items that end a sequence's pending
// tokens) -> sample those (key: seed, workflow, step, index of the generated token) -> EOS /
// stop strings / max_tokens / context -> release finished sequences (their full blocks stay in
// the prefix cache) -> Completions.
//
// Completion counts: prompt_tokens = prompt length after templating and BOS; decode_tokens =
// generated tokens (an EOS, or the token that completed a stop string, included); cached_tokens
// = prompt tokens skipped at the *last* admission. A preempted request is readmitted like a new
// one: its prompt and already generated tokens are looked up again (usually hitting its own
// released blocks) and cached_tokens is re-measured then, capped at prompt_tokens.
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "flowrank/engine/block_pool.hpp"
#include "flowrank/engine/engine.hpp"
#include "flowrank/engine/model_runner.hpp"
#include "flowrank/engine/prefix_cache.hpp"
#include "flowrank/engine/sampler.hpp"
#include "flowrank/engine/scheduler.hpp"
#include "flowrank/engine/sequence.hpp"
#include "flowrank/engine/tokenizer.hpp"

namespace flowrank::engine {

class LlmEngine : public Engine {
 public:
  // `info` supplies backend, device, model and model_name; context_length, kv_blocks and
  // block_size are filled in here (device from the runner when empty).
  LlmEngine(std::unique_ptr<ModelRunner> runner, std::shared_ptr<const Tokenizer> tokenizer,
            EngineOptions options, EngineInfo info);
  ~LlmEngine() override;

  // Sizes the KV pool (options.kv_blocks, else min(runner.max_kv_blocks, max_seqs x context))
  // and preloads the runner. Idempotent; submit() calls it if it has not run yet.
  void preload() override;
  EngineInfo info() const override { return info_; }
  std::vector<int32_t> tokenize(std::string_view text) const override;
  // Throws InputError("request <id>", ...) for an empty or too long prompt, a prompt the whole
  // pool cannot hold, bad sampling values or an id already in flight.
  void submit(Request request) override;
  std::vector<Completion> step() override;
  bool has_work() const override;

  EngineStats stats() const override;
  const ModelRunner& runner() const { return *runner_; }
  // Null before preload.
  const PrefixCache* prefix_cache() const { return cache_.get(); }

 private:
  std::vector<int32_t> encode_prompt(const Request& request) const;

  std::unique_ptr<ModelRunner> runner_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  EngineOptions options_;
  EngineInfo info_;
  int32_t context_length_ = 0;
  bool preloaded_ = false;

  std::unique_ptr<BlockPool> pool_;
  std::unique_ptr<PrefixCache> cache_;
  std::unique_ptr<Scheduler> scheduler_;
  Sampler sampler_;
  std::unordered_map<uint64_t, std::unique_ptr<Sequence>> sequences_;
  EngineStats stats_;

  // Reused every step: the step loop allocates nothing per token.
  ForwardBatch batch_;
  std::vector<float> logits_;
  std::vector<Sequence*> finished_;
};

}  // namespace flowrank::engine
