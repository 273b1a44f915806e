#include "flowrank/flow/flow_cache.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kEntryMagic = "flowrank-flow-cache 3";
// Integrity checksum of the payload, re-verified on every hit: CRC-32 catches accidental
// corruption (truncation is caught by the byte count) at a fraction of SHA-256's cost.
constexpr std::string_view kSumTag = " crc32=";
constexpr std::size_t kSumHex = 8;

const char* env_nonempty(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

json sampling_json(const StepSampling& s) {
  return json{{"max_tokens", s.max_tokens},
              {"temperature", s.temperature},
              {"top_p", s.top_p},
              {"top_k", s.top_k},
              {"seed", s.seed},
              {"stop", s.stop},
              {"ignore_eos", s.ignore_eos}};
}

StepSampling sampling_from(const json& j) {
  StepSampling s;
  s.max_tokens = j.at("max_tokens").get<int32_t>();
  s.temperature = j.at("temperature").get<float>();
  s.top_p = j.at("top_p").get<float>();
  s.top_k = j.at("top_k").get<int32_t>();
  s.seed = j.at("seed").get<uint64_t>();
  s.stop = j.at("stop").get<std::vector<std::string>>();
  s.ignore_eos = j.at("ignore_eos").get<bool>();
  return s;
}

}  // namespace

std::string detail::sampling_canonical(const StepSampling& s) {
  return sampling_json(s).dump();
}

fs::path default_cache_dir() {
  if (const char* d = env_nonempty("FLOWRANK_CACHE_DIR")) return fs::path(d);
  if (const char* x = env_nonempty("XDG_CACHE_HOME")) return fs::path(x) / "flowrank";
  const char* home = env_nonempty("HOME");
  if (!home) {
    const passwd* pw = ::getpwuid(::getuid());
    if (pw && pw->pw_dir && *pw->pw_dir) home = pw->pw_dir;
  }
  if (!home) throw RunError("cannot find a cache directory: set FLOWRANK_CACHE_DIR or HOME");
  return fs::path(home) / ".cache" / "flowrank";
}

fs::path FlowCache::entry_path(const std::string& key) const {
  return dir_ / (key + ".json");
}

fs::path FlowCache::manifest_path(const fs::path& fixture_root,
                                  const std::vector<std::string>& include) const {
  std::error_code ec;
  fs::path real = fs::weakly_canonical(fs::absolute(fixture_root, ec), ec);
  if (ec) real = fixture_root;
  Sha256 h;
  h.update_field(real.string());
  for (const auto& g : include) h.update_field(g);
  return dir_ / ("fixtures-" + h.finish_hex() + ".manifest");
}

FlowCache::Lookup FlowCache::load(const std::string& key) const {
  Lookup result;
  const fs::path path = entry_path(key);
  std::error_code ec;
  if (!fs::exists(path, ec)) return result;
  auto corrupt = [&](const std::string& why) {
    result.warning =
        detail::one_line(path.string() + ": corrupt cache entry (" + why + "), rebuilding");
    return result;
  };
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const std::exception& e) {
    return corrupt(std::string("unreadable: ") + e.what());
  }
  const std::size_t nl = bytes.find('\n');
  if (nl == std::string::npos) return corrupt("no header");
  const std::string_view header(bytes.data(), nl);
  // Header: "<magic> crc32=<8 hex> bytes=<n>"
  const std::string_view sha_tag = kSumTag, bytes_tag = " bytes=";
  if (header.substr(0, kEntryMagic.size()) != kEntryMagic) return corrupt("unknown header");
  const std::size_t sp = header.find(sha_tag), bp = header.find(bytes_tag);
  if (sp == header.npos || bp == header.npos || bp != sp + sha_tag.size() + kSumHex)
    return corrupt("malformed header");
  const std::string want_sha(header.substr(sp + sha_tag.size(), kSumHex));
  const std::string size_text(header.substr(bp + bytes_tag.size()));
  if (size_text.empty() || size_text.find_first_not_of("0123456789") != std::string::npos)
    return corrupt("malformed header");
  const std::string_view payload = std::string_view(bytes).substr(nl + 1);
  if (std::to_string(payload.size()) != size_text)
    return corrupt("truncated: " + std::to_string(payload.size()) + " of " + size_text + " bytes");
  if (crc32_hex(payload) != want_sha) return corrupt("checksum mismatch");
  try {
    result.job = parse_expanded_job(payload);
  } catch (const std::exception& e) {
    return corrupt(std::string("unparsable: ") + e.what());
  }
  return result;
}

void FlowCache::store(const std::string& key, const ExpandedJob& job) const {
  const std::string payload = serialize_expanded_job(job);
  std::string bytes(kEntryMagic);
  bytes +=
      std::string(kSumTag) + crc32_hex(payload) + " bytes=" + std::to_string(payload.size()) + "\n";
  bytes += payload;
  write_file_atomic(entry_path(key), bytes);
}

std::string serialize_expanded_job(const ExpandedJob& job) {
  // Steps are written once per distinct list (in practice one: every workflow runs the same
  // template); each workflow names its list by index. 25 copies of the instructions made the
  // payload, and a hit's parse, several times larger.
  std::vector<json> step_lists;
  json wfs = json::array();
  for (const Workflow& wf : job.workflows) {
    json steps = json::array();
    for (const StepSpec& s : wf.steps)
      steps.push_back({{"name", s.name},
                       {"instruction", s.instruction},
                       {"uses", s.uses},
                       {"sampling", sampling_json(s.sampling)}});
    auto it = std::find(step_lists.begin(), step_lists.end(), steps);
    const std::size_t list = static_cast<std::size_t>(it - step_lists.begin());
    if (it == step_lists.end()) step_lists.push_back(std::move(steps));
    wfs.push_back(
        {{"index", wf.index}, {"task_id", wf.task_id}, {"task", wf.task}, {"steps", list}});
  }
  // The fixture text (most of the bytes) follows the JSON raw, after one newline: escaping and
  // lexing 120 KB of code through JSON made a cache hit cost as much as a miss.
  const json j{{"job_name", job.job_name},
               {"layout", job.layout == PromptLayout::kSeed ? "seed" : "context-first"},
               {"chat", job.chat},
               {"input", job.input},
               {"fixture_text_bytes", job.fixture_text.size()},
               {"fixture_bytes", job.fixture_bytes},
               {"fixture_files", job.fixture_files},
               {"step_lists", step_lists},
               {"workflows", wfs}};
  std::string out = j.dump();  // compact: no raw newline inside
  out += '\n';
  out += job.fixture_text;
  return out;
}

ExpandedJob parse_expanded_job(std::string_view bytes) {
  try {
    const std::size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) throw std::runtime_error("no fixture text section");
    const json j = json::parse(bytes.substr(0, nl));
    ExpandedJob job;
    job.job_name = j.at("job_name").get<std::string>();
    const std::string layout = j.at("layout").get<std::string>();
    if (layout == "seed")
      job.layout = PromptLayout::kSeed;
    else if (layout == "context-first")
      job.layout = PromptLayout::kContextFirst;
    else
      throw std::runtime_error("unknown layout " + layout);
    job.chat = j.at("chat").get<bool>();
    job.input = j.at("input").get<std::string>();
    const std::string_view text = bytes.substr(nl + 1);
    if (text.size() != j.at("fixture_text_bytes").get<std::size_t>())
      throw std::runtime_error("fixture text has " + std::to_string(text.size()) +
                               " bytes, expected " +
                               std::to_string(j.at("fixture_text_bytes").get<std::size_t>()));
    job.fixture_text = std::string(text);
    job.fixture_bytes = j.at("fixture_bytes").get<uint64_t>();
    job.fixture_files = j.at("fixture_files").get<uint32_t>();
    std::vector<std::vector<StepSpec>> step_lists;
    for (const json& list : j.at("step_lists")) {
      std::vector<StepSpec> steps;
      for (const json& s : list) {
        StepSpec step;
        step.name = s.at("name").get<std::string>();
        step.instruction = s.at("instruction").get<std::string>();
        step.uses = s.at("uses").get<std::vector<int32_t>>();
        step.sampling = sampling_from(s.at("sampling"));
        steps.push_back(std::move(step));
      }
      step_lists.push_back(std::move(steps));
    }
    for (const json& w : j.at("workflows")) {
      Workflow wf;
      wf.index = w.at("index").get<int32_t>();
      wf.task_id = w.at("task_id").get<std::string>();
      wf.task = w.at("task").get<std::string>();
      const auto list = w.at("steps").get<std::size_t>();
      if (list >= step_lists.size()) throw std::runtime_error("workflow names a missing step list");
      wf.steps = step_lists[list];
      job.workflows.push_back(std::move(wf));
    }
    return job;
  } catch (const json::exception& e) {
    throw std::runtime_error(e.what());
  }
}

}  // namespace flowrank::flow
