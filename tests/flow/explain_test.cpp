#include "flowrank/flow/explain.hpp"

#include <gtest/gtest.h>

namespace flowrank::flow {
namespace {

// 40 distinct lines of 50 bytes: 2000 bytes, every line unique.
std::string block() {
  std::string b;
  for (int i = 0; i < 40; ++i) {
    std::string line = "line " + std::to_string(1000 + i) + " ";
    line.resize(49, 'x');
    b += line + "\n";
  }
  return b;
}

TEST(ExplainSharing, PrefixWithAnyEarlierPrompt) {
  const PromptSharing s = explain_sharing({"abcdef", "abcxyz", "abq", "abcxyz"});
  EXPECT_FALSE(s.tokens);
  EXPECT_EQ(s.prompts, 4u);
  EXPECT_EQ(s.total, 6u + 6u + 3u + 6u);
  // 0 (first) + 3 ("abc" of abcdef) + 2 ("ab") + 6 (identical to prompt 1)
  EXPECT_EQ(s.prefix_reusable, 0u + 3u + 2u + 6u);
  EXPECT_EQ(s.shared_not_prefix, 0u);
  EXPECT_EQ(s.common_prefix, 2u);  // "ab"
}

TEST(ExplainSharing, SharedTextAtTheEndIsNotPrefixReusable) {
  const std::string b = block();
  ASSERT_EQ(b.size(), 2000u);
  // Seed-like: different heads, same long tail.
  const PromptSharing seed = explain_sharing({"X\n" + b, "Y\n" + b, "Zz\n" + b});
  EXPECT_EQ(seed.total, 2002u + 2002u + 2003u);
  EXPECT_EQ(seed.prefix_reusable, 0u);
  EXPECT_EQ(seed.shared_not_prefix, 2000u + 2000u);
  // Context-first-like: same long head, different tails.
  const PromptSharing first = explain_sharing({b + "X", b + "Y", b + "Zz"});
  EXPECT_EQ(first.prefix_reusable, 2000u + 2000u);
  EXPECT_EQ(first.shared_not_prefix, 0u);
  EXPECT_EQ(first.common_prefix, 2000u);
  EXPECT_EQ(seed.common_prefix, 0u);
}

TEST(ExplainSharing, ShortRepeatsDoNotCount) {
  const PromptSharing s = explain_sharing({"a\nb\nc\n", "z\na\nb\nc\n"});
  EXPECT_EQ(s.prefix_reusable, 0u);
  EXPECT_EQ(s.shared_not_prefix, 0u);  // shared, but far below the 1 KB run threshold
}

TEST(ExplainSharing, TokensAsUnits) {
  const PromptSharing s =
      explain_token_sharing(std::vector<std::vector<int32_t>>{{1, 2, 3, 4}, {1, 2, 5}});
  EXPECT_TRUE(s.tokens);
  EXPECT_EQ(s.total, 7u);
  EXPECT_EQ(s.prefix_reusable, 2u);

  // The tokenizer callback path: one token per space-separated word.
  const TokenizeFn words = [](std::string_view text) {
    std::vector<int32_t> out;
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t end = std::min(text.find(' ', start), text.size());
      out.push_back(static_cast<int32_t>(
          std::hash<std::string_view>{}(text.substr(start, end - start)) & 0xffff));
      start = end + 1;
    }
    return out;
  };
  const PromptSharing w = explain_sharing({"the cat sat", "the cat ran far"}, words);
  EXPECT_TRUE(w.tokens);
  EXPECT_EQ(w.total, 3u + 4u);
  EXPECT_EQ(w.prefix_reusable, 2u);
}

TEST(ExplainSharing, LongTokenRunsAfterTheHeadCount) {
  std::vector<int32_t> shared;
  for (int32_t i = 0; i < 1000; ++i) shared.push_back(5000 + i);
  std::vector<int32_t> a{1}, b{2};
  a.insert(a.end(), shared.begin(), shared.end());
  b.insert(b.end(), shared.begin(), shared.end());
  const PromptSharing s = explain_token_sharing(std::vector<std::vector<int32_t>>{a, b});
  EXPECT_EQ(s.prefix_reusable, 0u);
  // Chunks are content-defined, so all of the shared run but its first chunk (which in b
  // starts with token 2) is found again; that chunk is at most 128 tokens.
  EXPECT_GE(s.shared_not_prefix, 1000u - 128u);
  EXPECT_LE(s.shared_not_prefix, 1000u);
}

TEST(ExplainSharing, PlaceholderPromptsUseEmptyOutputsInStepOrder) {
  ExpandedJob job;
  job.layout = PromptLayout::kContextFirst;
  job.input = "IN";
  job.fixture_text = "FX\n";
  for (int i = 0; i < 2; ++i) {
    Workflow wf;
    wf.index = i;
    wf.task = "T" + std::to_string(i);
    wf.steps = {{"planner", "Plan.", {}, {}}, {"executor", "Do.", {0}, {}}};
    job.workflows.push_back(wf);
  }
  const auto prompts = placeholder_prompts(job);
  ASSERT_EQ(prompts.size(), 4u);
  EXPECT_EQ(prompts[0], "FX\n\n\nTask: T0\n\nIN\n\nInstruction: Plan.\n");
  EXPECT_EQ(prompts[1], "FX\n\n\nTask: T1\n\nIN\n\nInstruction: Plan.\n");
  EXPECT_EQ(prompts[2], "FX\n\n\nTask: T0\n\nIN\n\n### Planner Output\n\n\nInstruction: Do.\n");
  const std::string text = describe_sharing(job, explain_sharing(prompts));
  EXPECT_NE(text.find("\"\""), std::string::npos) << text;  // says outputs are placeholders
  EXPECT_NE(text.find("bytes"), std::string::npos) << text;
}

}  // namespace
}  // namespace flowrank::flow
