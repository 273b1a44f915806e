// SentencePiece-style tokenization (tokenizer.ggml.model = llama), as llama.cpp's
// llm_tokenizer_spm_session: spaces become U+2581, a space is put in front of text that starts
// the input or follows a special token (add_space_prefix), then adjacent symbols merge greedily by
// the score of the token they form; symbols that are not tokens fall back to <0xXX> byte tokens.
#include <algorithm>
#include <map>
#include <queue>

#include "tokenizer_impl.hpp"

namespace flowrank::engine::tokenizer_detail {
namespace {

class SpmEncoder final : public TextEncoder {
 public:
  SpmEncoder(const TokenizerVocab& vocab, int32_t unk_id, bool add_space_prefix)
      : unk_id_(unk_id), add_space_prefix_(add_space_prefix), scores_(vocab.scores) {
    scores_.resize(vocab.tokens.size(), 0.0f);
    for (std::size_t id = 0; id < vocab.tokens.size(); ++id) {
      text_to_id_.try_emplace(vocab.tokens[id], static_cast<int32_t>(id));
    }
  }

  void encode(std::string_view text, bool prev_special, std::vector<int32_t>& out) const override {
    std::string escaped;
    escaped.reserve(text.size() + 4);
    if (add_space_prefix_ && prev_special) escaped += "\xE2\x96\x81";
    for (char c : text) {
      if (c == ' ') {
        escaped += "\xE2\x96\x81";
      } else {
        escaped += c;
      }
    }
    Session s{*this, escaped, {}, {}, {}};
    s.run(out);
  }

 private:
  struct Symbol {
    int32_t prev, next;
    std::size_t start, n;
  };
  struct Bigram {
    int32_t left, right;
    float score;
    std::size_t size;
    bool operator<(const Bigram& o) const {  // highest score, then leftmost, on top
      return score < o.score || (score == o.score && left > o.left);
    }
  };

  struct Session {
    const SpmEncoder& enc;
    const std::string& text;
    std::vector<Symbol> symbols;
    std::priority_queue<Bigram> queue;
    std::map<std::string, std::pair<int32_t, int32_t>, std::less<>> rev_merge;

    void run(std::vector<int32_t>& out) {
      std::size_t offs = 0;
      int32_t index = 0;
      while (offs < text.size()) {
        auto b = static_cast<unsigned char>(text[offs]);
        std::size_t len = b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;  // llama.cpp's rule
        len = std::min(len, text.size() - offs);
        offs += len;
        symbols.push_back(Symbol{index - 1, offs == text.size() ? -1 : index + 1, offs - len, len});
        ++index;
      }
      for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);
      while (!queue.empty()) {
        Bigram b = queue.top();
        queue.pop();
        Symbol& l = symbols[b.left];
        Symbol& r = symbols[b.right];
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
      }
      if (symbols.empty()) return;
      for (int32_t i = 0; i != -1; i = symbols[i].next) resegment(symbols[i], out);
    }

    void try_add(int32_t left, int32_t right) {
      if (left == -1 || right == -1) return;
      std::string_view piece(text.data() + symbols[left].start, symbols[left].n + symbols[right].n);
      auto it = enc.text_to_id_.find(piece);
      if (it == enc.text_to_id_.end()) return;
      queue.push(Bigram{left, right, enc.scores_[it->second], piece.size()});
      rev_merge.insert_or_assign(std::string(piece), std::make_pair(left, right));
    }

    void resegment(const Symbol& s, std::vector<int32_t>& out) {
      std::string_view piece(text.data() + s.start, s.n);
      auto it = enc.text_to_id_.find(piece);
      if (it != enc.text_to_id_.end()) {
        out.push_back(it->second);
        return;
      }
      auto rm = rev_merge.find(piece);
      if (rm == rev_merge.end()) {
        for (char c : piece) {
          int32_t id = enc.byte_token(static_cast<unsigned char>(c));
          if (id >= 0) out.push_back(id);
        }
        return;
      }
      resegment(symbols[rm->second.first], out);
      resegment(symbols[rm->second.second], out);
    }
  };

  int32_t byte_token(unsigned char c) const {
    static const char* hex = "0123456789ABCDEF";
    const char buf[6] = {'<', '0', 'x', hex[c >> 4], hex[c & 15], '>'};
    auto it = text_to_id_.find(std::string_view(buf, 6));
    if (it != text_to_id_.end()) return it->second;
    it = text_to_id_.find(std::string_view(reinterpret_cast<const char*>(&c), 1));
    if (it != text_to_id_.end()) return it->second;
    return unk_id_;  // llama.cpp would abort here; an unknown token is the gentler answer
  }

  int32_t unk_id_;
  bool add_space_prefix_;
  std::vector<float> scores_;
  StringIdMap text_to_id_;
};

}  // namespace

std::unique_ptr<TextEncoder> make_spm_encoder(const TokenizerVocab& vocab, int32_t unk_id,
                                              bool add_space_prefix) {
  return std::make_unique<SpmEncoder>(vocab, unk_id, add_space_prefix);
}

}  // namespace flowrank::engine::tokenizer_detail
