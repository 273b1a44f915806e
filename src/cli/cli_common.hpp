#pragma once
// Pieces shared by the subcommands: where the default model lives, how job settings become
// engine options, and how errors become exit codes.
#include <functional>
#include <optional>
#include <string>

#include "flowrank/engine/engine.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/job.hpp"

namespace flowrank::cli {

// $FLOWRANK_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf under the current directory, else
// under the directory above the executable's (build/flowrank -> models/).
std::string default_model_path();

engine::EngineOptions engine_options_for(const flow::JobSpec& job);

// One warning line on stderr per fixture entry the job's rules left out, and the cache warning.
void print_expansion_warnings(const flow::JobSpec& job, const flow::ExpansionResult& expansion);

// Runs `body`, mapping errors to one line on stderr and an exit code: 2 for bad input, 1 for
// anything else (out of memory, I/O, internal).
int guarded(const std::function<int()>& body);

}  // namespace flowrank::cli
