#include "flowrank/engine/llm_engine.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "flowrank/common/error.hpp"

namespace flowrank::engine {
namespace {

void check_option(bool ok, const std::string& what) {
  if (!ok) throw InputError("engine options", what);
}

ModelShape shape_of(const ModelConfig& c, int64_t bytes_per_value) {
  ModelShape s;
  s.n_layer = c.n_layer, s.n_embd = c.n_embd, s.n_ff = c.n_ff, s.n_head = c.n_head;
  s.n_head_kv = c.n_head_kv, s.head_dim = c.head_dim, s.n_vocab = c.n_vocab;
  s.sliding_window = c.sliding_window;
  for (bool b : c.layer_sliding) s.sliding_layers += b ? 1 : 0;
  if (c.sliding_window == 0) s.sliding_layers = 0;
  const int64_t e = c.n_embd, q = int64_t{c.n_head} * c.head_dim,
                kv = int64_t{c.n_head_kv} * c.head_dim;
  const int64_t per_layer = e * (q + 2 * kv) + q * e + 3 * e * c.n_ff;
  s.matmul_params = per_layer * c.n_layer + int64_t{c.n_vocab} * e;
  s.kv_bytes_per_token = 2 * kv * c.n_layer * bytes_per_value;
  const int64_t embeddings = int64_t{c.n_vocab} * e * (c.tied_embeddings ? 1 : 2);
  s.weight_bytes = (per_layer * c.n_layer + embeddings) * bytes_per_value;
  return s;
}

}  // namespace

LlmEngine::LlmEngine(std::unique_ptr<ModelRunner> runner,
                     std::shared_ptr<const Tokenizer> tokenizer, EngineOptions options,
                     EngineInfo info)
    : runner_(std::move(runner)),
      tokenizer_(std::move(tokenizer)),
      options_(std::move(options)),
      info_(std::move(info)) {
  if (!runner_ || !tokenizer_)
    throw std::invalid_argument("LlmEngine: runner and tokenizer needed");
  check_option(options_.block_size >= 1,
               "block_size must be >= 1, found " + std::to_string(options_.block_size));
  check_option(options_.kv_blocks >= 0,
               "kv_blocks must be >= 0, found " + std::to_string(options_.kv_blocks));
  check_option(options_.max_batch_tokens >= 1,
               "max_batch_tokens must be >= 1, found " + std::to_string(options_.max_batch_tokens));
  check_option(options_.max_seqs >= 1,
               "max_seqs must be >= 1, found " + std::to_string(options_.max_seqs));
  context_length_ = runner_->config().context_length;
  if (context_length_ <= 0) throw std::invalid_argument("LlmEngine: model has no context length");
  info_.context_length = context_length_;
  info_.block_size = options_.block_size;
  info_.shape = shape_of(runner_->config(), runner_->value_bytes());
  if (info_.device.empty()) info_.device = runner_->device_name();
}

LlmEngine::~LlmEngine() = default;

void LlmEngine::preload() {
  if (preloaded_) return;
  const int32_t bs = options_.block_size;
  RunnerLimits limits;
  limits.max_seqs = options_.max_seqs;
  limits.max_batch_tokens = options_.max_batch_tokens;
  limits.block_size = bs;
  limits.kv_blocks = options_.kv_blocks;
  // Enough for max_seqs full contexts; more is never used.
  const int64_t per_seq = (static_cast<int64_t>(context_length_) + bs - 1) / bs;
  limits.kv_blocks_cap =
      static_cast<int32_t>(std::min<int64_t>(per_seq * options_.max_seqs, INT32_MAX / 2));
  const int32_t num_blocks = runner_->preload(limits);
  if (num_blocks < 1) throw RunError("engine: no memory left for a single KV block");
  pool_ = std::make_unique<BlockPool>(num_blocks, bs);
  cache_ = std::make_unique<PrefixCache>(*pool_, options_.prefix_cache);
  scheduler_ = std::make_unique<Scheduler>(
      SchedulerConfig{options_.max_batch_tokens, options_.max_seqs}, *cache_);
  batch_.clear();
  finished_.reserve(static_cast<std::size_t>(options_.max_seqs));
  info_.kv_blocks = num_blocks;
  preloaded_ = true;
}

std::vector<int32_t> LlmEngine::tokenize(std::string_view text) const {
  return tokenizer_->encode(text, false, false);
}

std::vector<int32_t> LlmEngine::encode_prompt(const Request& request) const {
  if (!request.chat) return tokenizer_->encode(request.prompt, true, false);
  std::vector<int32_t> tokens =
      tokenizer_->encode(tokenizer_->apply_chat_template(request.prompt), true, true);
  // A template that writes its own BOS (Llama 3) plus the model's add-BOS rule gives two.
  const int32_t bos = tokenizer_->bos();
  if (bos >= 0 && tokens.size() >= 2 && tokens[0] == bos && tokens[1] == bos)
    tokens.erase(tokens.begin());
  return tokens;
}

void LlmEngine::submit(Request request) {
  preload();
  const std::string where = "request " + std::to_string(request.id);
  if (sequences_.contains(request.id)) throw InputError(where, "id already in flight");
  const SamplingParams& sp = request.sampling;
  if (sp.max_tokens < 1)
    throw InputError(where, "max_tokens must be >= 1, found " + std::to_string(sp.max_tokens));
  if (!(sp.temperature >= 0.0f) || !std::isfinite(sp.temperature))
    throw InputError(where, "temperature must be a finite value >= 0");
  if (!(sp.top_p > 0.0f && sp.top_p <= 1.0f)) throw InputError(where, "top_p must be in (0, 1]");
  if (sp.top_k < 0) throw InputError(where, "top_k must be >= 0");

  std::vector<int32_t> tokens = encode_prompt(request);
  const auto n = static_cast<int32_t>(tokens.size());
  if (n == 0) throw InputError(where, "prompt has no tokens");
  if (n > context_length_)
    throw InputError(where, "prompt of " + std::to_string(n) +
                                " tokens exceeds the model context of " +
                                std::to_string(context_length_));
  const int32_t need = pool_->blocks_for(n);
  if (need > pool_->num_blocks())
    throw InputError(where, "prompt of " + std::to_string(n) + " tokens needs " +
                                std::to_string(need) + " KV blocks, the pool has " +
                                std::to_string(pool_->num_blocks()));

  auto seq = std::make_unique<Sequence>(request.id, std::move(tokens), std::move(request.sampling),
                                        request.stream, *tokenizer_, Clock::now());
  scheduler_->add(*seq);
  sequences_.emplace(request.id, std::move(seq));
}

bool LlmEngine::has_work() const {
  return scheduler_ && scheduler_->has_work();
}

void LlmEngine::build_batch(const SchedulerOutput& plan, Clock::time_point start) {
  batch_.clear();
  batch_.copies = plan.copies;
  batch_.return_logits = return_logits_;
  SampleRow row;
  // Sequences that share their first KV block (a prefix from the prefix cache) go next to each
  // other: shared-prefix attention groups adjacent sequences.
  order_.resize(plan.chunks.size());
  std::iota(order_.begin(), order_.end(), 0);
  const auto first_block = [&](std::size_t i) {
    const std::vector<int32_t>& t = plan.chunks[i].seq->block_table;
    return t.empty() ? -1 : t.front();
  };
  std::stable_sort(order_.begin(), order_.end(),
                   [&](std::size_t a, std::size_t b) { return first_block(a) < first_block(b); });
  for (const std::size_t index : order_) {
    const ScheduledChunk& ch = plan.chunks[index];
    Sequence& seq = *ch.seq;
    const bool sample = seq.num_computed + ch.count == seq.num_tokens();
    if (sample) {
      row.temperature = seq.sampling.temperature;
      row.top_p = seq.sampling.top_p;
      row.top_k = seq.sampling.top_k;
      row.key = SampleKey{seq.sampling.seed, seq.stream.workflow, seq.stream.step,
                          static_cast<uint64_t>(seq.num_generated())};
    }
    batch_.add_sequence(std::span<const int32_t>(seq.tokens)
                            .subspan(static_cast<std::size_t>(seq.num_computed),
                                     static_cast<std::size_t>(ch.count)),
                        seq.num_computed, seq.block_table, options_.block_size,
                        sample ? &row : nullptr);
    if (seq.timing.first_scheduled == Clock::time_point{}) seq.timing.first_scheduled = start;
  }
}

std::vector<Completion> LlmEngine::step() {
  std::vector<Completion> done;
  if (!has_work()) return done;
  const Clock::time_point start = Clock::now();
  const SchedulerOutput& plan = scheduler_->schedule();
  if (plan.chunks.empty() && plan.finished.empty())
    throw RunError("engine: the scheduler made no progress with work queued");

  build_batch(plan, start);
  const bool ran = batch_.num_seqs() > 0 || !batch_.copies.empty();
  if (ran) runner_->launch(batch_);
  // While the device computes: publish the newly full blocks to the prefix cache (hashing is
  // host work that needs only the tokens, not the step's results).
  for (const ScheduledChunk& ch : plan.chunks) scheduler_->computed(*ch.seq, ch.count);
  if (ran) runner_->finish(result_);
  const Clock::time_point now = Clock::now();

  if (result_.tokens.size() < batch_.sampling.size())
    throw RunError("engine: the backend returned fewer tokens than sampling rows");
  finished_.clear();
  for (std::size_t r = 0; r < batch_.sample_seqs.size(); ++r) {
    Sequence& seq = *plan.chunks[order_[static_cast<std::size_t>(batch_.sample_seqs[r])]].seq;
    if (return_logits_) {
      const auto vocab = static_cast<std::ptrdiff_t>(runner_->config().n_vocab);
      const auto row = result_.logits.begin() + static_cast<std::ptrdiff_t>(r) * vocab;
      std::vector<float>& kept = kept_logits_[seq.id];
      kept.insert(kept.end(), row, row + vocab);
    }
    if (seq.num_generated() == 0) seq.timing.first_token = now;
    if (seq.append_token(result_.tokens[r], context_length_)) finished_.push_back(&seq);
  }
  finished_.insert(finished_.end(), plan.finished.begin(), plan.finished.end());

  ++stats_.steps;
  const int32_t batch_tokens = batch_.num_tokens();
  stats_.computed_tokens += batch_tokens;
  stats_.max_batch_tokens_seen = std::max(stats_.max_batch_tokens_seen, batch_tokens);
  done.reserve(finished_.size());
  for (Sequence* seq : finished_) {
    seq->timing.finished = now;
    if (seq->timing.first_token == Clock::time_point{}) seq->timing.first_token = now;
    scheduler_->finish(*seq);
    stats_.cached_tokens += seq->num_cached;
    done.push_back(seq->completion());
    sequences_.erase(seq->id);  // destroys seq
  }
  return done;
}

std::vector<float> LlmEngine::take_logits(uint64_t id) {
  std::vector<float> out;
  if (const auto it = kept_logits_.find(id); it != kept_logits_.end()) {
    out = std::move(it->second);
    kept_logits_.erase(it);
  }
  return out;
}

EngineStats LlmEngine::stats() const {
  EngineStats s = stats_;
  if (scheduler_) s.preemptions = scheduler_->preemptions();
  if (cache_) s.evictions = cache_->evictions();
  return s;
}

}  // namespace flowrank::engine
