// Tokenizer::from_gguf: the tokenizer.* metadata of a GGUF file as a TokenizerVocab. Kept apart
// from tokenizer.cpp so that code building tokenizers from vocabularies alone does not pull in the
// GGUF reader.
#include "flowrank/common/error.hpp"
#include "flowrank/engine/gguf.hpp"
#include "tokenizer_impl.hpp"

namespace flowrank::engine {

TokenizerVocab read_tokenizer_vocab(const GgufFile& file) {
  TokenizerVocab v;
  v.source = file.path().string();
  v.model = file.get_string("tokenizer.ggml.model");
  v.pre = file.find_string("tokenizer.ggml.pre").value_or("");
  v.tokens = file.get_array("tokenizer.ggml.tokens").strings;
  if (v.tokens.size() != file.get_array("tokenizer.ggml.tokens").size()) {
    throw InputError(v.source, "metadata tokenizer.ggml.tokens: expected an array of strings");
  }
  if (file.has("tokenizer.ggml.scores")) {
    const GgufArray& a = file.get_array("tokenizer.ggml.scores");
    if (!a.floats.empty()) {
      v.scores.assign(a.floats.begin(), a.floats.end());
    } else {
      v.scores.assign(a.ints.begin(), a.ints.end());
    }
  }
  if (file.has("tokenizer.ggml.token_type")) {
    const GgufArray& a = file.get_array("tokenizer.ggml.token_type");
    v.token_types.assign(a.ints.begin(), a.ints.end());
  }
  if (file.has("tokenizer.ggml.merges")) v.merges = file.get_array("tokenizer.ggml.merges").strings;
  auto id = [&](const char* key) -> std::optional<int32_t> {
    auto x = file.find_int(key);
    if (!x) return std::nullopt;
    return static_cast<int32_t>(*x);
  };
  v.bos_id = id("tokenizer.ggml.bos_token_id");
  v.eos_id = id("tokenizer.ggml.eos_token_id");
  v.eot_id = id("tokenizer.ggml.eot_token_id");
  v.unk_id = id("tokenizer.ggml.unknown_token_id");
  v.add_bos = file.find_bool("tokenizer.ggml.add_bos_token");
  v.add_space_prefix = file.find_bool("tokenizer.ggml.add_space_prefix");
  v.chat_template = file.find_string("tokenizer.chat_template").value_or("");
  return v;
}

std::shared_ptr<const Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  return from_vocab(read_tokenizer_vocab(file));
}

}  // namespace flowrank::engine
