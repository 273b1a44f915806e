// Pre-tokenizer regexes per tokenizer.ggml.pre, as llama.cpp chooses them (llm_tokenizer_bpe), run
// through PCRE2. llama.cpp's splitter treats \s as the Unicode White_Space set; the patterns spell
// that set out (FR_WS) so the split does not depend on what a PCRE2 version counts as \s.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

#include "flowrank/common/error.hpp"
#include "tokenizer_impl.hpp"

namespace flowrank::engine::tokenizer_detail {
namespace {

// White_Space: \t \n \v \f \r, U+0085, and the Z categories (space, U+00A0, U+1680, U+2000-200A,
// U+2028, U+2029, U+202F, U+205F, U+3000).
#define FR_WS "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}"

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
const char* const kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" FR_WS
                          "\\p{L}\\p{N}]+|[" FR_WS "]+(?![^" FR_WS "])";

// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
const char* const kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^" FR_WS "\\p{L}\\p{N}]+[\\r\\n]*|[" FR_WS "]*[\\r\\n]+|[" FR_WS "]+(?![^" FR_WS
    "])|[" FR_WS "]+";

// As llama3 but one digit at a time (qwen2, stablelm2).
const char* const kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^" FR_WS "\\p{L}\\p{N}]+[\\r\\n]*|[" FR_WS "]*[\\r\\n]+|[" FR_WS "]+(?![^" FR_WS
    "])|[" FR_WS "]+";

#undef FR_WS

bool one_of(std::string_view s, std::initializer_list<std::string_view> names) {
  for (auto n : names) {
    if (s == n) return true;
  }
  return false;
}

}  // namespace

std::optional<PreTokenizerConfig> pre_tokenizer_config(std::string_view pre) {
  PreTokenizerConfig c;
  if (pre.empty() || pre == "default") {
    c.patterns = {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"};
  } else if (one_of(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3"})) {
    c.patterns = {kLlama3};
    c.ignore_merges = true;
    c.add_bos = true;
  } else if (one_of(pre, {"dbrx", "smaug-bpe"})) {
    c.patterns = {kLlama3};
  } else if (one_of(pre, {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                          "minerva"})) {
    c.patterns = {"\\p{N}", kGpt2};  // digits one by one, then gpt-2
  } else if (one_of(pre, {"gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de",
                          "jina-v2-es", "jina-v2-de", "gigachat"})) {
    c.patterns = {kGpt2};
  } else if (one_of(pre, {"qwen2", "stablelm2", "deepseek-r1-qwen"})) {
    c.patterns = {kQwen2};
  } else {
    return std::nullopt;
  }
  return c;
}

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns, const std::string& source) {
  for (const auto& p : patterns) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
      throw InputError(source, "pre-tokenizer regex does not compile at offset " +
                                   std::to_string(err_off) + ": " +
                                   reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
    codes_.push_back(code);
  }
}

PreTokenizer::~PreTokenizer() {
  for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
}

std::vector<std::pair<std::size_t, std::size_t>> PreTokenizer::split(std::string_view text) const {
  std::vector<std::pair<std::size_t, std::size_t>> pieces;
  if (text.empty()) return pieces;
  pieces.emplace_back(0, text.size());
  std::vector<std::pair<std::size_t, std::size_t>> next;
  for (void* vcode : codes_) {
    auto* code = static_cast<pcre2_code*>(vcode);
    // Match data per call: the compiled pattern is shared, the match state is not.
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    if (md == nullptr) throw std::bad_alloc();
    next.clear();
    next.reserve(pieces.size() * 2);
    for (auto [start, len] : pieces) {
      // Each piece is its own subject, so lookaheads end at its boundary as in llama.cpp.
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + start);
      std::size_t pos = 0;
      while (pos < len) {
        int rc = pcre2_match(code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(md);
          throw std::runtime_error("pre-tokenizer regex match failed (PCRE2 error " +
                                   std::to_string(rc) + ")");
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        std::size_t ms = ov[0], me = ov[1];
        if (ms > pos) next.emplace_back(start + pos, ms - pos);  // unmatched text is a piece too
        if (me == ms) {
          // An empty match cannot split anything; step over one code point.
          std::size_t step = 1;
          while (ms + step < len && (static_cast<unsigned char>(subject[ms + step]) & 0xC0) == 0x80)
            ++step;
          next.emplace_back(start + ms, step);
          pos = ms + step;
          continue;
        }
        next.emplace_back(start + ms, me - ms);
        pos = me;
      }
      if (pos < len) next.emplace_back(start + pos, len - pos);
    }
    pcre2_match_data_free(md);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace flowrank::engine::tokenizer_detail
