// The bundled SmolLM2 GGUF against goldens made by llama.cpp
// (tools/golden/make_tokenizer_golden.py): ids for a corpus and for every fixture file, decode
// round trips, special tokens, chat template.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "flowrank/common/utf8.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/tokenizer.hpp"

namespace fe = flowrank::engine;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kRoot = FLOWRANK_SOURCE_DIR;
const fs::path kModel = kRoot / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";

std::string ids_sha256(const std::vector<int32_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return flowrank::sha256_hex(s);
}

std::string fixture_text(const json& golden) {
  // The fixture text of docs/FORMATS.md: sorted paths, a header per file, joined by "\n".
  const fs::path dir = kRoot / golden["fixture_dir"].get<std::string>();
  std::string text;
  bool first = true;
  for (const auto& f : golden["fixture_files"]) {
    const auto rel = f["path"].get<std::string>();
    if (!first) text += '\n';
    first = false;
    text += "===== FILE: " + rel + " =====\n" + flowrank::read_file(dir / rel) + "\n";
  }
  return text;
}

class SmolLM2Golden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kModel)) return;
    file_ = fe::GgufFile::open(kModel);
    tok_ = fe::Tokenizer::from_gguf(*file_);
    golden_ = new json(json::parse(
        flowrank::read_file(kRoot / "tests" / "data" / "tokenizer" / "smollm2_golden.json")));
  }
  static void TearDownTestSuite() {
    tok_.reset();
    file_.reset();
    delete golden_;
    golden_ = nullptr;
  }
  void SetUp() override {
    if (!tok_) GTEST_SKIP() << "bundled model missing: " << kModel;
  }
  static const json& golden() { return *golden_; }
  static const fe::Tokenizer& tok() { return *tok_; }

  static inline std::shared_ptr<const fe::GgufFile> file_;
  static inline std::shared_ptr<const fe::Tokenizer> tok_;
  static inline json* golden_ = nullptr;
};

TEST_F(SmolLM2Golden, VocabularyFacts) {
  EXPECT_EQ(tok().vocab_size(), golden()["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok().bos(), golden()["bos"].get<int32_t>());
  EXPECT_EQ(tok().eos(), golden()["eos"].get<int32_t>());
  // <|im_end|> (2, eos) and <|endoftext|> (0) end generation; <|im_start|> (1) and text do not.
  EXPECT_TRUE(tok().is_end_of_generation(2));
  EXPECT_TRUE(tok().is_end_of_generation(0));
  EXPECT_FALSE(tok().is_end_of_generation(1));
  EXPECT_FALSE(tok().is_end_of_generation(tok().encode("Hello", false, false)[0]));
}

TEST_F(SmolLM2Golden, CorpusIdsMatchLlamaCpp) {
  for (const auto& item : golden()["corpus"]) {
    const auto name = item["name"].get<std::string>();
    const auto text = item["text"].get<std::string>();
    EXPECT_EQ(tok().encode(text, false, false), item["ids"].get<std::vector<int32_t>>()) << name;
    EXPECT_EQ(tok().encode(text, false, true), item["ids_special"].get<std::vector<int32_t>>())
        << name;
    // SmolLM2 sets add_bos_token = false, so asking for BOS adds none.
    EXPECT_EQ(tok().encode(text, true, false), item["ids_with_bos"].get<std::vector<int32_t>>())
        << name;
  }
}

TEST_F(SmolLM2Golden, CorpusDecodeRoundTrips) {
  for (const auto& item : golden()["corpus"]) {
    const auto name = item["name"].get<std::string>();
    const auto text = item["text"].get<std::string>();
    EXPECT_EQ(tok().decode(tok().encode(text, false, false)), text) << name;
    const auto special = tok().encode(text, false, true);
    EXPECT_EQ(tok().decode(special, true), text) << name;
    EXPECT_EQ(tok().decode(special, false), item["decode_special_hidden"].get<std::string>())
        << name;
  }
}

TEST_F(SmolLM2Golden, SpecialTokensParsedOnlyWhenAsked) {
  const std::string text = "<|im_start|>user\nHi<|im_end|>";
  const auto parsed = tok().encode(text, false, true);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 1);  // <|im_start|>
  EXPECT_EQ(parsed.back(), 2);   // <|im_end|>
  const auto plain = tok().encode(text, false, false);
  for (int32_t id : plain) {
    EXPECT_NE(id, 1);
    EXPECT_NE(id, 2);
  }
  EXPECT_EQ(tok().decode(plain), text);
  // Control tokens are hidden unless asked for.
  EXPECT_EQ(tok().decode(parsed), "user\nHi");
  EXPECT_EQ(tok().piece(1), "");
  EXPECT_EQ(tok().piece(1, true), "<|im_start|>");
  EXPECT_EQ(tok().piece(-1), "");
}

TEST_F(SmolLM2Golden, IdsPastTheVocabularyWrapIntoIt) {
  // A dummy model's output layer may be larger than its tokenizer's vocabulary: its ids still
  // make text, so chained prompts keep realistic lengths.
  const int32_t hello = tok().encode("Hello", false, false)[0];
  const int32_t past = hello + 2 * tok().vocab_size();
  EXPECT_EQ(tok().piece(past), "Hello");
  EXPECT_EQ(tok().decode(std::vector<int32_t>{past, past}), "HelloHello");
  fe::StreamDecoder stream(tok());
  EXPECT_EQ(stream.push(past), "Hello");
}

TEST_F(SmolLM2Golden, TokenizerOnlyGgufEncodesLikeTheModel) {
  // fixtures/tokenizers/smollm2.tokenizer.gguf, made by tools/make_test_models.py from the bundled
  // model: metadata only, no tensors.
  const auto file =
      fe::GgufFile::open(kRoot / "fixtures" / "tokenizers" / "smollm2.tokenizer.gguf");
  EXPECT_TRUE(file->tensors().empty());
  const auto only = fe::Tokenizer::from_gguf(*file);
  EXPECT_EQ(only->vocab_size(), tok().vocab_size());
  EXPECT_EQ(only->apply_chat_template("Hi"), tok().apply_chat_template("Hi"));
  for (const auto& item : golden()["corpus"]) {
    const auto text = item["text"].get<std::string>();
    EXPECT_EQ(only->encode(text, false, true), item["ids_special"].get<std::vector<int32_t>>())
        << item["name"].get<std::string>();
  }
}

TEST_F(SmolLM2Golden, FixtureFilesMatchLlamaCpp) {
  const fs::path dir = kRoot / golden()["fixture_dir"].get<std::string>();
  ASSERT_FALSE(golden()["fixture_files"].empty());
  std::vector<std::string> on_disk, in_golden;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) on_disk.push_back(fs::relative(e.path(), dir).generic_string());
  }
  for (const auto& f : golden()["fixture_files"]) in_golden.push_back(f["path"]);
  std::sort(on_disk.begin(), on_disk.end());
  ASSERT_EQ(on_disk, in_golden) << "the fixture files changed since the golden was made; re-run "
                                   "tools/golden/make_tokenizer_golden.py";
  for (const auto& f : golden()["fixture_files"]) {
    const auto rel = f["path"].get<std::string>();
    const std::string content = flowrank::read_file(dir / rel);
    ASSERT_EQ(flowrank::sha256_hex(content), f["content_sha256"].get<std::string>())
        << rel
        << " changed since the golden was made; re-run tools/golden/make_tokenizer_golden.py";
    const auto ids = tok().encode(content, false, false);
    EXPECT_EQ(ids.size(), f["count"].get<std::size_t>()) << rel;
    EXPECT_EQ(ids, f["ids"].get<std::vector<int32_t>>()) << rel;
    EXPECT_EQ(ids_sha256(ids), f["ids_sha256"].get<std::string>()) << rel;
    EXPECT_EQ(tok().decode(ids), content) << rel;
  }
}

TEST_F(SmolLM2Golden, WholeFixtureTextMatchesLlamaCpp) {
  const std::string text = fixture_text(golden());
  const auto& g = golden()["fixture_text"];
  ASSERT_EQ(flowrank::sha256_hex(text), g["text_sha256"].get<std::string>());
  const auto ids = tok().encode(text, false, false);
  EXPECT_EQ(ids.size(), g["count"].get<std::size_t>());
  EXPECT_EQ(ids_sha256(ids), g["ids_sha256"].get<std::string>());
  EXPECT_EQ(tok().decode(ids), text);
}

TEST_F(SmolLM2Golden, OtherPreTokenizerTypesMatchLlamaCpp) {
  // The same vocabulary and merges under other tokenizer.ggml.pre values; llama.cpp's goldens
  // come from copies of the GGUF with only that key changed.
  const std::string text = fixture_text(golden());
  ASSERT_EQ(flowrank::sha256_hex(text), golden()["fixture_text"]["text_sha256"].get<std::string>());
  ASSERT_FALSE(golden()["pre_variants"].empty());
  for (const auto& [pre, g] : golden()["pre_variants"].items()) {
    fe::TokenizerVocab v = fe::read_tokenizer_vocab(*file_);
    v.pre = pre;
    auto t = fe::Tokenizer::from_vocab(std::move(v));
    for (const auto& item : golden()["corpus"]) {
      const auto name = item["name"].get<std::string>();
      EXPECT_EQ(t->encode(item["text"].get<std::string>(), false, false),
                g["corpus"][name].get<std::vector<int32_t>>())
          << pre << " " << name;
    }
    const auto ids = t->encode(text, false, false);
    EXPECT_EQ(ids.size(), g["fixture_text"]["count"].get<std::size_t>()) << pre;
    EXPECT_EQ(ids_sha256(ids), g["fixture_text"]["ids_sha256"].get<std::string>()) << pre;
  }
}

TEST_F(SmolLM2Golden, ConcurrentEncodesAgree) {
  const auto& item = golden()["corpus"][0];
  const auto text = item["text"].get<std::string>();
  const auto expected = item["ids"].get<std::vector<int32_t>>();
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 50; ++k) results[t] = tok().encode(text, false, false);
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
}

TEST_F(SmolLM2Golden, ChatTemplateMatchesJinja) {
  bool checked = false;
  for (const auto& c : golden()["chat"]) {
    if (c["template_name"] != "smollm2") continue;
    EXPECT_EQ(tok().apply_chat_template(c["message"].get<std::string>()),
              c["rendered"].get<std::string>());
    checked = true;
  }
  EXPECT_TRUE(checked);
  const auto first = golden()["chat"][0];
  ASSERT_EQ(first["template_name"], "smollm2");
  const std::string rendered = tok().apply_chat_template(first["message"].get<std::string>());
  EXPECT_EQ(tok().encode(rendered, false, true),
            golden()["chat_smollm2_ids"].get<std::vector<int32_t>>());
}

TEST_F(SmolLM2Golden, StreamDecoderHoldsBackSplitCharacters) {
  const std::string text = "日本語 👨‍👩‍👧‍👦 café 🎉🎉 ok";
  const auto ids = tok().encode(text, false, false);
  fe::StreamDecoder stream(tok());
  std::string joined;
  bool held_back = false;
  for (int32_t id : ids) {
    const std::string piece = tok().piece(id);
    const std::string out = stream.push(id);
    EXPECT_FALSE(flowrank::find_invalid_utf8(out).has_value()) << "token " << id;
    if (out.size() != piece.size()) held_back = true;
    joined += out;
  }
  joined += stream.flush();
  EXPECT_EQ(joined, text);
  // The text must actually split a character across tokens, or the test proves nothing.
  EXPECT_TRUE(held_back);
}

}  // namespace
