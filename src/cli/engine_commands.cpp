// Engine-facing subcommands: `model info`, `generate`, `bench`.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "commands.hpp"
#include "flowrank/common/clock.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/engine/engine.hpp"
#include "flowrank/engine/model_info.hpp"

namespace flowrank::cli {
namespace {

// Runs the engine until every submitted request finished.
std::vector<engine::Completion> drain(engine::Engine& eng) {
  std::vector<engine::Completion> all;
  while (eng.has_work())
    for (auto& c : eng.step()) all.push_back(std::move(c));
  return all;
}

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
  int32_t batch;
  int64_t tokens;
  double seconds;
  double tps() const { return seconds > 0 ? tokens / seconds : 0; }
};

}  // namespace

int model_info_command(const std::string& spec) {
  std::printf("%s", engine::describe_model(spec).c_str());
  return 0;
}

namespace {
// Options for a one-off engine: the given model (default: the bundled one) on `device`.
engine::EngineOptions model_engine_options(const std::string& model, const std::string& device) {
  engine::EngineOptions o;
  o.model = model.empty() ? default_model_path() : model;
  o.tokenizer_model = default_model_path();
  o.device = device;
  return o;
}
}  // namespace

int generate_command(const GenerateArgs& args) {
  const engine::EngineOptions o = model_engine_options(args.model, args.device);
  auto eng = engine::make_engine(o);
  eng->preload();
  engine::Request r;
  r.id = 1;
  r.prompt = args.prompt;
  r.chat = args.chat;
  r.sampling.max_tokens = args.max_tokens;
  r.sampling.temperature = args.temperature;
  r.sampling.top_p = args.top_p;
  r.sampling.seed = args.seed;
  eng->submit(std::move(r));
  auto done = drain(*eng);
  const auto& c = done.at(0);
  std::printf("%s\n", c.text.c_str());
  std::fprintf(stderr, "[generate] prompt %d tokens, %d generated, ttft %.1f ms, total %.1f ms\n",
               c.prompt_tokens, c.decode_tokens,
               seconds_between(c.timing.submitted, c.timing.first_token) * 1e3,
               seconds_between(c.timing.submitted, c.timing.finished) * 1e3);
  return 0;
}

int bench_command(const BenchArgs& args) {
  engine::EngineOptions o = model_engine_options(args.model, args.device);
  o.threads = args.threads;
  o.prefix_cache = false;  // every prompt is computed in full
  o.batch_invariant = !args.no_batch_invariance;
  o.max_seqs = std::max(64, *std::max_element(args.batch.begin(), args.batch.end()));
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
      std::vector<std::string> prompts;
      for (int b = 0; b < batch; ++b) prompts.push_back(filler_text(*eng, pp, salt++));
      const auto start = Clock::now();
      for (auto& p : prompts) {
        engine::Request r;
        r.id = next_id++;
        r.prompt = p;
        r.sampling.max_tokens = 1;
        r.sampling.ignore_eos = true;
        eng->submit(std::move(r));
      }
      int64_t tokens = 0;
      for (auto& c : drain(*eng)) tokens += c.prompt_tokens;
      rows.push_back(
          {"pp" + std::to_string(pp), batch, tokens, seconds_between(start, Clock::now())});
    }
    for (int32_t tg : args.gen_tokens) {
      for (int b = 0; b < batch; ++b) {
        engine::Request r;
        r.id = next_id++;
        r.prompt = filler_text(*eng, 16, salt++);
        r.sampling.max_tokens = tg;
        r.sampling.ignore_eos = true;
        eng->submit(std::move(r));
      }
      // Decode rate: tokens after the first, from the first sampled token to the last finish.
      Clock::time_point first = Clock::time_point::max(), last{};
      int64_t tokens = 0;
      for (auto& c : drain(*eng)) {
        first = std::min(first, c.timing.first_token);
        last = std::max(last, c.timing.finished);
        tokens += c.decode_tokens - 1;
      }
      rows.push_back({"tg" + std::to_string(tg), batch, tokens, seconds_between(first, last)});
    }
  }

  if (args.format == "json") {
    nlohmann::json j;
    j["model"] = info.model;
    j["backend"] = info.backend;
    j["device"] = info.device;
    j["preload_s"] = preload_s;
    j["batch_invariant"] = o.batch_invariant;
    for (const auto& r : rows)
      j["results"].push_back({{"test", r.test},
                              {"batch", r.batch},
                              {"tokens", r.tokens},
                              {"seconds", r.seconds},
                              {"tokens_per_s", r.tps()}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  const char* invariant = o.batch_invariant ? "yes" : "no";
  std::printf("| model | backend | device | batch-invariant | test | batch | tokens | t/s |\n");
  std::printf("|---|---|---|---|---|---:|---:|---:|\n");
  for (const auto& r : rows)
    std::printf("| %s | %s | %s | %s | %s | %d | %lld | %.1f |\n", info.model_name.c_str(),
                info.backend.c_str(), info.device.c_str(), invariant, r.test.c_str(), r.batch,
                static_cast<long long>(r.tokens), r.tps());
  std::printf("\npreload: %.2f s\n", preload_s);
  return 0;
}

}  // namespace flowrank::cli
