// Tokenizers built from vocabularies made here: SentencePiece merges worked out by hand, chat
// templates of other families against jinja2 renderings, and bad input naming the file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/tokenizer.hpp"

namespace fe = flowrank::engine;
using nlohmann::json;

namespace {

const std::filesystem::path kRoot = FLOWRANK_SOURCE_DIR;

// ids 0-2 <unk> <s> </s>, 3..258 <0x00>..<0xFF>, then the pieces below.
constexpr int32_t kByte0 = 3;
constexpr int32_t kSpace = 259, kA = 260, kB = 261, kC = 262, kAB = 263, kSpA = 264, kSpAB = 265,
                  kBC = 266, kAA = 267;

fe::TokenizerVocab spm_vocab() {
  fe::TokenizerVocab v;
  v.source = "test-spm.gguf";
  v.model = "llama";
  auto add = [&](std::string text, float score, int32_t type) {
    v.tokens.push_back(std::move(text));
    v.scores.push_back(score);
    v.token_types.push_back(type);
  };
  add("<unk>", 0, 2);
  add("<s>", 0, 3);
  add("</s>", 0, 3);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0, 6);
  }
  add("\xE2\x96\x81", -5, 1);  // ▁
  add("a", -3, 1);
  add("b", -3, 1);
  add("c", -3, 1);
  add("ab", -1, 1);
  add("\xE2\x96\x81"
      "a",
      -2, 1);  // ▁a
  add("\xE2\x96\x81"
      "ab",
      -0.5f, 1);  // ▁ab
  add("bc", -0.8f, 1);
  add("aa", -1, 1);
  return v;
}

using Ids = std::vector<int32_t>;

TEST(SpmTokenizer, MergesByScoreThenPosition) {
  auto tok = fe::Tokenizer::from_vocab(spm_vocab());
  // "▁ab": ab (-1) beats ▁a (-2); then ▁ + ab forms ▁ab (-0.5).
  EXPECT_EQ(tok->encode("ab", false, false), (Ids{kSpAB}));
  // "▁abc": bc (-0.8) first, which takes b from ab; ▁a (-2) next; ▁abc is no token.
  EXPECT_EQ(tok->encode("abc", false, false), (Ids{kSpA, kBC}));
  // "▁aaa": the two aa pairs tie at -1 and the left one wins; ▁aa and aaa are no tokens.
  EXPECT_EQ(tok->encode("aaa", false, false), (Ids{kSpace, kAA, kA}));
  // "▁a▁b": spaces become ▁; ▁b is no token.
  EXPECT_EQ(tok->encode("a b", false, false), (Ids{kSpA, kSpace, kB}));
}

TEST(SpmTokenizer, ByteFallbackForUnknownCharacters) {
  auto tok = fe::Tokenizer::from_vocab(spm_vocab());
  // € (E2 82 AC) is not in the vocabulary: one <0xXX> token per byte.
  EXPECT_EQ(tok->encode("a\xE2\x82\xAC", false, false),
            (Ids{kSpA, kByte0 + 0xE2, kByte0 + 0x82, kByte0 + 0xAC}));
  EXPECT_EQ(tok->decode(tok->encode("a\xE2\x82\xAC", false, false)), "a\xE2\x82\xAC");
  EXPECT_EQ(tok->piece(kByte0 + 0x41), "A");
}

TEST(SpmTokenizer, BosSpacePrefixAndSpecialTokens) {
  auto tok = fe::Tokenizer::from_vocab(spm_vocab());
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_EQ(tok->eos(), 2);
  EXPECT_TRUE(tok->is_end_of_generation(2));
  // SPM vocabularies add BOS by default.
  EXPECT_EQ(tok->encode("ab", true, false), (Ids{1, kSpAB}));
  // Text after a special token gets the space prefix again.
  EXPECT_EQ(tok->encode("ab</s>ab", false, true), (Ids{kSpAB, 2, kSpAB}));
  // Without parse_special, "</s>" is text: '<' '/' 's' '>' are bytes here.
  EXPECT_EQ(tok->encode("</s>", false, false),
            (Ids{kSpace, kByte0 + '<', kByte0 + '/', kByte0 + 's', kByte0 + '>'}));
  // decode removes the prefix space the encoder added, and hides control tokens.
  EXPECT_EQ(tok->decode(Ids{1, kSpAB}), "ab");
  EXPECT_EQ(tok->decode(Ids{kSpA, kBC}), "abc");
  EXPECT_EQ(tok->decode(Ids{kSpAB, 2, kSpAB}), "ab ab");
  EXPECT_EQ(tok->decode(Ids{kSpAB, 2, kSpAB}, true), "ab</s> ab");
  for (const char* s : {"ab", "a b  c", " lead", "x\xE2\x82\xAC y"}) {
    EXPECT_EQ(tok->decode(tok->encode(s, true, false)), s);
    EXPECT_EQ(tok->decode(tok->encode(s, false, false)), s);
  }
}

TEST(SpmTokenizer, LargeVocabularyMatchesLlamaCpp) {
  // 8k SentencePiece pieces made from SmolLM2's tokens (scores = -id), tokenized by llama.cpp.
  const json golden = json::parse(
      flowrank::read_file(kRoot / "tests" / "data" / "tokenizer" / "smollm2_golden.json"));
  const json& spm = golden["spm"];
  fe::TokenizerVocab v;
  v.source = "spm-golden.gguf";
  v.model = "llama";
  v.tokens = spm["tokens"].get<std::vector<std::string>>();
  v.token_types = spm["token_types"].get<std::vector<int32_t>>();
  v.scores = spm["scores"].get<std::vector<float>>();
  auto tok = fe::Tokenizer::from_vocab(std::move(v));
  std::map<std::string, std::string> texts;
  for (const auto& item : golden["corpus"]) texts[item["name"]] = item["text"];
  ASSERT_GT(spm["corpus"].size(), 20u);
  for (const auto& [name, g] : spm["corpus"].items()) {
    const std::string text = g.contains("text") ? g["text"].get<std::string>() : texts.at(name);
    const auto with_bos = tok->encode(text, true, false);
    EXPECT_EQ(with_bos, g["ids_bos"].get<Ids>()) << name;
    EXPECT_EQ(tok->encode(text, false, true), g["ids_special"].get<Ids>()) << name;
    EXPECT_EQ(tok->decode(with_bos), text) << name;
  }
}

TEST(SpmTokenizer, NoSpacePrefixWhenTheModelSaysSo) {
  auto v = spm_vocab();
  v.add_space_prefix = false;
  v.add_bos = false;
  auto tok = fe::Tokenizer::from_vocab(v);
  EXPECT_EQ(tok->encode("ab", true, false), (Ids{kAB}));
  EXPECT_EQ(tok->decode(Ids{kSpAB}), " ab");
}

fe::TokenizerVocab tiny_bpe_vocab(std::string chat_template) {
  fe::TokenizerVocab v;
  v.source = "test-bpe.gguf";
  v.model = "gpt2";
  v.pre = "gpt-2";
  v.tokens = {"a", "b", "ab", "<|im_start|>", "<|im_end|>", "<|eot_id|>"};
  v.token_types = {1, 1, 1, 3, 3, 3};
  v.merges = {"a b"};
  v.chat_template = std::move(chat_template);
  return v;
}

TEST(BpeTokenizer, TinyVocabularyMergesAndDropsUnknownBytes) {
  auto tok = fe::Tokenizer::from_vocab(tiny_bpe_vocab(""));
  EXPECT_EQ(tok->encode("ab", false, false), (Ids{2}));
  EXPECT_EQ(tok->encode("aab", false, false), (Ids{0, 2}));
  // ' ' and 'c' have no token: llama.cpp drops such bytes.
  EXPECT_EQ(tok->encode("ab c", false, false), (Ids{2}));
  EXPECT_EQ(tok->encode("a<|im_end|>", false, true), (Ids{0, 4}));
  EXPECT_TRUE(tok->is_end_of_generation(4));
  EXPECT_TRUE(tok->is_end_of_generation(5));
  EXPECT_FALSE(tok->is_end_of_generation(3));
}

// "12345" under each pre-tokenizer, worked out by hand from llama.cpp's regexes and flags:
//   gpt-2/olmo: one pre-token, merged to 12345;  smollm: digits one by one, no merge possible;
//   llama-bpe: \p{N}{1,3} gives 123|45, both whole tokens (ignore_merges), and BOS by default;
//   default: the [0-9]{3} pass gives 123|45; 123 merges, 4 5 has no merge.
TEST(BpeTokenizer, PreTokenizerTypesSplitDigitsAsLlamaCpp) {
  auto vocab = [](std::string pre) {
    fe::TokenizerVocab v;
    v.source = "digits.gguf";
    v.model = "gpt2";
    v.pre = std::move(pre);
    v.tokens = {"1", "2", "3", "4", "5", "12", "123", "1234", "12345", "45", "<|begin_of_text|>"};
    v.token_types = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3};
    v.merges = {"1 2", "12 3", "123 4", "1234 5"};
    v.bos_id = 10;
    return fe::Tokenizer::from_vocab(v);
  };
  EXPECT_EQ(vocab("gpt-2")->encode("12345", true, false), (Ids{8}));
  EXPECT_EQ(vocab("olmo")->encode("12345", true, false), (Ids{8}));
  EXPECT_EQ(vocab("smollm")->encode("12345", true, false), (Ids{0, 1, 2, 3, 4}));
  EXPECT_EQ(vocab("llama-bpe")->encode("12345", true, false), (Ids{10, 6, 9}));
  EXPECT_EQ(vocab("llama-bpe")->encode("12345", false, false), (Ids{6, 9}));
  EXPECT_EQ(vocab("default")->encode("12345", true, false), (Ids{6, 3, 4}));
  EXPECT_EQ(vocab("")->encode("12345", true, false), (Ids{6, 3, 4}));
}

TEST(ChatTemplate, OtherFamiliesMatchJinja) {
  const json golden = json::parse(
      flowrank::read_file(kRoot / "tests" / "data" / "tokenizer" / "smollm2_golden.json"));
  int checked = 0;
  for (const auto& c : golden["chat"]) {
    if (c["template_name"] == "smollm2") continue;
    auto tok = fe::Tokenizer::from_vocab(tiny_bpe_vocab(c["template"].get<std::string>()));
    // jinja2 rendered these with bos_token = "": BOS comes from encode(add_bos).
    EXPECT_EQ(tok->apply_chat_template(c["message"].get<std::string>()),
              c["rendered"].get<std::string>())
        << c["template_name"];
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}

void expect_input_error(const std::function<void()>& f, const std::string& file,
                        const std::string& problem) {
  try {
    f();
    ADD_FAILURE() << "no InputError; expected one naming " << file << " and '" << problem << "'";
  } catch (const flowrank::InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(file + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ChatTemplate, UnsupportedTemplateNamesTheFile) {
  auto gemma = tiny_bpe_vocab("{{ '<start_of_turn>user\\n' + messages[0]['content'] }}");
  auto tok = fe::Tokenizer::from_vocab(gemma);
  expect_input_error([&] { tok->apply_chat_template("hi"); }, "test-bpe.gguf",
                     "tokenizer.chat_template is not supported");
  auto none = fe::Tokenizer::from_vocab(tiny_bpe_vocab(""));
  expect_input_error([&] { none->apply_chat_template("hi"); }, "test-bpe.gguf",
                     "no tokenizer.chat_template");
}

TEST(TokenizerErrors, UnsupportedModelAndPreTypeNameTheFile) {
  auto v = tiny_bpe_vocab("");
  v.model = "bert";
  expect_input_error([&] { fe::Tokenizer::from_vocab(v); }, "test-bpe.gguf",
                     "tokenizer.ggml.model 'bert' is not supported");
  v = tiny_bpe_vocab("");
  v.pre = "tekken";
  expect_input_error([&] { fe::Tokenizer::from_vocab(v); }, "test-bpe.gguf",
                     "tokenizer.ggml.pre 'tekken' is not supported");
  v = tiny_bpe_vocab("");
  v.token_types.pop_back();
  expect_input_error([&] { fe::Tokenizer::from_vocab(v); }, "test-bpe.gguf",
                     "tokenizer.ggml.token_type has 5 entries, expected 6");
  v = tiny_bpe_vocab("");
  v.merges = {"ab"};
  expect_input_error([&] { fe::Tokenizer::from_vocab(v); }, "test-bpe.gguf",
                     "tokenizer.ggml.merges[0] 'ab' has no space");
}

// A GGUF v3 image with metadata only, to reach from_gguf through the real reader.
class GgufImage {
 public:
  void str(const std::string& key, const std::string& value) {
    this->key(key, 8);
    string(value);
    ++count_;
  }
  void strings(const std::string& key, const std::vector<std::string>& values) {
    this->key(key, 9);
    u32(8);
    u64(values.size());
    for (const auto& s : values) string(s);
    ++count_;
  }
  std::string bytes() const {
    std::string out = "GGUF";
    auto put = [&](uint64_t v, int n) {
      for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
    };
    put(3, 4);       // version
    put(0, 8);       // tensors
    put(count_, 8);  // metadata entries
    return out + body_;
  }

 private:
  void u32(uint32_t v) { body_.append(reinterpret_cast<const char*>(&v), 4); }
  void u64(uint64_t v) { body_.append(reinterpret_cast<const char*>(&v), 8); }
  void string(const std::string& s) {
    u64(s.size());
    body_ += s;
  }
  void key(const std::string& k, uint32_t type) {
    string(k);
    u32(type);
  }
  std::string body_;
  uint64_t count_ = 0;
};

TEST(TokenizerErrors, FromGgufNamesTheFile) {
  GgufImage img;
  img.str("general.architecture", "llama");
  img.str("tokenizer.ggml.model", "t5");
  img.strings("tokenizer.ggml.tokens", {"a", "b"});
  auto file = fe::parse_gguf_buffer(img.bytes(), "odd-model.gguf");
  expect_input_error([&] { fe::Tokenizer::from_gguf(*file); }, "odd-model.gguf",
                     "tokenizer.ggml.model 't5' is not supported");

  GgufImage pre;
  pre.str("tokenizer.ggml.model", "gpt2");
  pre.str("tokenizer.ggml.pre", "no-such-pre");
  pre.strings("tokenizer.ggml.tokens", {"a", "b", "ab"});
  pre.strings("tokenizer.ggml.merges", {"a b"});
  auto file2 = fe::parse_gguf_buffer(pre.bytes(), "odd-pre.gguf");
  expect_input_error([&] { fe::Tokenizer::from_gguf(*file2); }, "odd-pre.gguf",
                     "tokenizer.ggml.pre 'no-such-pre' is not supported");

  GgufImage missing;
  missing.str("tokenizer.ggml.model", "gpt2");
  auto file3 = fe::parse_gguf_buffer(missing.bytes(), "no-tokens.gguf");
  expect_input_error([&] { fe::Tokenizer::from_gguf(*file3); }, "no-tokens.gguf",
                     "tokenizer.ggml.tokens");
}

}  // namespace
