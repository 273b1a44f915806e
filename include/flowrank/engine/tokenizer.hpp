#pragma once
// Tokenizer built from GGUF metadata: byte-level BPE (tokenizer.ggml.model = gpt2, with the
// pre-tokenizer regexes of gpt-2 / llama-bpe / smollm / olmo through PCRE2) and SentencePiece-
// style (llama). Matches llama.cpp's llama_tokenize token for token; decode is the concatenation
// of token pieces (llama_token_to_piece), which round-trips encode.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flowrank::engine {

class GgufFile;

// What a tokenizer is built from: the tokenizer.* metadata of a GGUF file, or a vocabulary made in
// code (tests, dummy models). Unset optionals take llama.cpp's defaults for the model type.
struct TokenizerVocab {
  std::string source;               // file name for error messages
  std::string model;                // tokenizer.ggml.model: "gpt2" (byte-level BPE) | "llama" (SPM)
  std::string pre;                  // tokenizer.ggml.pre (gpt2 only; empty = "default")
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens
  std::vector<float> scores;        // tokenizer.ggml.scores (llama); empty = all 0
  // tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte;
  // empty = all normal
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;  // tokenizer.ggml.merges (gpt2): "left right", rank = index
  std::optional<int32_t> bos_id, eos_id, eot_id, unk_id;
  std::optional<bool> add_bos, add_space_prefix;
  std::string chat_template;  // tokenizer.chat_template; empty = none
};

// The tokenizer.* metadata of a GGUF file; throws InputError naming the file for a missing key.
TokenizerVocab read_tokenizer_vocab(const GgufFile& file);

class Tokenizer {
 public:
  // Throws InputError naming the file for a missing key, an unsupported tokenizer model or
  // pre-tokenizer type, or an inconsistent vocabulary.
  static std::shared_ptr<const Tokenizer> from_gguf(const GgufFile& file);
  static std::shared_ptr<const Tokenizer> from_vocab(TokenizerVocab vocab);
  virtual ~Tokenizer() = default;

  // add_bos: prepend BOS when the model's rules say so (tokenizer.ggml.add_bos_token);
  // parse_special: text like "<|im_start|>" becomes its special token instead of plain bytes.
  // (User-defined tokens, type 4, are split out either way, as in llama.cpp.)
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos,
                                      bool parse_special) const = 0;
  // Text of the tokens; special/control tokens are rendered only when render_special. For SPM
  // vocabularies with add_space_prefix, the space the encoder put in front of the text is removed.
  virtual std::string decode(std::span<const int32_t> tokens,
                             bool render_special = false) const = 0;
  // The bytes one token stands for (for streaming decode). Ids past the vocabulary (a dummy
  // model with a larger output layer) wrap into it; negative ids have no text.
  virtual std::string piece(int32_t token, bool render_special = false) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos() const = 0;  // -1 if none
  virtual int32_t eos() const = 0;
  virtual bool is_end_of_generation(int32_t token) const = 0;  // eos, eot, <|im_end|>, ...

  // Renders one user turn plus the assistant prefix with the model's chat template (ChatML or
  // Llama-3, recognised from tokenizer.chat_template). Throws InputError if unsupported. The
  // result holds special-token text: encode it with parse_special = true. A template's leading
  // bos_token is left out; encode(add_bos = true) supplies BOS where the model wants one.
  virtual std::string apply_chat_template(std::string_view user_message) const = 0;
};

// Streaming detokenizer: feed token by token, get the text that is complete so far (partial
// UTF-8 sequences are held back until their last byte arrives).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  std::string push(int32_t token);  // newly printable text
  std::string flush();              // whatever is held back, at the end
 private:
  const Tokenizer* tok_;
  std::string pending_;
};

}  // namespace flowrank::engine
