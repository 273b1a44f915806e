#pragma once
// Pieces shared by the tokenizer's translation units (not part of the engine's contract).
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flowrank/engine/tokenizer.hpp"

namespace flowrank::engine::tokenizer_detail {

// Token attributes as llama.cpp derives them from tokenizer.ggml.token_type.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Turns a run of plain text (special tokens already split out) into token ids.
class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  // prev_special: the run starts the text or follows a special token (SPM's space prefix).
  virtual void encode(std::string_view text, bool prev_special,
                      std::vector<int32_t>& out) const = 0;
};

// Regexes and flags llama.cpp uses for a tokenizer.ggml.pre value; nullopt if not supported.
struct PreTokenizerConfig {
  std::vector<std::string> patterns;  // applied one after another, each splitting the last's pieces
  bool ignore_merges = false;         // a whole pre-token that is in the vocabulary is taken as is
  bool add_bos = false;               // default of tokenizer.ggml.add_bos_token
};
std::optional<PreTokenizerConfig> pre_tokenizer_config(std::string_view pre);

// Splits text into pre-tokens with PCRE2 (UTF + UCP, JIT when available). Immutable after
// construction, so one instance serves many threads.
class PreTokenizer {
 public:
  PreTokenizer(const std::vector<std::string>& patterns, const std::string& source);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;
  // Byte ranges (offset, length) of the pre-tokens; `text` must be valid UTF-8.
  std::vector<std::pair<std::size_t, std::size_t>> split(std::string_view text) const;

 private:
  std::vector<void*> codes_;  // pcre2_code_8*
};

// GPT-2's byte-level mapping: every byte has a printable code point standing for it.
const std::array<std::string, 256>& byte_to_unicode();
// Bytes a byte-level token text stands for; nullopt if a code point is outside the mapping.
std::optional<std::string> unicode_to_bytes(std::string_view text);

std::unique_ptr<TextEncoder> make_bpe_encoder(const TokenizerVocab& vocab,
                                              const PreTokenizerConfig& pre);
std::unique_ptr<TextEncoder> make_spm_encoder(const TokenizerVocab& vocab, int32_t unk_id,
                                              bool add_space_prefix);

// Chat template recognised from tokenizer.chat_template.
struct ChatFormat {
  enum class Kind { kNone, kChatMl, kLlama3 } kind = Kind::kNone;
  std::optional<std::string> default_system;  // inserted when there is no system turn
  bool trim_content = false;                  // the template applies `| trim` to contents
  std::string unsupported;                    // why the template cannot be rendered, if so
};
ChatFormat parse_chat_template(std::string_view tmpl);
std::string render_chat(const ChatFormat& format, std::string_view user_message);

// llama.cpp replaces each byte of an invalid UTF-8 sequence by U+FFFD before pre-tokenizing.
std::string replace_invalid_utf8(std::string_view text);

}  // namespace flowrank::engine::tokenizer_detail
