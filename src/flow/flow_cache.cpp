#include "flowrank/flow/flow_cache.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "flowrank/common/bytes.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kEntryMagic = "flowrank-flow-cache 6";
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
  return dir_ / (key + ".entry");
}

fs::path FlowCache::manifest_path(const fs::path& fixture_root,
                                  const std::vector<std::string>& include, FixtureRules rules,
                                  FixtureOrder order) const {
  std::error_code ec;
  fs::path real = fs::weakly_canonical(fs::absolute(fixture_root, ec), ec);
  if (ec) real = fixture_root;
  Sha256 h;
  h.update_field(real.string());
  for (const auto& g : include) h.update_field(g);
  h.update_field(fixture_rules_name(rules));
  h.update_field(fixture_order_name(order));
  return dir_ / ("fixtures-" + h.finish_hex() + ".manifest");
}

std::string encode_cache_entry(const ExpandedJob& job) {
  const std::string payload = serialize_expanded_job(job);
  std::string bytes(kEntryMagic);
  bytes +=
      std::string(kSumTag) + crc32_hex(payload) + " bytes=" + std::to_string(payload.size()) + "\n";
  bytes += payload;
  return bytes;
}

ExpandedJob decode_cache_entry(std::string&& bytes) {
  const std::size_t nl = bytes.find('\n');
  if (nl == std::string::npos) throw std::runtime_error("no header");
  const std::string_view header(bytes.data(), nl);
  // Header: "<magic> crc32=<8 hex> bytes=<n>"
  const std::string_view sha_tag = kSumTag, bytes_tag = " bytes=";
  if (header.substr(0, kEntryMagic.size()) != kEntryMagic)
    throw std::runtime_error("unknown header");
  const std::size_t sp = header.find(sha_tag), bp = header.find(bytes_tag);
  if (sp == header.npos || bp == header.npos || bp != sp + sha_tag.size() + kSumHex)
    throw std::runtime_error("malformed header");
  const std::string want_sha(header.substr(sp + sha_tag.size(), kSumHex));
  const std::string size_text(header.substr(bp + bytes_tag.size()));
  if (size_text.empty() || size_text.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error("malformed header");
  const std::string_view payload = std::string_view(bytes).substr(nl + 1);
  if (std::to_string(payload.size()) != size_text)
    throw std::runtime_error("truncated: " + std::to_string(payload.size()) + " of " + size_text +
                             " bytes");
  if (crc32_hex(payload) != want_sha) throw std::runtime_error("checksum mismatch");
  try {
    bytes.erase(0, nl + 1);
    return parse_expanded_job(std::move(bytes));
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("unparsable: ") + e.what());
  }
}

FlowCache::Lookup FlowCache::load(const std::string& key) const {
  Lookup result;
  const fs::path path = entry_path(key);
  std::error_code ec;
  if (!fs::exists(path, ec)) return result;
  try {
    result.job = decode_cache_entry(read_file(path));
  } catch (const InputError& e) {
    result.warning = detail::one_line(
        path.string() + ": corrupt cache entry (unreadable: " + e.what() + "), rebuilding");
  } catch (const std::exception& e) {
    result.warning =
        detail::one_line(path.string() + ": corrupt cache entry (" + e.what() + "), rebuilding");
  }
  return result;
}

void FlowCache::store(const std::string& key, const ExpandedJob& job) const {
  write_file_atomic(entry_path(key), encode_cache_entry(job));
}

// Binary, not JSON: a cache hit parses this on every run, and nlohmann's parser cost more than
// reading and checking the whole entry. Step lists are stored once and named by index (every
// workflow of a job runs the same template); the fixture text, most of the bytes, is stored once.
namespace {
constexpr char kJobMagic[4] = {'F', 'R', 'X', 'J'};
constexpr uint8_t kJobVersion = 2;

void write_sampling(ByteWriter& w, const StepSampling& s) {
  w.i32(s.max_tokens);
  w.f32(s.temperature);
  w.f32(s.top_p);
  w.i32(s.top_k);
  w.u64(s.seed);
  w.count(s.stop.size());
  for (const auto& stop : s.stop) w.str(stop);
  w.u8(s.ignore_eos ? 1 : 0);
}

StepSampling read_sampling(ByteReader& r) {
  StepSampling s;
  s.max_tokens = r.i32();
  s.temperature = r.f32();
  s.top_p = r.f32();
  s.top_k = r.i32();
  s.seed = r.u64();
  s.stop.resize(r.count(4));
  for (auto& stop : s.stop) stop = r.str();
  s.ignore_eos = r.u8() != 0;
  return s;
}

bool same_steps(const std::vector<StepSpec>& a, const std::vector<StepSpec>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].instruction != b[i].instruction || a[i].uses != b[i].uses ||
        detail::sampling_canonical(a[i].sampling) != detail::sampling_canonical(b[i].sampling))
      return false;
  return true;
}
}  // namespace

std::string serialize_expanded_job(const ExpandedJob& job) {
  std::vector<const std::vector<StepSpec>*> lists;
  std::vector<uint32_t> list_of(job.workflows.size());
  for (std::size_t w = 0; w < job.workflows.size(); ++w) {
    const auto& steps = job.workflows[w].steps;
    std::size_t l = 0;
    while (l < lists.size() && !same_steps(*lists[l], steps)) ++l;
    if (l == lists.size()) lists.push_back(&steps);
    list_of[w] = static_cast<uint32_t>(l);
  }
  ByteWriter out("expanded job");
  out.raw(kJobMagic, sizeof kJobMagic);
  out.u8(kJobVersion);
  out.str(job.job_name);
  out.u8(static_cast<uint8_t>(job.layout));
  out.u8(job.chat ? 1 : 0);
  out.str(job.input);
  out.u64(job.fixture_bytes);
  out.u32(job.fixture_files);
  out.count(job.fixture_skipped.size());
  for (const SkippedFixture& k : job.fixture_skipped) {
    out.str(k.path);
    out.str(k.reason);
  }
  out.count(lists.size());
  for (const auto* steps : lists) {
    out.count(steps->size());
    for (const StepSpec& s : *steps) {
      out.str(s.name);
      out.str(s.instruction);
      out.count(s.uses.size());
      for (int32_t u : s.uses) out.i32(u);
      write_sampling(out, s.sampling);
    }
  }
  out.count(job.workflows.size());
  for (std::size_t w = 0; w < job.workflows.size(); ++w) {
    const Workflow& wf = job.workflows[w];
    out.i32(wf.index);
    out.str(wf.task_id);
    out.str(wf.task);
    out.u32(list_of[w]);
  }
  out.str(job.fixture_text);  // last, so a reader can take it over without a copy
  return out.take();
}

namespace {
// Everything but the fixture text; returns the offset where the text's bytes start and its length.
std::pair<std::size_t, std::size_t> parse_job_head(std::string_view bytes, ExpandedJob& job) {
  ByteReader r(bytes, "expanded job");
  if (r.take(sizeof kJobMagic) != std::string_view(kJobMagic, sizeof kJobMagic))
    r.fail("not an expanded job");
  if (r.u8() != kJobVersion) r.fail("unknown version");
  job.job_name = r.str();
  const uint8_t layout = r.u8();
  if (layout > static_cast<uint8_t>(PromptLayout::kSeedChained)) r.fail("unknown layout");
  job.layout = static_cast<PromptLayout>(layout);
  job.chat = r.u8() != 0;
  job.input = r.str();
  job.fixture_bytes = r.u64();
  job.fixture_files = r.u32();
  job.fixture_skipped.resize(r.count(8));
  for (SkippedFixture& k : job.fixture_skipped) {
    k.path = r.str();
    k.reason = r.str();
  }
  std::vector<std::vector<StepSpec>> lists(r.count(4));
  for (auto& steps : lists) {
    steps.resize(r.count(8));
    for (StepSpec& s : steps) {
      s.name = r.str();
      s.instruction = r.str();
      s.uses.resize(r.count(4));
      for (int32_t& u : s.uses) u = r.i32();
      s.sampling = read_sampling(r);
    }
  }
  job.workflows.resize(r.count(16));
  for (Workflow& wf : job.workflows) {
    wf.index = r.i32();
    wf.task_id = r.str();
    wf.task = r.str();
    const uint32_t list = r.u32();
    if (list >= lists.size()) r.fail("workflow names a missing step list");
    wf.steps = lists[list];
  }
  const std::size_t len = r.u32();
  const std::size_t start = r.position();
  r.take(len);
  if (!r.done()) r.fail("trailing bytes");
  return {start, len};
}
}  // namespace

ExpandedJob parse_expanded_job(std::string_view bytes) {
  ExpandedJob job;
  const auto [start, len] = parse_job_head(bytes, job);
  job.fixture_text = std::string(bytes.substr(start, len));
  return job;
}

ExpandedJob parse_expanded_job(std::string&& bytes) {
  ExpandedJob job;
  const auto [start, len] = parse_job_head(bytes, job);
  // The text is the tail of the buffer: keep the buffer rather than copy 100+ KB out of it.
  bytes.resize(start + len);
  bytes.erase(0, start);
  job.fixture_text = std::move(bytes);
  return job;
}

}  // namespace flowrank::flow
