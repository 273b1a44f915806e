#include "flowrank/flow/explain.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <span>
#include <unordered_set>

namespace flowrank::flow {
namespace {

template <typename T>
std::size_t common_prefix(std::span<const T> a, std::span<const T> b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

template <typename T>
uint64_t chunk_hash(std::span<const T> chunk) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over the elements' bytes
  const auto* bytes = reinterpret_cast<const unsigned char*>(chunk.data());
  for (std::size_t i = 0; i < chunk.size_bytes(); ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
  return h;
}

// Content-defined chunk ends, so that the same text at different offsets cuts the same way:
// lines for bytes; for tokens, after tokens whose mixed id is 0 mod 16 (plus a hard cap).
bool ends_chunk(char c, std::size_t) {
  return c == '\n';
}
bool ends_chunk(int32_t t, std::size_t len) {
  const uint64_t x = static_cast<uint64_t>(static_cast<uint32_t>(t)) * 0x9E3779B97F4A7C15ULL;
  return (x >> 60) == 0 || len >= 128;
}

template <typename T>
PromptSharing sharing_of(const std::vector<std::span<const T>>& prompts, uint64_t min_run) {
  PromptSharing out;
  out.prompts = prompts.size();
  auto less = [&](std::size_t a, std::size_t b) {
    return std::lexicographical_compare(prompts[a].begin(), prompts[a].end(), prompts[b].begin(),
                                        prompts[b].end());
  };
  // The earlier prompt sharing the longest prefix with a new one is next to it in sorted order.
  std::multiset<std::size_t, decltype(less)> earlier(less);
  std::unordered_set<uint64_t> seen_chunks;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const std::span<const T> p = prompts[i];
    out.total += p.size();
    std::size_t prefix = 0;
    auto pos = earlier.lower_bound(i);
    if (pos != earlier.end()) prefix = std::max(prefix, common_prefix(p, prompts[*pos]));
    if (pos != earlier.begin())
      prefix = std::max(prefix, common_prefix(p, prompts[*std::prev(pos)]));
    out.prefix_reusable += prefix;
    out.common_prefix =
        i == 0 ? p.size() : std::min<uint64_t>(out.common_prefix, common_prefix(p, prompts[0]));
    earlier.insert(i);

    std::vector<uint64_t> hashes;
    std::size_t run_start = 0, run_len = 0, start = 0;
    auto close_run = [&] {
      if (run_len >= min_run) {
        const std::size_t from = std::max(run_start, prefix), to = run_start + run_len;
        if (to > from) out.shared_not_prefix += to - from;
      }
      run_len = 0;
    };
    for (std::size_t k = 0; k < p.size(); ++k) {
      if (!ends_chunk(p[k], k + 1 - start) && k + 1 < p.size()) continue;
      const std::span<const T> chunk = p.subspan(start, k + 1 - start);
      const uint64_t h = chunk_hash(chunk);
      hashes.push_back(h);
      if (seen_chunks.count(h)) {
        if (run_len == 0) run_start = start;
        run_len += chunk.size();
      } else {
        close_run();
      }
      start = k + 1;
    }
    close_run();
    seen_chunks.insert(hashes.begin(), hashes.end());
  }
  return out;
}

std::string with_commas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

std::string percent(uint64_t part, uint64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%",
                whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

}  // namespace

PromptSharing explain_sharing(const std::vector<std::string>& prompts, const TokenizeFn& tokenize) {
  if (tokenize) {
    std::vector<std::vector<int32_t>> tokens;
    tokens.reserve(prompts.size());
    for (const auto& p : prompts) tokens.push_back(tokenize(p));
    return explain_token_sharing(tokens);
  }
  std::vector<std::span<const char>> spans(prompts.begin(), prompts.end());
  return sharing_of<char>(spans, 1024);
}

PromptSharing explain_token_sharing(const std::vector<std::vector<int32_t>>& prompts) {
  std::vector<std::span<const int32_t>> spans(prompts.begin(), prompts.end());
  PromptSharing s = sharing_of<int32_t>(spans, 256);
  s.tokens = true;
  return s;
}

std::vector<std::string> placeholder_prompts(const ExpandedJob& job) {
  // Step-major: every workflow's first step is ready at once, later steps as outputs arrive;
  // this is the order in which the executor submits them.
  std::size_t max_steps = 0;
  for (const Workflow& wf : job.workflows) max_steps = std::max(max_steps, wf.steps.size());
  std::vector<std::string> prompts;
  for (std::size_t s = 0; s < max_steps; ++s)
    for (const Workflow& wf : job.workflows) {
      if (s >= wf.steps.size()) continue;
      const std::vector<std::optional<std::string>> outputs(wf.steps.size(), std::string());
      prompts.push_back(step_prompt(job, wf, s, outputs));
    }
  return prompts;
}

std::string describe_sharing(const ExpandedJob& job, const PromptSharing& s) {
  const std::string unit = s.tokens ? "tokens" : "bytes";
  std::string out;
  out += "prompts: " + std::to_string(s.prompts) + " (" + std::to_string(job.workflows.size()) +
         " workflows), layout " + (job.layout == PromptLayout::kSeed ? "seed" : "context-first") +
         ", units: " + unit + "\n";
  out += "prompt " + unit + " total:           " + with_commas(s.total) + "\n";
  out += "reusable by a prefix cache:   " + with_commas(s.prefix_reusable) + " (" +
         percent(s.prefix_reusable, s.total) + ")\n";
  out += "shared, but not as a prefix:  " + with_commas(s.shared_not_prefix) + " (" +
         percent(s.shared_not_prefix, s.total) + ")\n";
  out += "common to every prompt:       " + with_commas(s.common_prefix) + " (a prefix)\n";
  out +=
      "note: step outputs are unknown before the run; each used step's output is taken as \"\" "
      "and prompts are counted in submission order (step by step across workflows).\n";
  if (!s.tokens) out += "note: no tokenizer given; units are bytes.\n";
  if (job.chat) out += "note: chat-template wrapping is not included.\n";
  return out;
}

}  // namespace flowrank::flow
