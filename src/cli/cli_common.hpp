#pragma once
// Pieces shared by the subcommands: where the default model lives, how job settings become
// engine options, and how errors become exit codes.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flowrank/engine/engine.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/job.hpp"

namespace flowrank::cli {

// $FLOWRANK_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf under the current directory, else
// under the directory above the executable's (build/flowrank -> models/).
std::string default_model_path();
// $FLOWRANK_TOKENIZER, else fixtures/tokenizers/smollm2.tokenizer.gguf found the same way: the
// tokenizer a dummy model uses.
std::string default_tokenizer_path();

// Engine settings every engine-running subcommand takes (see main.cpp for the flags).
struct EngineFlags {
  std::optional<std::string> tokenizer;
  std::optional<int32_t> gpu;
  std::optional<float> gpu_memory_fraction;
  bool no_cascade = false;
  bool no_cuda_graphs = false;
};
void apply_engine_flags(const EngineFlags& flags, engine::EngineOptions& o);

engine::EngineOptions engine_options_for(const flow::JobSpec& job);
// Options for a one-off engine (generate, bench): `model` (default: the bundled one) on `device`.
engine::EngineOptions model_engine_options(const std::string& model, const std::string& device);

// Runs the engine until every submitted request finished.
std::vector<engine::Completion> drain(engine::Engine& eng);

// One warning line on stderr per fixture entry the job's rules left out, and the cache warning.
void print_expansion_warnings(const flow::JobSpec& job, const flow::ExpansionResult& expansion);

// Runs `body`, mapping errors to one line on stderr and an exit code: 2 for bad input, 1 for
// anything else (out of memory, I/O, internal).
int guarded(const std::function<int()>& body);

}  // namespace flowrank::cli
