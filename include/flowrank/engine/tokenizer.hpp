#pragma once
// Tokenizer built from GGUF metadata: byte-level BPE (tokenizer.ggml.model = gpt2, with the
// pre-tokenizer regexes of gpt-2 / llama-bpe / smollm / olmo through PCRE2) and SentencePiece-
// style (llama). Matches llama.cpp's llama_tokenize / llama_detokenize token for token.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flowrank::engine {

class GgufFile;

class Tokenizer {
 public:
  static std::shared_ptr<const Tokenizer> from_gguf(const GgufFile& file);
  virtual ~Tokenizer() = default;

  // add_bos: prepend BOS when the model's rules say so (tokenizer.ggml.add_bos_token);
  // parse_special: text like "<|im_start|>" becomes its special token instead of plain bytes.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos,
                                      bool parse_special) const = 0;
  // Text of the tokens; special/control tokens are rendered only when render_special.
  virtual std::string decode(std::span<const int32_t> tokens, bool render_special = false) const = 0;
  // The bytes one token stands for (for streaming decode).
  virtual std::string piece(int32_t token, bool render_special = false) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos() const = 0;  // -1 if none
  virtual int32_t eos() const = 0;
  virtual bool is_end_of_generation(int32_t token) const = 0;  // eos, eot, <|im_end|>, ...

  // Renders one user turn plus the assistant prefix with the model's chat template (ChatML or
  // Llama-3, recognised from tokenizer.chat_template). Throws InputError if unsupported.
  virtual std::string apply_chat_template(std::string_view user_message) const = 0;
};

// Streaming detokenizer: feed token by token, get the text that is complete so far (partial
// UTF-8 sequences are held back until their last byte arrives).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  std::string push(int32_t token);  // newly printable text
  std::string flush();               // whatever is held back, at the end
 private:
  const Tokenizer* tok_;
  std::string pending_;
};

}  // namespace flowrank::engine
