// `flowrank bench`: prefill (pp), decode (tg) and offline throughput, llama-bench style, each
// rate beside the device's own limits measured in the same run (--limits): decode against the
// bandwidth roofline (bytes a step must read over the measured copy bandwidth), prefill against
// the measured GEMM rate (FLOPs with causal attention counted).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli_common.hpp"
#include "commands.hpp"
#include "flowrank/common/clock.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/engine/engine.hpp"

namespace flowrank::cli {
namespace {

// Text of about `tokens` tokens, distinct per `salt`, so no two bench requests share a prefix.
std::string filler_text(const engine::Engine& eng, int32_t tokens, int salt) {
  static const char* kWords[] = {"stream", "ledger", "orbit",  "granite", "violet", "harbor",
                                 "signal", "meadow", "copper", "lantern", "quartz", "river"};
  std::string text = "Request " + std::to_string(salt) + ":";
  // Grow in chunks, then trim word by word: tokenizing each word separately would be slow.
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(salt + 1);
  while (static_cast<int32_t>(eng.tokenize(text).size()) < tokens) {
    for (int i = 0; i < 32; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      text += ' ';
      text += kWords[x % 12];
    }
  }
  while (static_cast<int32_t>(eng.tokenize(text).size()) > tokens) {
    auto sp = text.rfind(' ');
    if (sp == std::string::npos) break;
    text.resize(sp);
  }
  return text;
}

struct BenchRow {
  std::string test;
  int32_t batch = 0;
  int64_t tokens = 0;
  double seconds = 0;
  double limit_tps = 0;  // the device's ceiling for this test, tokens/s (0: not measured)
  double tps() const { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0; }
};

// Attention FLOPs of one token at position `pos` (QK^T and PV), over every layer.
double attention_flops(const engine::ModelShape& m, double pos) {
  const double per_key = 4.0 * m.n_head * m.head_dim;
  const int full = m.n_layer - m.sliding_layers;
  const double window = m.sliding_window > 0 ? std::min<double>(pos, m.sliding_window) : pos;
  return per_key * (full * pos + m.sliding_layers * window);
}

// KV bytes one sequence at context `ctx` must read in one decode step.
double kv_read_bytes(const engine::ModelShape& m, double ctx) {
  const double per_layer = static_cast<double>(m.kv_bytes_per_token) / m.n_layer;
  const double window = m.sliding_window > 0 ? std::min<double>(ctx, m.sliding_window) : ctx;
  return per_layer * ((m.n_layer - m.sliding_layers) * ctx + m.sliding_layers * window);
}

// Prefill of `batch` prompts of `pp` tokens: GEMM FLOPs (the output layer on one token each)
// plus causal attention, over the measured GEMM rate.
double prefill_limit(const engine::ModelShape& m, int32_t batch, int32_t pp,
                     const engine::DeviceLimits& lim) {
  const double head = static_cast<double>(m.n_vocab) * m.n_embd;
  double flops = 2.0 * (static_cast<double>(m.matmul_params) - head) * pp + 2.0 * head;
  for (int32_t p = 0; p < pp; p += 64) flops += 64.0 * attention_flops(m, p + 32.0);
  flops *= batch;
  return static_cast<double>(batch) * pp / (flops / lim.bf16_gemm_flops);
}

// Decode of `batch` sequences from context `ctx` for `gen` tokens: every step reads the weights
// once and each sequence's KV; over the measured copy bandwidth.
double decode_limit(const engine::ModelShape& m, int32_t batch, int32_t ctx, int32_t gen,
                    const engine::DeviceLimits& lim) {
  const double bytes =
      static_cast<double>(m.weight_bytes) + batch * kv_read_bytes(m, ctx + gen / 2.0);
  return batch / (bytes / lim.copy_bytes_per_s);
}

uint64_t submit(engine::Engine& eng, uint64_t& next_id, const std::string& prompt,
                int32_t max_tokens) {
  engine::Request r;
  r.id = next_id++;
  r.prompt = prompt;
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  eng.submit(std::move(r));
  return r.id;
}

BenchRow prefill_row(engine::Engine& eng, int32_t batch, int32_t pp, uint64_t& next_id, int& salt) {
  std::vector<std::string> prompts;
  for (int b = 0; b < batch; ++b) prompts.push_back(filler_text(eng, pp, salt++));
  const auto start = Clock::now();
  for (auto& p : prompts) submit(eng, next_id, p, 1);
  int64_t tokens = 0;
  for (auto& c : drain(eng)) tokens += c.prompt_tokens;
  return {"pp" + std::to_string(pp), batch, tokens, seconds_between(start, Clock::now())};
}

// Decode rate in the steady state, as llama-batched-bench measures it: from the first step in
// which all `batch` sequences decode together (every prefill done) to the last finish, counting
// the tokens computed in those steps. Earlier steps mix other sequences' prefill chunks in.
BenchRow decode_row(engine::Engine& eng, int32_t batch, int32_t tg, int32_t context,
                    uint64_t& next_id, int& salt) {
  for (int b = 0; b < batch; ++b) submit(eng, next_id, filler_text(eng, context, salt++), tg);
  std::optional<Clock::time_point> start;
  int64_t tokens = 0;
  Clock::time_point end{};
  while (eng.has_work()) {
    const int64_t before = eng.stats().computed_tokens;
    const auto step_start = Clock::now();
    eng.step();
    end = Clock::now();
    const int64_t computed = eng.stats().computed_tokens - before;
    if (!start && computed == batch) start = step_start;
    if (start) tokens += computed;
  }
  const std::string ctx = context == 16 ? "" : "@c" + std::to_string(context);
  return {"tg" + std::to_string(tg) + ctx, batch, tokens, start ? seconds_between(*start, end) : 0};
}

struct OfflineResult {
  int32_t requests = 0, prompt = 0, gen = 0;
  double seconds = 0;
  int64_t output_tokens = 0, total_tokens = 0;
};

// vLLM's benchmark_throughput: every request submitted at once, wall time to the last finish.
OfflineResult offline_run(engine::Engine& eng, const std::string& spec, uint64_t& next_id,
                          int& salt) {
  OfflineResult r;
  if (std::sscanf(spec.c_str(), "%d:%d:%d", &r.requests, &r.prompt, &r.gen) != 3 ||
      r.requests < 1 || r.prompt < 1 || r.gen < 1)
    throw InputError("--offline '" + spec + "'", "expected N:P:G, three positive numbers");
  std::vector<std::string> prompts;
  // Distinct prompts; tokenizing a thousand fillers is slow, so vary a shared one's head.
  const std::string body = filler_text(eng, r.prompt, salt++);
  for (int i = 0; i < r.requests; ++i) prompts.push_back(std::to_string(i) + " " + body);
  const auto start = Clock::now();
  for (auto& p : prompts) submit(eng, next_id, p, r.gen);
  for (auto& c : drain(eng)) {
    r.output_tokens += c.decode_tokens;
    r.total_tokens += c.prompt_tokens + c.decode_tokens;
  }
  r.seconds = seconds_between(start, Clock::now());
  return r;
}

void print_json(const engine::EngineInfo& info, double preload_s,
                const std::optional<engine::DeviceLimits>& lim, const std::vector<BenchRow>& rows,
                const std::optional<OfflineResult>& off) {
  nlohmann::json j;
  j["model"] = info.model;
  j["backend"] = info.backend;
  j["device"] = info.device;
  j["preload_s"] = preload_s;
  j["batch_invariant"] = info.batch_invariant;
  if (lim) {
    j["limits"] = {{"copy_bytes_per_s", lim->copy_bytes_per_s},
                   {"bf16_gemm_flops", lim->bf16_gemm_flops}};
  }
  for (const auto& r : rows)
    j["results"].push_back({{"test", r.test},
                            {"batch", r.batch},
                            {"tokens", r.tokens},
                            {"seconds", r.seconds},
                            {"tokens_per_s", r.tps()},
                            {"limit_tokens_per_s", r.limit_tps}});
  if (off)
    j["offline"] = {{"requests", off->requests},
                    {"prompt_tokens", off->prompt},
                    {"output_tokens_each", off->gen},
                    {"seconds", off->seconds},
                    {"requests_per_s", off->requests / off->seconds},
                    {"output_tokens_per_s", off->output_tokens / off->seconds},
                    {"total_tokens_per_s", off->total_tokens / off->seconds}};
  std::printf("%s\n", j.dump(2).c_str());
}

void print_table(const engine::EngineInfo& info, double preload_s,
                 const std::optional<engine::DeviceLimits>& lim, const std::vector<BenchRow>& rows,
                 const std::optional<OfflineResult>& off) {
  const char* invariant = info.batch_invariant ? "yes" : "no";
  if (lim)
    std::printf("limits: copy %.2f TB/s (read + write), bf16 GEMM %.0f TFLOP/s\n\n",
                lim->copy_bytes_per_s / 1e12, lim->bf16_gemm_flops / 1e12);
  std::printf("| model | backend | device | batch-invariant | test | batch | tokens | t/s |%s\n",
              lim ? " limit t/s | % of limit |" : "");
  std::printf("|---|---|---|---|---|---:|---:|---:|%s\n", lim ? "---:|---:|" : "");
  for (const auto& r : rows) {
    std::printf("| %s | %s | %s | %s | %s | %d | %lld | %.1f |", info.model_name.c_str(),
                info.backend.c_str(), info.device.c_str(), invariant, r.test.c_str(), r.batch,
                static_cast<long long>(r.tokens), r.tps());
    if (lim) std::printf(" %.1f | %.1f%% |", r.limit_tps, 100.0 * r.tps() / r.limit_tps);
    std::printf("\n");
  }
  if (off)
    std::printf(
        "\noffline: %d requests x (%d prompt + %d output) tokens in %.2f s: %.2f req/s, "
        "%.0f output tok/s, %.0f total tok/s\n",
        off->requests, off->prompt, off->gen, off->seconds, off->requests / off->seconds,
        off->output_tokens / off->seconds, off->total_tokens / off->seconds);
  std::printf("\npreload: %.2f s\n", preload_s);
}

}  // namespace

int bench_command(const BenchArgs& args) {
  engine::EngineOptions o = model_engine_options(args.model, args.device);
  apply_engine_flags(args.engine, o);
  o.threads = args.threads;
  o.prefix_cache = false;  // every prompt is computed in full
  o.max_seqs =
      args.max_seqs.value_or(std::max(64, *std::max_element(args.batch.begin(), args.batch.end())));
  if (args.max_batch_tokens) o.max_batch_tokens = *args.max_batch_tokens;
  std::optional<engine::DeviceLimits> lim;
  if (args.limits) lim = engine::measure_device_limits(o);
  const auto t0 = Clock::now();
  auto eng = engine::make_engine(o);
  eng->preload();
  const double preload_s = seconds_between(t0, Clock::now());
  const engine::EngineInfo info = eng->info();

  std::vector<BenchRow> rows;
  uint64_t next_id = 1;
  int salt = 0;
  for (int32_t batch : args.batch) {
    for (int32_t pp : args.prompt_tokens) {
      if (pp <= 0) continue;  // -p 0: no prefill test
      rows.push_back(prefill_row(*eng, batch, pp, next_id, salt));
      if (lim) rows.back().limit_tps = prefill_limit(info.shape, batch, pp, *lim);
    }
    for (int32_t tg : args.gen_tokens) {
      if (tg <= 1) continue;  // -n 0: no decode test (a rate needs two tokens)
      rows.push_back(decode_row(*eng, batch, tg, args.context, next_id, salt));
      if (lim) rows.back().limit_tps = decode_limit(info.shape, batch, args.context, tg, *lim);
    }
  }
  std::optional<OfflineResult> off;
  if (args.offline) off = offline_run(*eng, *args.offline, next_id, salt);
  if (args.format == "json") {
    print_json(info, preload_s, lim, rows, off);
  } else {
    print_table(info, preload_s, lim, rows, off);
  }
  return 0;
}

}  // namespace flowrank::cli
