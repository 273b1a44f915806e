#include "flowrank/flow/expand.hpp"

#include <sys/stat.h>
#include <charconv>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "flowrank/common/clock.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "flowrank/flow/fixtures.hpp"
#include "flowrank/flow/flow_template.hpp"
#include "flowrank/flow/suite.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct ManifestRecord {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string sha256;
};

// A missing or unreadable manifest is only a lost shortcut: every file gets read and hashed.
// Format: a header line, then "F<TAB>size<TAB>mtime_ns<TAB>sha256<TAB>path" per file and, when
// the whole listing could be vouched for, "D<TAB>mtime_ns<TAB>path" per directory. A line format,
// not JSON: it is read on every run, and parsing it must stay small next to a cache hit.
// "S<TAB>reason<TAB>path" lines keep the entries the fixture rules skipped, so a listing taken
// from the manifest still names them. Files appear in the listing's order (walk order survives).
constexpr std::string_view kManifestHeader = "flowrank-fixture-manifest 3";

struct Manifest {
  std::vector<std::string> order;  // file paths as listed
  std::map<std::string, ManifestRecord> files;
  std::vector<FixtureDir> dirs;  // empty unless the listing itself is vouched for
  std::vector<SkippedFixture> skipped;
};

Manifest read_manifest(const fs::path& path) {
  Manifest out;
  try {  // a missing manifest throws from read_file: the same lost shortcut
    const std::string text = read_file(path);
    std::string_view rest(text);
    auto next_line = [&]() -> std::optional<std::string_view> {
      const std::size_t nl = rest.find('\n');
      if (nl == std::string_view::npos) return std::nullopt;
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl + 1);
      return line;
    };
    auto fields = [](std::string_view line, std::string_view* f, int n) {
      for (int k = 0; k < n - 1; ++k) {
        const std::size_t tab = line.find('\t');
        if (tab == std::string_view::npos) return false;
        f[k] = line.substr(0, tab);
        line.remove_prefix(tab + 1);
      }
      f[n - 1] = line;
      return true;
    };
    auto number = [](std::string_view t, auto& v) {
      auto [p, e] = std::from_chars(t.data(), t.data() + t.size(), v);
      return e == std::errc() && p == t.data() + t.size();
    };
    auto header = next_line();
    if (!header || header->substr(0, kManifestHeader.size()) != kManifestHeader) return {};
    while (auto line = next_line()) {
      std::string_view f[5];
      if (line->substr(0, 2) == "F\t") {
        ManifestRecord rec;
        if (!fields(line->substr(2), f, 4) || !number(f[0], rec.size) ||
            !number(f[1], rec.mtime_ns) || f[2].size() != 64 || f[3].empty())
          return {};
        rec.sha256 = std::string(f[2]);
        if (!out.files.emplace(std::string(f[3]), std::move(rec)).second) return {};
        out.order.emplace_back(f[3]);
      } else if (line->substr(0, 2) == "D\t") {
        FixtureDir d;
        if (!fields(line->substr(2), f, 2) || !number(f[0], d.mtime_ns)) return {};
        d.path = std::string(f[1]);
        out.dirs.push_back(std::move(d));
      } else if (line->substr(0, 2) == "S\t") {
        if (!fields(line->substr(2), f, 2)) return {};
        out.skipped.push_back({std::string(f[1]), std::string(f[0])});
      } else {
        return {};
      }
    }
  } catch (const std::exception&) {
    return {};
  }
  return out;
}

// Stands in for a content hash when the harness rules skip a file that cannot be read.
constexpr std::string_view kUnreadable = "unreadable";

// A file modified within the file system's timestamp tick after we hashed it would keep its
// mtime (the "racy git" problem), so only files older than this window are vouched for.
constexpr int64_t kRacyWindowNs = 2'000'000'000LL;

void write_manifest(const fs::path& path, const FixtureTree& tree,
                    const std::vector<std::optional<std::string>>& hashes, int64_t listed_at_ns) {
  std::error_code ec;
  std::string text(kManifestHeader);
  text += '\t' + fs::absolute(tree.root, ec).lexically_normal().string() + '\n';
  bool all = true;
  auto vouch = [&](int64_t mtime_ns, const std::string& p) {
    // A path with a newline cannot be a line: that file is simply re-hashed every run.
    const bool ok = mtime_ns < listed_at_ns - kRacyWindowNs && p.find('\n') == std::string::npos;
    all = all && ok;
    return ok;
  };
  for (std::size_t i = 0; i < tree.files.size(); ++i) {
    const FixtureFile& f = tree.files[i];
    if (!hashes[i] || *hashes[i] == kUnreadable) {  // re-read next time, it may have changed
      all = false;
      continue;
    }
    if (!vouch(f.mtime_ns, f.path)) continue;
    text += "F\t" + std::to_string(f.size) + '\t' + std::to_string(f.mtime_ns) + '\t' + *hashes[i] +
            '\t' + f.path + '\n';
  }
  std::string listing;
  for (const FixtureDir& d : tree.dirs)
    if (vouch(d.mtime_ns, d.path))
      listing += "D\t" + std::to_string(d.mtime_ns) + '\t' + d.path + '\n';
  for (const SkippedFixture& k : tree.skipped) {
    // Tabs and newlines cannot be fields of a line: such a listing is simply not vouched for.
    all = all && k.path.find_first_of("\t\n") == std::string::npos &&
          k.reason.find_first_of("\t\n") == std::string::npos;
    listing += "S\t" + k.reason + '\t' + k.path + '\n';
  }
  if (all) text += listing;  // only a listing vouched for in full may replace listing
  write_file_atomic(path, text);
}

// The tree as the manifest recorded it, if every directory and file still has its recorded
// mtime (and size): one stat each instead of walking the tree. Unchanged directory mtimes mean
// no entry was added, removed or renamed; unchanged file stats mean unchanged files.
std::optional<FixtureTree> tree_from_manifest(const JobSpec& spec, const Manifest& m) {
  if (m.dirs.empty() || m.files.empty()) return std::nullopt;
  struct ::stat st {};
  const std::string root = spec.fixtures.native();
  const std::string sep = root.empty() || root.back() == '/' ? "" : "/";
  for (const FixtureDir& d : m.dirs) {
    const std::string p = d.path.empty() ? root : root + sep + d.path;
    if (::lstat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || mtime_ns_of(st) != d.mtime_ns)
      return std::nullopt;
  }
  FixtureTree tree;
  tree.root = spec.fixtures;
  tree.include = spec.fixture_include;
  tree.rules = spec.fixture_rules;
  tree.order = spec.fixture_order;
  tree.dirs = m.dirs;
  tree.skipped = m.skipped;
  for (const std::string& path : m.order) {  // as listed: walk order survives
    const ManifestRecord& rec = m.files.at(path);
    const std::string p = root + sep + path;
    if (::stat(p.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) != rec.size ||
        mtime_ns_of(st) != rec.mtime_ns)
      return std::nullopt;
    tree.files.push_back({path, rec.size, rec.mtime_ns});
  }
  return tree;
}

// The listing as it shapes prompts: rules, order, each file (path and content hash, in order; an
// unreadable file by a marker) and what the rules skipped (so that the entry's warnings are true).
void hash_listing(Sha256& h, const FixtureTree& tree,
                  const std::vector<std::optional<std::string>>& hashes) {
  h.update_field(fixture_rules_name(tree.rules));
  h.update_field(fixture_order_name(tree.order));
  h.update_field(std::to_string(tree.files.size()));
  for (std::size_t i = 0; i < tree.files.size(); ++i) {
    h.update_field(tree.files[i].path);
    h.update_field(*hashes[i]);
  }
  h.update_field(std::to_string(tree.skipped.size()));
  for (const SkippedFixture& k : tree.skipped) {
    h.update_field(k.path);
    h.update_field(k.reason);
  }
}

std::string cache_key(const FlowTemplate& tmpl, const FixtureTree& tree,
                      const std::vector<std::optional<std::string>>& hashes, const TaskSuite& suite,
                      const JobSpec& spec, const std::vector<StepSpec>& steps) {
  Sha256 h;
  h.update_field(kExpanderVersion);
  h.update_field(tmpl.canonical);
  hash_listing(h, tree, hashes);
  h.update_field(suite.canonical);
  h.update_field(layout_name(spec.layout));
  h.update_field(spec.chat ? "chat" : "raw");
  h.update_field(std::to_string(spec.workflows));
  for (const StepSpec& s : steps) {
    h.update_field(s.name);
    h.update_field(detail::sampling_canonical(s.sampling));
  }
  return h.finish_hex();
}

// The fast key: what the raw inputs are, before any parsing. It covers the job file's bytes (every
// key of the job), the command-line workflow count, the raw template and suite bytes and the
// fixture files' content hashes as the manifest vouches for them. Equal fast keys imply equal
// content keys, so a hit can skip parsing and validating the template and suite (those were
// checked when the entry was built). A reformatted template changes only the fast key: that run
// takes the full path, finds the entry by its content key and records the new alias.
std::string fast_key(const JobSpec& spec, const FixtureTree& tree,
                     const std::vector<std::optional<std::string>>& hashes,
                     const std::string& template_identity, const std::string& suite_identity) {
  Sha256 h;
  h.update_field(kExpanderVersion);
  h.update_field("fast");
  h.update_field(spec.job_sha256);
  h.update_field(std::to_string(spec.workflows));
  h.update_field(template_identity);
  h.update_field(suite_identity);
  hash_listing(h, tree, hashes);
  return h.finish_hex();
}

// What the fast key records of the template or suite: once the file is older than the racy
// window, its absolute path, size and mtime (the same trust as fixture files: a stat instead of
// a read and a hash); before that, its bytes.
std::string input_identity(const fs::path& path, int64_t now_ns) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    const int64_t mtime = mtime_ns_of(st);
    if (mtime < now_ns - kRacyWindowNs) {
      std::error_code ec;
      return "stat:" + fs::absolute(path, ec).lexically_normal().string() + '\t' +
             std::to_string(st.st_size) + '\t' + std::to_string(mtime);
    }
  }
  return "bytes:" + read_file(path);
}

// Turns the files read into the job's fixture text under its rules; what the rules leave out
// (while listing, unreadable, not UTF-8) goes to job.fixture_skipped, in that order.
void assemble_fixtures(const FixtureTree& tree, std::vector<std::optional<std::string>>& contents,
                       const std::vector<std::string>& unreadable, ExpandedJob& job) {
  job.fixture_skipped = tree.skipped;
  FixtureTexts texts;
  for (std::size_t i = 0; i < tree.files.size(); ++i) {
    const std::string& path = tree.files[i].path;
    if (!unreadable[i].empty()) {
      job.fixture_skipped.push_back({path, unreadable[i]});
      continue;
    }
    FixtureContent c =
        fixture_content(std::move(*contents[i]), tree.rules, (tree.root / path).string());
    if (!c.text) {
      job.fixture_skipped.push_back({path, c.skip_reason});
      continue;
    }
    job.fixture_bytes += c.text->size();
    texts.emplace_back(path, std::move(*c.text));
  }
  if (texts.empty())
    throw InputError(tree.root.string(),
                     "no fixture files selected (the rules skipped every file)");
  job.fixture_files = static_cast<uint32_t>(texts.size());
  job.fixture_text =
      job.layout == PromptLayout::kSeedChained ? fixture_snippets(texts) : fixture_text(texts);
}

fs::path alias_path(const FlowCache& cache, const std::string& fast) {
  return cache.dir() / ("alias-" + fast + ".key");
}

void add_warning(std::optional<std::string>& warning, const std::string& text) {
  warning = detail::one_line(warning ? *warning + "; " + text : text);
}

// Effective sampling per template step, lowest precedence first: defaults, template step,
// [sampling], [steps.x]; a [steps.x] naming no step of the flow is an error.
std::vector<StepSpec> effective_steps(const JobSpec& spec, const FlowTemplate& tmpl) {
  for (const auto& [name, layer] : spec.steps) {
    bool known = false;
    for (const TemplateStep& s : tmpl.steps) known = known || s.name == name;
    if (!known)
      throw InputError(spec.path.string(), "steps." + name + ": flow " + tmpl.path.string() +
                                               " has no step named '" + name + "'");
  }
  std::vector<StepSpec> steps;
  for (const TemplateStep& ts : tmpl.steps) {
    StepSpec s{ts.name, ts.instruction, ts.uses, StepSampling{}};
    apply_sampling(ts.sampling, s.sampling);
    apply_sampling(spec.sampling, s.sampling);
    if (auto it = spec.steps.find(ts.name); it != spec.steps.end())
      apply_sampling(it->second, s.sampling);
    steps.push_back(std::move(s));
  }
  return steps;
}

void check_workflow_count(const JobSpec& spec, const TaskSuite& suite) {
  if (static_cast<std::size_t>(spec.workflows) > suite.tasks.size())
    throw InputError(spec.workflows_from_command_line ? "--workflows" : spec.path.string(),
                     "workflows: " + std::to_string(spec.workflows) + " is more than the " +
                         std::to_string(suite.tasks.size()) + " tasks of suite " +
                         suite.path.string());
}

// One expansion: the fixture listing, what the manifest vouches for, the files read so far, and
// the cache lookups in order of cost (alias of the raw inputs, then the content key, then a
// full expansion that is stored).
class Expansion {
 public:
  Expansion(const JobSpec& spec, FlowCache* cache) : spec_(spec), cache_(cache) {}

  ExpansionResult run() {
    survey_fixtures();
    if (load_through_alias()) return finish(true);
    const FlowTemplate tmpl = load_flow_template(spec_.flow);
    const TaskSuite suite = load_task_suite(spec_.suite);
    check_workflow_count(spec_, suite);
    const std::vector<StepSpec> steps = effective_steps(spec_, tmpl);
    // Only files the manifest cannot vouch for are read before the lookup.
    for (std::size_t i = 0; i < files(); ++i)
      if (!hashes_[i]) read(i);
    result_.key = cache_key(tmpl, tree_, hashes_, suite, spec_, steps);
    if (load_entry(result_.key)) {
      save_manifest();
      save_alias();
      return finish(true);
    }
    const bool rehashed = read_everything();
    if (rehashed) {
      result_.key = cache_key(tmpl, tree_, hashes_, suite, spec_, steps);
      manifest_complete_ = false;
    }
    build_job(tmpl, suite, steps);
    if (cache_) {
      try {
        cache_->store(result_.key, result_.job);
      } catch (const std::exception& e) {
        add_warning(result_.warning, std::string("cannot write cache entry: ") + e.what());
      }
      save_manifest();
      if (!rehashed) save_alias();
    }
    return finish(false);
  }

 private:
  std::size_t files() const { return tree_.files.size(); }

  // The listing (from the manifest when it vouches for it) and every hash the manifest holds
  // for a file of unchanged size and mtime.
  void survey_fixtures() {
    std::optional<FixtureTree> vouched;
    if (cache_) {
      manifest_path_ = cache_->manifest_path(spec_.fixtures, spec_.fixture_include,
                                             spec_.fixture_rules, spec_.fixture_order);
      manifest_ = read_manifest(manifest_path_);
      vouched = tree_from_manifest(spec_, manifest_);
    }
    tree_ = vouched ? std::move(*vouched)
                    : list_fixture_tree(spec_.fixtures, spec_.fixture_include, spec_.fixture_rules,
                                        spec_.fixture_order);
    hashes_.assign(files(), std::nullopt);
    contents_.assign(files(), std::nullopt);
    unreadable_.assign(files(), std::string());
    if (!cache_) return;
    // Complete: every file's hash and the listing itself are vouched for (nothing to rewrite).
    manifest_complete_ = !manifest_.dirs.empty();
    for (std::size_t i = 0; i < files(); ++i) {
      auto it = manifest_.files.find(tree_.files[i].path);
      if (it != manifest_.files.end() && it->second.size == tree_.files[i].size &&
          it->second.mtime_ns == tree_.files[i].mtime_ns)
        hashes_[i] = it->second.sha256;
      else
        manifest_complete_ = false;
    }
  }

  std::string raw_inputs_key() const {
    return fast_key(spec_, tree_, hashes_, input_identity(spec_.flow, listed_at_ns_),
                    input_identity(spec_.suite, listed_at_ns_));
  }

  // Fast path: every fixture file vouched for by the manifest and an alias recorded for these
  // exact raw inputs -> load the entry without parsing anything but the entry itself.
  bool load_through_alias() {
    if (!cache_) return false;
    for (const auto& h : hashes_)
      if (!h) return false;
    fast_ = raw_inputs_key();
    std::string key;
    try {
      key = read_file(alias_path(*cache_, *fast_));
    } catch (const std::exception&) {  // no alias yet: the full path records one
      return false;
    }
    if (key.size() != 64 || key.find_first_not_of("0123456789abcdef") != std::string::npos)
      return false;
    if (!load_entry(key)) return false;
    result_.key = key;
    return true;
  }

  bool load_entry(const std::string& key) {
    if (!cache_) return false;
    FlowCache::Lookup lookup = cache_->load(key);
    if (lookup.warning) add_warning(result_.warning, *lookup.warning);
    if (!lookup.job) return false;
    result_.job = std::move(*lookup.job);
    result_.job.job_name = spec_.name;  // the name does not shape prompts, so it is not keyed
    return true;
  }

  void read(std::size_t i) {
    ++result_.fixture_files_read;
    try {
      contents_[i] = read_fixture_file(tree_, tree_.files[i]);
      hashes_[i] = sha256_hex(*contents_[i]);
    } catch (const InputError& e) {
      if (tree_.rules != FixtureRules::kHarness) throw;
      unreadable_[i] = std::string(e.what()).substr(e.where().size() + 2);
      contents_[i] = std::string();
      hashes_[i] = std::string(kUnreadable);
    }
  }

  // Miss: the prompt text needs every file. Re-reads files the manifest vouched for; true when
  // one differs after all (edited with its mtime restored): the key must follow the real bytes.
  bool read_everything() {
    bool rehashed = false;
    for (std::size_t i = 0; i < files(); ++i) {
      if (contents_[i]) continue;
      const std::string recorded = *hashes_[i];
      read(i);
      if (*hashes_[i] != recorded) rehashed = true;
    }
    return rehashed;
  }

  void build_job(const FlowTemplate& tmpl, const TaskSuite& suite,
                 const std::vector<StepSpec>& steps) {
    ExpandedJob& job = result_.job;
    job.job_name = spec_.name;
    job.layout = spec_.layout;
    job.chat = spec_.chat;
    job.input = tmpl.input;
    assemble_fixtures(tree_, contents_, unreadable_, job);
    for (int32_t w = 0; w < spec_.workflows; ++w) {
      const Task& task = suite.tasks[static_cast<std::size_t>(w)];
      job.workflows.push_back(Workflow{w, task.id, task.prompt, steps});
    }
  }

  void save_alias() {
    if (!cache_) return;
    if (!fast_) fast_ = raw_inputs_key();
    try {
      write_file_atomic(alias_path(*cache_, *fast_), result_.key);
    } catch (const std::exception& e) {
      add_warning(result_.warning, std::string("cannot write cache alias: ") + e.what());
    }
  }

  void save_manifest() {
    if (!cache_ || manifest_complete_) return;
    try {
      write_manifest(manifest_path_, tree_, hashes_, listed_at_ns_);
    } catch (const std::exception& e) {
      add_warning(result_.warning, std::string("cannot write fixture manifest: ") + e.what());
    }
  }

  ExpansionResult finish(bool hit) {
    result_.hit = hit;
    result_.seconds = seconds_between(t0_, Clock::now());
    return std::move(result_);
  }

  const JobSpec& spec_;
  FlowCache* cache_;
  const Clock::time_point t0_ = Clock::now();
  const int64_t listed_at_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
  ExpansionResult result_;
  fs::path manifest_path_;
  Manifest manifest_;
  bool manifest_complete_ = false;
  FixtureTree tree_;
  std::vector<std::optional<std::string>> hashes_, contents_;
  std::vector<std::string> unreadable_;  // why, for files the harness rules skip unread
  std::optional<std::string> fast_;      // the raw-inputs key, once computed
};

}  // namespace

ExpansionResult expand_job(const JobSpec& spec, FlowCache* cache) {
  return Expansion(spec, cache).run();
}

}  // namespace flowrank::flow
