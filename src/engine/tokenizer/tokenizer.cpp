// The Tokenizer built from a vocabulary: special-token splitting, BOS, pieces, decode and the
// end-of-generation set, following llama.cpp's llama_vocab; the model-specific text encoding is in
// bpe.cpp / spm.cpp.
#include <algorithm>
#include <unordered_set>

#include "flowrank/common/error.hpp"
#include "flowrank/common/utf8.hpp"
#include "tokenizer_impl.hpp"

namespace flowrank::engine {
namespace td = tokenizer_detail;
namespace {

uint32_t attr_of_type(int32_t type) {
  switch (type) {
    case 1:
      return td::kAttrNormal;
    case 2:
      return td::kAttrUnknown;
    case 3:
      return td::kAttrControl;
    case 4:
      return td::kAttrUserDefined;
    case 5:
      return td::kAttrUnused;
    case 6:
      return td::kAttrByte;
    default:
      return td::kAttrUndefined;
  }
}

// Texts llama.cpp treats as ending generation whatever their declared type.
constexpr std::string_view kEogTexts[] = {"<|eot_id|>",    "<|im_end|>",      "<|end|>",
                                          "<end_of_turn>", "<|endoftext|>",   "<|eom_id|>",
                                          "<EOT>",         "<|end_of_text|>", "<end_of_utterance>"};

class VocabTokenizer final : public Tokenizer {
 public:
  explicit VocabTokenizer(TokenizerVocab v) : v_(std::move(v)) {
    check_sizes();
    attrs_.resize(v_.tokens.size(), td::kAttrNormal);
    for (std::size_t i = 0; i < v_.token_types.size(); ++i)
      attrs_[i] = attr_of_type(v_.token_types[i]);
    const int32_t eot = choose_model_and_ids();
    mark_end_of_generation(eot);
    collect_specials();
    pieces_.resize(v_.tokens.size());
    for (int32_t id = 0; id < static_cast<int32_t>(v_.tokens.size()); ++id)
      pieces_[id] = make_piece(id);
    chat_ = td::parse_chat_template(v_.chat_template);
    // The encoders hold what they need of these; no reason to keep a second copy.
    v_.merges = {};
    v_.scores = {};
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos,
                              bool parse_special) const override {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (add_bos && add_bos_) out.push_back(bos_);
    bool prev_special = true;
    for (const Fragment& f : partition(text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
      } else {
        encoder_->encode(text.substr(f.offset, f.length), prev_special, out);
        prev_special = false;
      }
    }
    return out;
  }

  std::string decode(std::span<const int32_t> tokens, bool render_special) const override {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const int32_t token = in_vocab(tokens[i]);
      if (token < 0) continue;
      std::string p = piece(token, render_special);
      // Undo the space the SPM encoder put in front of the text.
      bool first_text = i == 0 || (i == 1 && tokens[0] == bos_);
      if (add_space_prefix_ && first_text && !p.empty() && p[0] == ' ' &&
          !(attrs_[static_cast<std::size_t>(token)] & (td::kAttrControl | td::kAttrUnknown))) {
        p.erase(0, 1);
      }
      out += p;
    }
    return out;
  }

  // Ids past the vocabulary (a dummy model's larger output layer) wrap into it, so generated
  // text keeps realistic lengths; negative ids have no text.
  int32_t in_vocab(int32_t token) const {
    return token >= vocab_size() ? token % vocab_size() : token;
  }

  std::string piece(int32_t token, bool render_special) const override {
    token = in_vocab(token);
    if (token < 0) return {};
    if (!render_special && (attrs_[token] & (td::kAttrControl | td::kAttrUnknown))) return {};
    return pieces_[token];
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(v_.tokens.size()); }
  int32_t bos() const override { return bos_; }
  int32_t eos() const override { return eos_; }
  bool is_end_of_generation(int32_t token) const override { return eog_.count(token) > 0; }

  std::string apply_chat_template(std::string_view user_message) const override {
    if (chat_.kind == td::ChatFormat::Kind::kNone) {
      throw InputError(v_.source,
                       v_.chat_template.empty()
                           ? "model has no tokenizer.chat_template"
                           : "tokenizer.chat_template is not supported: " + chat_.unsupported);
    }
    return td::render_chat(chat_, user_message);
  }

 private:
  void check_sizes() const {
    const std::string& src = v_.source;
    const auto n = static_cast<int32_t>(v_.tokens.size());
    if (n == 0) throw InputError(src, "tokenizer.ggml.tokens is empty");
    if (!v_.token_types.empty() && v_.token_types.size() != v_.tokens.size()) {
      throw InputError(src, "tokenizer.ggml.token_type has " +
                                std::to_string(v_.token_types.size()) + " entries, expected " +
                                std::to_string(n));
    }
    if (!v_.scores.empty() && v_.scores.size() != v_.tokens.size()) {
      throw InputError(src, "tokenizer.ggml.scores has " + std::to_string(v_.scores.size()) +
                                " entries, expected " + std::to_string(n));
    }
  }

  // The encoder of the vocabulary's model (BPE or SentencePiece) and the special ids, the
  // model's defaults where the file names none; returns the end-of-turn id (-1: none).
  int32_t choose_model_and_ids() {
    const std::string& src = v_.source;
    const auto n = static_cast<int32_t>(v_.tokens.size());
    int32_t bos = -1, eos = -1, unk = -1;
    bool add_bos = false;
    if (v_.model == "gpt2") {
      auto pre = td::pre_tokenizer_config(v_.pre);
      if (!pre) {
        throw InputError(src, "tokenizer.ggml.pre '" + v_.pre +
                                  "' is not supported (supported: default, gpt-2, olmo, llama-bpe, "
                                  "llama3, dbrx, smollm, starcoder, qwen2, ...)");
      }
      if (v_.merges.empty()) throw InputError(src, "tokenizer.ggml.merges is missing or empty");
      bos = eos = 11;  // llama.cpp's defaults for BPE vocabularies
      add_bos = pre->add_bos;
      encoder_ = td::make_bpe_encoder(v_, *pre);
    } else if (v_.model == "llama") {
      bos = 1;
      eos = 2;
      unk = 0;
      add_bos = true;
      add_space_prefix_ = v_.add_space_prefix.value_or(true);
    } else {
      throw InputError(
          src, "tokenizer.ggml.model '" + v_.model + "' is not supported (expected gpt2 or llama)");
    }
    auto in_range = [&](std::optional<int32_t> id, int32_t fallback) {
      int32_t x = id.value_or(fallback);
      return x >= 0 && x < n ? x : -1;
    };
    bos_ = in_range(v_.bos_id, bos);
    eos_ = in_range(v_.eos_id, eos);
    unk_ = in_range(v_.unk_id, unk);
    int32_t eot = in_range(v_.eot_id, -1);
    add_bos_ = v_.add_bos.value_or(add_bos) && bos_ >= 0;
    if (v_.model == "llama") encoder_ = td::make_spm_encoder(v_, unk_, add_space_prefix_);
    return eot;
  }

  // End of generation: eos, eot, and the tokens llama.cpp recognises by text (which it also
  // makes control tokens, so they are split out of text and hidden in output).
  void mark_end_of_generation(int32_t eot) {
    const auto n = static_cast<int32_t>(v_.tokens.size());
    if (eos_ >= 0) eog_.insert(eos_);
    if (eot >= 0) eog_.insert(eot);
    for (int32_t id = 0; id < n; ++id) {
      for (auto t : kEogTexts) {
        if (v_.tokens[id] == t) {
          eog_.insert(id);
          attrs_[id] |= td::kAttrControl;
        }
      }
    }
  }

  // Tokens matched as text before encoding, longest first.
  void collect_specials() {
    const auto n = static_cast<int32_t>(v_.tokens.size());
    for (int32_t id = 0; id < n; ++id) {
      if ((attrs_[id] & (td::kAttrControl | td::kAttrUserDefined | td::kAttrUnknown)) &&
          !v_.tokens[id].empty()) {
        specials_.push_back(id);
      }
    }
    std::stable_sort(specials_.begin(), specials_.end(), [&](int32_t a, int32_t b) {
      return v_.tokens[a].size() > v_.tokens[b].size();
    });
  }

  struct Fragment {
    int32_t token;  // -1 for raw text
    std::size_t offset, length;
  };

  // Splits special tokens out of the text, longest token first, the way llama.cpp's
  // tokenizer_st_partition does (each token in turn splits the text pieces left so far).
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const {
    std::vector<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    std::vector<Fragment> next;
    for (int32_t id : specials_) {
      if (!parse_special && (attrs_[id] & (td::kAttrControl | td::kAttrUnknown))) continue;
      const std::string& s = v_.tokens[id];
      if (text.find(s) == std::string_view::npos) continue;
      next.clear();
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          next.push_back(f);
          continue;
        }
        std::size_t pos = f.offset;
        const std::size_t end = f.offset + f.length;
        while (pos < end) {
          std::size_t m = text.substr(0, end).find(s, pos);
          if (m == std::string_view::npos) break;
          if (m > pos) next.push_back({-1, pos, m - pos});
          next.push_back({id, m, s.size()});
          pos = m + s.size();
        }
        if (pos < end) next.push_back({-1, pos, end - pos});
      }
      frags.swap(next);
    }
    return frags;
  }

  std::string make_piece(int32_t id) const {
    const std::string& text = v_.tokens[id];
    const uint32_t a = attrs_[id];
    if (a & (td::kAttrControl | td::kAttrUnknown | td::kAttrUserDefined)) return text;
    if (a & td::kAttrNormal) {
      if (v_.model == "llama") {
        std::string out;
        for (std::size_t i = 0; i < text.size(); ++i) {
          if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
            out += ' ';
            i += 2;
          } else {
            out += text[i];
          }
        }
        return out;
      }
      if (auto raw = td::unicode_to_bytes(text)) return *raw;
      // llama.cpp marks code points outside the byte mapping this way.
      std::string out;
      for (std::size_t i = 0; i < text.size();) {
        std::size_t len = 1;
        auto b = static_cast<unsigned char>(text[i]);
        if (b >= 0xF0)
          len = 4;
        else if (b >= 0xE0)
          len = 3;
        else if (b >= 0xC0)
          len = 2;
        std::string_view ch = std::string_view(text).substr(i, len);
        if (auto r = td::unicode_to_bytes(ch)) {
          out += *r;
        } else {
          static const char* hex = "0123456789abcdef";
          out += "[UNK_BYTE_0x";
          for (unsigned char c : ch) {
            out += hex[c >> 4];
            out += hex[c & 15];
          }
          out += text + "]";
        }
        i += len;
      }
      return out;
    }
    if (a & td::kAttrByte) {
      // <0xXX>
      if (text.size() == 6 && text.compare(0, 3, "<0x") == 0) {
        return std::string(1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
      }
      return {};
    }
    return {};  // unused / undefined tokens print nothing
  }

  TokenizerVocab v_;
  std::vector<uint32_t> attrs_;
  std::vector<std::string> pieces_;
  std::vector<int32_t> specials_;  // control, user-defined and unknown tokens, longest first
  std::unordered_set<int32_t> eog_;
  std::unique_ptr<td::TextEncoder> encoder_;
  td::ChatFormat chat_;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false;
  bool add_space_prefix_ = false;
};

}  // namespace

std::shared_ptr<const Tokenizer> Tokenizer::from_vocab(TokenizerVocab vocab) {
  return std::make_shared<VocabTokenizer>(std::move(vocab));
}

std::string StreamDecoder::push(int32_t token) {
  pending_ += tok_->piece(token);
  std::size_t n = complete_utf8_prefix(pending_);
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

namespace tokenizer_detail {

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    auto bad = find_invalid_utf8(text);
    if (!bad) {
      out += text;
      break;
    }
    out += text.substr(0, *bad);
    // One replacement per byte of the broken sequence, as llama.cpp does: skip the lead byte
    // and any continuation bytes that cannot start a sequence.
    std::size_t k = *bad + 1;
    out += "\xEF\xBF\xBD";
    while (k < text.size() && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) {
      out += "\xEF\xBF\xBD";
      ++k;
    }
    text.remove_prefix(k);
  }
  return out;
}

}  // namespace tokenizer_detail
}  // namespace flowrank::engine
