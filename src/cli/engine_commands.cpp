// Engine-facing subcommands: `model info`, `generate` (`bench` is in bench_command.cpp).
#include <algorithm>
#include <cstdio>

#include "cli_common.hpp"
#include "commands.hpp"
#include "flowrank/common/clock.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/engine/engine.hpp"
#include "flowrank/engine/model_info.hpp"

namespace flowrank::cli {

int model_info_command(const std::string& spec) {
  std::printf("%s", engine::describe_model(spec).c_str());
  return 0;
}

int generate_command(const GenerateArgs& args) {
  engine::EngineOptions o = model_engine_options(args.model, args.device);
  apply_engine_flags(args.engine, o);
  auto eng = engine::make_engine(o);
  eng->preload();
  eng->keep_logits(args.logits.has_value());
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
  if (args.logits) {
    const std::vector<float> rows = eng->take_logits(c.id);
    write_file_atomic(*args.logits, std::string_view(reinterpret_cast<const char*>(rows.data()),
                                                     rows.size() * sizeof(float)));
  }
  std::fprintf(stderr, "[generate] prompt %d tokens, %d generated, ttft %.1f ms, total %.1f ms\n",
               c.prompt_tokens, c.decode_tokens,
               seconds_between(c.timing.submitted, c.timing.first_token) * 1e3,
               seconds_between(c.timing.submitted, c.timing.finished) * 1e3);
  return 0;
}

}  // namespace flowrank::cli
