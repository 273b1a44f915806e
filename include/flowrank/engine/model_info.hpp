#pragma once
// `flowrank model info FILE`: a human-readable summary of a GGUF file or dummy shape.
#include <string>

namespace flowrank::engine {

// Multi-line text: arch, name, config numbers, rope settings, sliding window, tensor count per
// type and total bytes, tokenizer model/pre/vocab size, chat template presence and kind.
// Throws InputError like load_model (it validates the model the same way). A dummy shape is
// described from its numbers without generating weights.
std::string describe_model(const std::string& spec);

}  // namespace flowrank::engine
