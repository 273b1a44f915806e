// Byte-level BPE (tokenizer.ggml.model = gpt2): pre-tokenize, then merge the bytes of each
// pre-token by merge rank with a priority queue over a linked list of symbols, as llama.cpp's
// llm_tokenizer_bpe_session does. Everything is worked out on raw bytes: the GPT-2 byte mapping is
// a bijection, so token texts and merge halves are decoded once at load time instead of encoding
// every pre-token.
#include <algorithm>

#include "flowrank/common/error.hpp"
#include "flowrank/common/utf8.hpp"
#include "tokenizer_impl.hpp"

namespace flowrank::engine::tokenizer_detail {
namespace {

std::string utf8_of(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

struct ByteMaps {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<uint32_t, uint8_t> from_cp;
  ByteMaps() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      to_unicode[b] = utf8_of(cp);
      from_cp[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMaps& byte_maps() {
  static const ByteMaps maps;
  return maps;
}

class BpeEncoder final : public TextEncoder {
 public:
  BpeEncoder(const TokenizerVocab& vocab, const PreTokenizerConfig& pre)
      : pre_(pre.patterns, vocab.source), ignore_merges_(pre.ignore_merges) {
    // Intern ids 0..255 are the single bytes.
    for (int b = 0; b < 256; ++b) intern(std::string(1, static_cast<char>(b)));
    for (std::size_t id = 0; id < vocab.tokens.size(); ++id) {
      auto raw = unicode_to_bytes(vocab.tokens[id]);
      if (!raw || raw->empty()) continue;  // cannot come out of the byte mapping
      int32_t iid = intern(*raw);
      if (intern_token_[iid] < 0) intern_token_[iid] = static_cast<int32_t>(id);
    }
    std::vector<std::pair<uint64_t, Merge>> entries;
    entries.reserve(vocab.merges.size());
    for (std::size_t rank = 0; rank < vocab.merges.size(); ++rank) {
      const std::string& m = vocab.merges[rank];
      // llama.cpp splits at the first space after the first character.
      std::size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) {
        throw InputError(vocab.source, "tokenizer.ggml.merges[" + std::to_string(rank) + "] '" + m +
                                           "' has no space between its two parts");
      }
      auto left = unicode_to_bytes(std::string_view(m).substr(0, sp));
      auto right = unicode_to_bytes(std::string_view(m).substr(sp + 1));
      if (!left || !right || left->empty() || right->empty()) continue;  // can never apply
      int32_t l = intern(*left), r = intern(*right);
      int32_t result = intern(*left + *right);
      // The first (lowest) rank of a repeated pair wins, as in llama.cpp's map.
      entries.emplace_back(pair_key(l, r), Merge{static_cast<int32_t>(rank), result});
    }
    merges_.build(entries);
    byte_token_.fill(-1);
    for (int b = 0; b < 256; ++b) byte_token_[b] = intern_token_[b];
  }

  void encode(std::string_view text, bool, std::vector<int32_t>& out) const override {
    std::string fixed;
    if (find_invalid_utf8(text)) {
      fixed = replace_invalid_utf8(text);
      text = fixed;
    }
    std::vector<Symbol> symbols;
    std::vector<Bigram> heap;
    for (auto [start, len] : pre_.split(text)) {
      encode_word(text.substr(start, len), symbols, heap, out);
    }
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // intern id of the merged text
  };
  // Open addressing over (left, right) intern-id pairs: the merge lookup is the hot loop, and a
  // flat table avoids a cache miss per node of std::unordered_map.
  class MergeTable {
   public:
    void build(const std::vector<std::pair<uint64_t, Merge>>& entries) {
      std::size_t cap = 16;
      while (cap < entries.size() * 2) cap <<= 1;
      slots_.assign(cap, Slot{kEmpty, {}});
      mask_ = cap - 1;
      for (const auto& [key, m] : entries) {
        std::size_t i = mix(key) & mask_;
        while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
        if (slots_[i].key == kEmpty) slots_[i] = Slot{key, m};  // first (lowest) rank wins
      }
    }
    const Merge* find(uint64_t key) const {
      for (std::size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
        if (slots_[i].key == key) return &slots_[i].merge;
        if (slots_[i].key == kEmpty) return nullptr;
      }
    }

   private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    struct Slot {
      uint64_t key;
      Merge merge;
    };
    static std::size_t mix(uint64_t x) {
      x ^= x >> 33;
      x *= 0xff51afd7ed558ccdULL;
      x ^= x >> 33;
      return static_cast<std::size_t>(x);
    }
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
  };
  struct Symbol {
    int32_t prev, next;
    uint32_t start, n;  // bytes of the word; n == 0 once merged into its left neighbour
    int32_t iid;        // intern id of the text, -1 if it is in no token and no merge
  };
  struct Bigram {
    int32_t rank, left, right, result;
    uint32_t size;
    bool operator<(const Bigram& o) const {  // max-heap order: lowest rank, then leftmost, on top
      return rank > o.rank || (rank == o.rank && left > o.left);
    }
  };

  static uint64_t pair_key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }

  int32_t intern(const std::string& s) {
    auto [it, inserted] = intern_.try_emplace(s, static_cast<int32_t>(intern_token_.size()));
    if (inserted) intern_token_.push_back(-1);
    return it->second;
  }

  void add_bigram(std::vector<Symbol>& sym, std::vector<Bigram>& heap, int32_t l, int32_t r) const {
    if (l < 0 || r < 0 || sym[l].iid < 0 || sym[r].iid < 0) return;
    const Merge* m = merges_.find(pair_key(sym[l].iid, sym[r].iid));
    if (m == nullptr) return;
    heap.push_back(Bigram{m->rank, l, r, m->result, sym[l].n + sym[r].n});
    std::push_heap(heap.begin(), heap.end());
  }

  void encode_word(std::string_view word, std::vector<Symbol>& sym, std::vector<Bigram>& heap,
                   std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
      auto it = intern_.find(word);
      if (it != intern_.end() && intern_token_[it->second] >= 0) {
        out.push_back(intern_token_[it->second]);
        return;
      }
    }
    const auto n = static_cast<int32_t>(word.size());
    sym.resize(static_cast<std::size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      sym[i] = Symbol{i - 1, i + 1 < n ? i + 1 : -1, static_cast<uint32_t>(i), 1,
                      static_cast<int32_t>(static_cast<unsigned char>(word[i]))};
    }
    heap.clear();
    for (int32_t i = 1; i < n; ++i) add_bigram(sym, heap, i - 1, i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      Bigram b = heap.back();
      heap.pop_back();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      // Stale entry: one side was merged away or grew since it was queued. Symbols are
      // contiguous, so equal total length means the pair still spells the queued text.
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
      l.n += r.n;
      l.iid = b.result;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      add_bigram(sym, heap, l.prev, b.left);
      add_bigram(sym, heap, b.left, l.next);
    }
    for (int32_t i = 0; i != -1; i = sym[i].next) {
      const Symbol& s = sym[i];
      int32_t token = s.iid >= 0 ? intern_token_[s.iid] : -1;
      if (token >= 0) {
        out.push_back(token);
        continue;
      }
      // Not a token: fall back to one token per byte, dropping bytes the vocabulary lacks.
      for (uint32_t k = 0; k < s.n; ++k) {
        int32_t bt = byte_token_[static_cast<unsigned char>(word[s.start + k])];
        if (bt >= 0) out.push_back(bt);
      }
    }
  }

  PreTokenizer pre_;
  bool ignore_merges_;
  StringIdMap intern_;                 // raw bytes -> intern id
  std::vector<int32_t> intern_token_;  // intern id -> token id, -1 if not a token
  MergeTable merges_;
  std::array<int32_t, 256> byte_token_{};
};

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() {
  return byte_maps().to_unicode;
}

std::optional<std::string> unicode_to_bytes(std::string_view text) {
  const auto& from = byte_maps().from_cp;
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    auto b0 = static_cast<unsigned char>(text[i]);
    uint32_t cp;
    std::size_t len;
    if (b0 < 0x80) {
      cp = b0;
      len = 1;
    } else if ((b0 & 0xE0) == 0xC0) {
      cp = b0 & 0x1F;
      len = 2;
    } else if ((b0 & 0xF0) == 0xE0) {
      cp = b0 & 0x0F;
      len = 3;
    } else {
      return std::nullopt;  // the mapping never goes above U+0143
    }
    if (i + len > text.size()) return std::nullopt;
    for (std::size_t k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b & 0x3F);
    }
    auto it = from.find(cp);
    if (it == from.end()) return std::nullopt;
    out += static_cast<char>(it->second);
    i += len;
  }
  return out;
}

std::unique_ptr<TextEncoder> make_bpe_encoder(const TokenizerVocab& vocab,
                                              const PreTokenizerConfig& pre) {
  return std::make_unique<BpeEncoder>(vocab, pre);
}

}  // namespace flowrank::engine::tokenizer_detail
