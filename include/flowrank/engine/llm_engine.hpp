#pragma once
// The backend-independent Engine: tokenizes and validates requests, runs the Scheduler, builds a
// ForwardBatch per iteration for the ModelRunner, samples and finishes sequences. A backend only
// supplies the ModelRunner.
//
// One step(): schedule -> one flat StepBatch (new tokens, positions, KV slots, pages, block
// copies, one sampling row per sequence whose pending tokens end in this step; key: seed,
// workflow, step, index of the generated token) -> runner.launch -> while the device works,
// newly full blocks enter the prefix cache -> runner.finish (sampled tokens) -> EOS / stop
// strings / max_tokens / context -> release finished sequences (their full blocks stay in the
// prefix cache) -> Completions.
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

  // Preloads the runner with the limits it must size for (max_seqs, max_batch_tokens, block
  // size; KV blocks = options.kv_blocks, else what memory allows up to max_seqs full contexts)
  // and builds the block pool over the blocks it got. Idempotent; submit() calls it if needed.
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
  void keep_logits(bool on) override { return_logits_ = on; }
  std::vector<float> take_logits(uint64_t id) override;

 private:
  std::vector<int32_t> encode_prompt(const Request& request) const;
  void build_batch(const SchedulerOutput& plan, Clock::time_point start);

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
  StepBatch batch_;
  std::vector<std::size_t> order_;  // batch_'s sequence i is plan chunk order_[i]
  StepResult result_;
  std::vector<Sequence*> finished_;
  bool return_logits_ = false;
  std::unordered_map<uint64_t, std::vector<float>> kept_logits_;
};

}  // namespace flowrank::engine
