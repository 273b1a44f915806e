#include "flowrank/flow/job.hpp"

#include <toml++/toml.h>

#include <initializer_list>
#include <limits>
#include <set>
#include <utility>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow {
namespace fs = std::filesystem;
using detail::one_line;

void apply_sampling(const SamplingOverride& layer, StepSampling& s) {
  if (layer.max_tokens) s.max_tokens = *layer.max_tokens;
  if (layer.temperature) s.temperature = *layer.temperature;
  if (layer.top_p) s.top_p = *layer.top_p;
  if (layer.top_k) s.top_k = *layer.top_k;
  if (layer.seed) s.seed = *layer.seed;
  if (layer.stop) s.stop = *layer.stop;
  if (layer.ignore_eos) s.ignore_eos = *layer.ignore_eos;
}

const char* layout_name(PromptLayout layout) {
  switch (layout) {
    case PromptLayout::kSeed:
      return "seed";
    case PromptLayout::kContextFirst:
      return "context-first";
    case PromptLayout::kSeedChained:
      return "seed-chained";
  }
  return "?";
}

namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string device_problem(std::string_view device) {
  if (device == "auto" || device == "cpu" || device == "cuda") return {};
  return "must be \"auto\", \"cpu\" or \"cuda\", got \"" + std::string(device) + "\"";
}

// Reads typed values out of a parsed job, failing with "<file>:<line>: <key>: <problem>".
class JobReader {
 public:
  explicit JobReader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const toml::node& node, const std::string& key,
                         const std::string& problem) const {
    fail_at(node.source().begin.line, key, problem);
  }
  [[noreturn]] void fail_at(std::size_t line, const std::string& key,
                            const std::string& problem) const {
    std::string where = file_;
    if (line > 0) where += ":" + std::to_string(line);
    throw InputError(where, one_line(key.empty() ? problem : key + ": " + problem));
  }

  std::string string(const toml::node& n, const std::string& key) const {
    if (!n.is_string()) fail(n, key, "must be a string, got " + type_of(n));
    return std::string(n.as_string()->get());
  }
  std::string nonempty_string(const toml::node& n, const std::string& key) const {
    std::string s = string(n, key);
    if (s.empty()) fail(n, key, "must not be empty");
    return s;
  }
  int64_t integer(const toml::node& n, const std::string& key) const {
    if (!n.is_integer()) fail(n, key, "must be an integer, got " + type_of(n));
    return n.as_integer()->get();
  }
  int32_t int32_in(const toml::node& n, const std::string& key, int64_t lo) const {
    const int64_t v = integer(n, key);
    if (v < lo || v > std::numeric_limits<int32_t>::max())
      fail(n, key,
           "must be an integer in [" + std::to_string(lo) + ", " +
               std::to_string(std::numeric_limits<int32_t>::max()) + "], got " + std::to_string(v));
    return static_cast<int32_t>(v);
  }
  double number(const toml::node& n, const std::string& key) const {
    if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
    if (!n.is_floating_point()) fail(n, key, "must be a number, got " + type_of(n));
    return n.as_floating_point()->get();
  }
  bool boolean(const toml::node& n, const std::string& key) const {
    if (!n.is_boolean()) fail(n, key, "must be true or false, got " + type_of(n));
    return n.as_boolean()->get();
  }
  std::vector<std::string> strings(const toml::node& n, const std::string& key) const {
    if (!n.is_array()) fail(n, key, "must be an array of strings, got " + type_of(n));
    std::vector<std::string> out;
    for (const toml::node& el : *n.as_array()) {
      if (!el.is_string()) fail(el, key, "must be an array of strings, has " + type_of(el));
      out.emplace_back(el.as_string()->get());
    }
    return out;
  }
  // One of a few named values: `must be "a", "b" or "c", got "x"` otherwise.
  template <class E>
  E choice(const toml::node& n, const std::string& key,
           std::initializer_list<std::pair<const char*, E>> values) const {
    const std::string v = string(n, key);
    std::string names;
    std::size_t i = 0;
    for (const auto& [name, value] : values) {
      if (v == name) return value;
      names += (i == 0                   ? ""
                : i + 1 == values.size() ? " or "
                                         : ", ") +
               ("\"" + std::string(name) + "\"");
      ++i;
    }
    fail(n, key, "must be " + names + ", got \"" + v + "\"");
  }
  const toml::table& table(const toml::node& n, const std::string& key) const {
    if (!n.is_table()) fail(n, key, "must be a table, got " + type_of(n));
    return *n.as_table();
  }

  SamplingOverride sampling(const toml::table& t, const std::string& prefix) const {
    SamplingOverride s;
    for (auto&& [k, node] : t) {
      const std::string name(k.str());
      const std::string key = prefix + "." + name;
      switch (detail::sampling_key_kind(name)) {
        case detail::SamplingKeyKind::kInt: {
          const int64_t v = integer(node, key);
          if (auto p = detail::sampling_int_problem(name, v); !p.empty()) fail(node, key, p);
          if (name == "max_tokens") s.max_tokens = static_cast<int32_t>(v);
          if (name == "top_k") s.top_k = static_cast<int32_t>(v);
          if (name == "seed") s.seed = static_cast<uint64_t>(v);
          break;
        }
        case detail::SamplingKeyKind::kFloat: {
          const double v = number(node, key);
          if (auto p = detail::sampling_float_problem(name, v); !p.empty()) fail(node, key, p);
          if (name == "temperature") s.temperature = static_cast<float>(v);
          if (name == "top_p") s.top_p = static_cast<float>(v);
          break;
        }
        case detail::SamplingKeyKind::kStrings:
          s.stop = strings(node, key);
          for (const auto& stop : *s.stop)
            if (stop.empty()) fail(node, key, "stop strings must not be empty");
          break;
        case detail::SamplingKeyKind::kBool:
          s.ignore_eos = boolean(node, key);
          break;
        case detail::SamplingKeyKind::kUnknown:
          fail(node, "", "unknown key '" + key + "'");
      }
    }
    return s;
  }

  static std::string type_of(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::table:
        return "a table";
      default:
        return "a date/time";
    }
  }

 private:
  std::string file_;
};

fs::path resolve(const fs::path& dir, const std::string& value) {
  return (dir / fs::path(value)).lexically_normal();
}

void check_engine(const JobReader& r, const toml::table& t, EngineSettings& e) {
  for (auto&& [k, node] : t) {
    const std::string name(k.str());
    const std::string key = "engine." + name;
    if (name == "block_size")
      e.block_size = r.int32_in(node, key, 1);
    else if (name == "kv_blocks")
      e.kv_blocks = r.int32_in(node, key, 0);
    else if (name == "max_batch_tokens")
      e.max_batch_tokens = r.int32_in(node, key, 1);
    else if (name == "max_seqs")
      e.max_seqs = r.int32_in(node, key, 1);
    else if (name == "prefix_cache")
      e.prefix_cache = r.boolean(node, key);
    else if (name == "threads")
      e.threads = r.int32_in(node, key, 0);
    else
      r.fail(node, "", "unknown key '" + key + "'");
  }
}

toml::table parse_job_toml(const std::string& bytes, const std::string& file) {
  try {
    return toml::parse(bytes, file);
  } catch (const toml::parse_error& e) {
    throw InputError(file + ":" + std::to_string(e.source().begin.line) + ":" +
                         std::to_string(e.source().begin.column),
                     one_line(std::string(e.description())));
  }
}

// One top-level key of a job file into `job` (fixture_rules into `rules`: its default depends
// on the layout, which may come later in the file).
void read_job_key(const JobReader& r, const fs::path& dir, const std::string& key,
                  const toml::node& node, JobSpec& job, std::optional<FixtureRules>& rules) {
  if (key == "name") {
    job.name = r.string(node, key);
    if (!valid_name(job.name))
      r.fail(node, key, "must match [A-Za-z0-9._-]+, got \"" + job.name + "\"");
  } else if (key == "flow") {
    job.flow = resolve(dir, r.nonempty_string(node, key));
  } else if (key == "fixtures") {
    job.fixtures = resolve(dir, r.nonempty_string(node, key));
  } else if (key == "fixture_include") {
    job.fixture_include = r.strings(node, key);
    for (const auto& g : job.fixture_include)
      if (g.empty() || g.front() == '/') r.fail(node, key, "globs must be relative and non-empty");
  } else if (key == "fixture_rules") {
    rules = r.choice<FixtureRules>(
        node, key, {{"harness", FixtureRules::kHarness}, {"all", FixtureRules::kAll}});
  } else if (key == "fixture_order") {
    job.fixture_order = r.choice<FixtureOrder>(
        node, key, {{"sorted", FixtureOrder::kSorted}, {"walk", FixtureOrder::kWalk}});
  } else if (key == "suite") {
    job.suite = resolve(dir, r.nonempty_string(node, key));
  } else if (key == "workflows") {
    job.workflows = r.int32_in(node, key, 1);
  } else if (key == "layout") {
    job.layout = r.choice<PromptLayout>(node, key,
                                        {{"seed", PromptLayout::kSeed},
                                         {"seed-chained", PromptLayout::kSeedChained},
                                         {"context-first", PromptLayout::kContextFirst}});
  } else if (key == "chat") {
    job.chat = r.boolean(node, key);
  } else if (key == "model") {
    const std::string v = r.nonempty_string(node, key);
    job.model = v.rfind("dummy:", 0) == 0 ? v : resolve(dir, v).string();
  } else if (key == "tokenizer") {
    job.tokenizer = resolve(dir, r.nonempty_string(node, key)).string();
  } else if (key == "device") {
    job.device = r.string(node, key);
    if (auto p = device_problem(job.device); !p.empty()) r.fail(node, key, p);
  } else if (key == "output") {
    job.output = fs::path(r.nonempty_string(node, key));  // relative to the current directory
  } else if (key == "sampling") {
    job.sampling = r.sampling(r.table(node, key), key);
  } else if (key == "steps") {
    for (auto&& [sk, snode] : r.table(node, key)) {
      const std::string step_key = "steps." + std::string(sk.str());
      job.steps[std::string(sk.str())] = r.sampling(r.table(snode, step_key), step_key);
    }
  } else if (key == "engine") {
    check_engine(r, r.table(node, key), job.engine);
  } else {
    r.fail(node, "", "unknown key '" + key + "'");
  }
}

// Required keys, defaults that depend on other keys, and the paths that must exist: named here,
// before anything tries to read them.
void complete_job(const JobReader& r, JobSpec& job, const std::set<std::string>& seen,
                  std::optional<FixtureRules> rules) {
  for (const char* key : {"name", "flow", "fixtures", "suite", "workflows"})
    if (!seen.count(key)) r.fail_at(0, "", std::string("missing required key '") + key + "'");
  if (!seen.count("output")) job.output = fs::path("reports") / (job.name + ".h5");
  // The seed layouts reproduce the harness's prompts, so they take its fixture rules by default.
  job.fixture_rules = rules.value_or(
      job.layout == PromptLayout::kContextFirst ? FixtureRules::kAll : FixtureRules::kHarness);
  std::error_code ec;
  if (!fs::is_regular_file(job.flow, ec))
    r.fail_at(0, "flow", job.flow.string() + " is not a readable file");
  if (!fs::is_regular_file(job.suite, ec))
    r.fail_at(0, "suite", job.suite.string() + " is not a readable file");
  if (!fs::is_directory(job.fixtures, ec))
    r.fail_at(0, "fixtures", job.fixtures.string() + " is not a directory");
}

}  // namespace

JobSpec load_job(const fs::path& path) {
  const std::string bytes = read_file(path);
  const std::string file = path.string();
  const JobReader r(file);
  const toml::table root = parse_job_toml(bytes, file);
  JobSpec job;
  job.path = path;
  job.job_sha256 = sha256_hex(bytes);
  std::set<std::string> seen;
  std::optional<FixtureRules> rules;
  for (auto&& [k, node] : root) {
    const std::string key(k.str());
    read_job_key(r, path.parent_path(), key, node, job, rules);
    seen.insert(key);
  }
  complete_job(r, job, seen, rules);
  return job;
}

void apply_overrides(JobSpec& job, const JobOverrides& o) {
  if (o.out) {
    if (o.out->empty()) throw InputError("--out", "must not be empty");
    job.output = *o.out;
  }
  if (o.device) {
    if (auto p = device_problem(*o.device); !p.empty()) throw InputError("--device", p);
    job.device = *o.device;
  }
  if (o.model) {
    if (o.model->empty()) throw InputError("--model", "must not be empty");
    job.model = *o.model;
  }
  if (o.workflows) {
    if (*o.workflows < 1 || *o.workflows > std::numeric_limits<int32_t>::max())
      throw InputError("--workflows", "must be >= 1, got " + std::to_string(*o.workflows));
    job.workflows = static_cast<int32_t>(*o.workflows);
    job.workflows_from_command_line = true;
  }
}

}  // namespace flowrank::flow
