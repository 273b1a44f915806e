#include "flowrank/flow/fixtures.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/utf8.hpp"

namespace flowrank::flow {
namespace fs = std::filesystem;

namespace {

// Memoised matcher over (pattern index, path index): backtracking alone is exponential on
// patterns like "*a*a*a*b".
class GlobMatcher {
 public:
  GlobMatcher(std::string_view p, std::string_view s)
      : p_(p), s_(s), memo_((p.size() + 1) * (s.size() + 1), -1) {}
  bool run() { return at(0, 0); }

 private:
  bool at(std::size_t i, std::size_t j) {
    signed char& m = memo_[i * (s_.size() + 1) + j];
    if (m < 0) m = compute(i, j) ? 1 : 0;
    return m == 1;
  }
  bool compute(std::size_t i, std::size_t j) {
    if (i == p_.size()) return j == s_.size();
    if (p_[i] == '*' && i + 1 < p_.size() && p_[i + 1] == '*') {
      const std::size_t after = i + 2;
      if (after < p_.size() && p_[after] == '/') {
        // "**/": zero or more whole segments.
        if (at(after + 1, j)) return true;
        for (std::size_t k = j; k < s_.size(); ++k)
          if (s_[k] == '/' && at(after + 1, k + 1)) return true;
        return false;
      }
      for (std::size_t k = j; k <= s_.size(); ++k)
        if (at(after, k)) return true;
      return false;
    }
    if (p_[i] == '*') {
      for (std::size_t k = j; k <= s_.size(); ++k) {
        if (at(i + 1, k)) return true;
        if (k < s_.size() && s_[k] == '/') break;
      }
      return false;
    }
    if (j >= s_.size()) return false;
    if (p_[i] == '?') return s_[j] != '/' && at(i + 1, j + 1);
    return s_[j] == p_[i] && at(i + 1, j + 1);
  }

  std::string_view p_, s_;
  std::vector<signed char> memo_;
};

bool inside(const fs::path& root, const fs::path& target) {
  auto r = root.begin();
  auto t = target.begin();
  for (; r != root.end(); ++r, ++t)
    if (t == target.end() || *r != *t) return false;
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Why the harness's fixture_loader.py leaves out a file of this name, or "" if it takes it.
// Its suffix test is Python's Path.suffix: from the last dot, unless the dot starts or ends the
// name.
std::string harness_file_skip(std::string_view name) {
  if (name.front() == '.') return "dot-file";
  if (ends_with(name, ".pyc")) return ".pyc file";
  const std::size_t dot = name.rfind('.');
  const std::string_view suffix =
      dot != std::string_view::npos && dot > 0 && dot + 1 < name.size() ? name.substr(dot) : "";
  for (std::string_view ok : {".py", ".md", ".toml", ".txt", ".json"})
    if (suffix == ok) return "";
  return suffix.empty() ? "no extension the harness takes"
                        : "extension " + std::string(suffix) + " is not one the harness takes";
}

std::string harness_dir_skip(std::string_view name) {
  if (name == "__pycache__") return "__pycache__ folder";
  if (name.front() == '.') return "dot-folder";
  return "";
}

// One directory listing in directory-read order (what os.scandir yields).
std::optional<std::vector<std::string>> read_dir_names(const std::string& path, int* error) {
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    *error = errno;
    return std::nullopt;
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
  }
  *error = errno;
  ::closedir(d);
  if (*error != 0) return std::nullopt;
  return names;
}

// Lists a tree in os.walk's top-down order: a folder's files, then its subfolders.
class TreeWalker {
 public:
  TreeWalker(FixtureTree& tree, fs::path real_root)
      : tree_(tree), real_root_(std::move(real_root)), glob_used_(tree.include.size(), false) {
    const std::string& root_text = tree.root.native();
    sep_ = root_text.empty() || root_text.back() == '/' ? "" : "/";
  }

  void walk(const std::string& rel_dir) {
    const std::string dir_path = full(rel_dir);
    int error = 0;
    const auto names = read_dir_names(dir_path, &error);
    if (!names) {
      if (rel_dir.empty() || !harness())
        throw InputError(dir_path, std::string("cannot list: ") + std::strerror(error));
      skip(rel_dir + "/", std::string("cannot list folder: ") + std::strerror(error), true);
      return;
    }
    std::vector<std::string> subdirs;
    for (const std::string& name : *names) {
      const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      if (auto sub = visit(name, rel)) subdirs.push_back(std::move(*sub));
    }
    for (const std::string& sub : subdirs) walk(sub);
  }

  void finish() {
    for (std::size_t g = 0; g < tree_.include.size(); ++g)
      if (!glob_used_[g])
        throw InputError(tree_.root.string(),
                         "fixture_include glob \"" + tree_.include[g] + "\" matches no file" +
                             (harness() ? " that fixture_rules \"harness\" takes" : ""));
    if (tree_.files.empty()) throw InputError(tree_.root.string(), "no fixture files selected");
    // std::string compares as unsigned char: bytewise order.
    if (tree_.order == FixtureOrder::kSorted)
      std::sort(tree_.files.begin(), tree_.files.end(),
                [](const FixtureFile& a, const FixtureFile& b) { return a.path < b.path; });
  }

 private:
  bool harness() const { return tree_.rules == FixtureRules::kHarness; }
  std::string full(const std::string& rel) const {
    return rel.empty() ? tree_.root.native() : tree_.root.native() + sep_ + rel;
  }
  bool included(const std::string& rel, bool mark) {
    bool selected = tree_.include.empty();
    for (std::size_t g = 0; g < tree_.include.size(); ++g)
      if (glob_match(tree_.include[g], rel)) {
        selected = true;
        if (mark) glob_used_[g] = true;
      }
    return selected;
  }
  // A skipped folder is named only when no glob narrows the tree; a skipped file when a glob
  // would have taken it.
  void skip(const std::string& rel, std::string reason, bool folder) {
    if (folder ? tree_.include.empty() : included(rel, false))
      tree_.skipped.push_back({rel, std::move(reason)});
  }

  // Handles one entry; returns its relative path when it is a folder to descend.
  std::optional<std::string> visit(const std::string& name, const std::string& rel) {
    const std::string path = full(rel);
    struct ::stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (!harness()) throw InputError(path, std::string("cannot stat: ") + std::strerror(errno));
      skip(rel, std::string("cannot stat: ") + std::strerror(errno), false);
      return std::nullopt;
    }
    if (S_ISDIR(st.st_mode)) {
      if (harness()) {
        if (std::string why = harness_dir_skip(name); !why.empty()) {
          skip(rel + "/", std::move(why), true);
          return std::nullopt;
        }
      }
      tree_.dirs.push_back({rel, mtime_ns_of(st)});
      return rel;
    }
    if (S_ISLNK(st.st_mode)) {
      struct ::stat target {};
      const bool resolves = ::stat(path.c_str(), &target) == 0;
      if (resolves && S_ISDIR(target.st_mode)) return std::nullopt;  // linked folders: not walked
      if (harness()) {
        if (std::string why = harness_file_skip(name); !why.empty()) {
          skip(rel, std::move(why), false);
          return std::nullopt;
        }
        if (!resolves) {
          skip(rel, "dangling symlink", false);
          return std::nullopt;
        }
      }
      std::error_code ec;
      const fs::path resolved = fs::canonical(path, ec);
      if (ec) throw InputError(path, "dangling symlink");
      if (!inside(real_root_, resolved))
        throw InputError(
            path, "symlink points outside the fixture directory (" + resolved.string() + ")");
      if (!S_ISREG(target.st_mode)) return std::nullopt;
      st = target;
    } else if (!S_ISREG(st.st_mode)) {
      if (harness()) skip(rel, "not a regular file", false);
      return std::nullopt;
    } else if (harness()) {
      if (std::string why = harness_file_skip(name); !why.empty()) {
        skip(rel, std::move(why), false);
        return std::nullopt;
      }
    }
    if (included(rel, true))
      tree_.files.push_back({rel, static_cast<uint64_t>(st.st_size), mtime_ns_of(st)});
    return std::nullopt;
  }

  FixtureTree& tree_;
  fs::path real_root_;
  std::string sep_;
  std::vector<bool> glob_used_;
};

// Python's universal newlines: "\r\n" and a lone "\r" both become "\n".
std::string universal_newlines(std::string text) {
  if (text.find('\r') == std::string::npos) return text;
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') {
      out += text[i];
    } else {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    }
  }
  return out;
}

}  // namespace

const char* fixture_rules_name(FixtureRules rules) {
  return rules == FixtureRules::kHarness ? "harness" : "all";
}

const char* fixture_order_name(FixtureOrder order) {
  return order == FixtureOrder::kWalk ? "walk" : "sorted";
}

bool glob_match(std::string_view pattern, std::string_view path) {
  return GlobMatcher(pattern, path).run();
}

FixtureTree list_fixture_tree(const fs::path& root, const std::vector<std::string>& include,
                              FixtureRules rules, FixtureOrder order) {
  const std::string where = root.string();
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(where, "not a directory");
  fs::path real_root = fs::canonical(root, ec);
  if (ec) throw InputError(where, "cannot resolve: " + ec.message());

  FixtureTree tree;
  tree.root = root;
  tree.include = include;
  tree.rules = rules;
  tree.order = order;
  struct ::stat rst {};
  if (::stat(root.c_str(), &rst) != 0)
    throw InputError(where, std::string("cannot stat: ") + std::strerror(errno));
  tree.dirs.push_back({"", mtime_ns_of(rst)});
  TreeWalker walker(tree, std::move(real_root));
  walker.walk("");
  walker.finish();
  return tree;
}

std::string read_fixture_file(const FixtureTree& tree, const FixtureFile& file) {
  return read_file(tree.root / file.path);
}

FixtureContent fixture_content(std::string bytes, FixtureRules rules,
                               const std::string& shown_path) {
  FixtureContent out;
  if (auto bad = find_invalid_utf8(bytes)) {
    if (rules == FixtureRules::kAll)
      throw InputError(shown_path, "invalid UTF-8 at byte " + std::to_string(*bad));
    out.skip_reason = "not UTF-8 (byte " + std::to_string(*bad) + ")";
    return out;
  }
  out.text =
      rules == FixtureRules::kHarness ? universal_newlines(std::move(bytes)) : std::move(bytes);
  return out;
}

std::string fixture_text(const FixtureTexts& files) {
  std::size_t total = 0;
  for (const auto& [path, text] : files) total += path.size() + text.size() + 24;
  std::string out;
  out.reserve(total);
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (i > 0) out += '\n';
    out += "===== FILE: ";
    out += files[i].first;
    out += " =====\n";
    out += files[i].second;
    out += '\n';
  }
  return out;
}

std::string fixture_snippets(const FixtureTexts& files) {
  std::string out;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& [path, text] = files[i];
    const auto lines = std::count(text.begin(), text.end(), '\n') + 1;
    if (i > 0) out += '\n';
    out += "### Snippet: " + path + " (lines [1, " + std::to_string(lines) + "])\n```\n";
    out += text;
    out += "\n```\n";
  }
  return out;
}

}  // namespace flowrank::flow
