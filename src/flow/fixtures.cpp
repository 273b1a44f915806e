#include "flowrank/flow/fixtures.hpp"

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

}  // namespace

bool glob_match(std::string_view pattern, std::string_view path) {
  return GlobMatcher(pattern, path).run();
}

FixtureTree list_fixture_tree(const fs::path& root, const std::vector<std::string>& include) {
  const std::string where = root.string();
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(where, "not a directory");
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) throw InputError(where, "cannot resolve: " + ec.message());

  FixtureTree tree;
  tree.root = root;
  tree.include = include;
  std::vector<bool> glob_used(include.size(), false);
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) throw InputError(where, "cannot list: " + ec.message());
  // Relative paths by cutting the root's prefix off the native string, and one lstat per entry:
  // listing runs on every cache hit, where path-object arithmetic and repeated stats showed up.
  {
    struct ::stat rst {};
    if (::stat(root.c_str(), &rst) != 0)
      throw InputError(where, std::string("cannot stat: ") + std::strerror(errno));
    tree.dirs.push_back({"", mtime_ns_of(rst)});
  }
  const std::string& root_text = root.native();
  const std::size_t prefix =
      root_text.size() + (root_text.empty() || root_text.back() == '/' ? 0 : 1);
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw InputError(where, "cannot list: " + ec.message());
    const fs::path& path = it->path();
    struct ::stat st {};
    if (::lstat(path.c_str(), &st) != 0)
      throw InputError(path.string(), std::string("cannot stat: ") + std::strerror(errno));
    if (S_ISLNK(st.st_mode)) {
      const fs::path target = fs::canonical(path, ec);
      if (ec) throw InputError(path.string(), "dangling symlink");
      if (!inside(real_root, target))
        throw InputError(path.string(),
                         "symlink points outside the fixture directory (" + target.string() + ")");
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        continue;  // linked directories are not descended
    } else if (S_ISDIR(st.st_mode)) {
      tree.dirs.push_back({path.native().substr(prefix), mtime_ns_of(st)});
      continue;
    } else if (!S_ISREG(st.st_mode)) {
      continue;
    }
    const std::string rel = path.native().substr(prefix);
    bool selected = include.empty();
    for (std::size_t g = 0; g < include.size(); ++g)
      if (glob_match(include[g], rel)) selected = glob_used[g] = true;
    if (!selected) continue;
    tree.files.push_back({rel, static_cast<uint64_t>(st.st_size), mtime_ns_of(st)});
  }
  for (std::size_t g = 0; g < include.size(); ++g)
    if (!glob_used[g])
      throw InputError(where, "fixture_include glob \"" + include[g] + "\" matches no file");
  if (tree.files.empty()) throw InputError(where, "no fixture files selected");
  // std::string compares as unsigned char: bytewise order.
  std::sort(tree.files.begin(), tree.files.end(),
            [](const FixtureFile& a, const FixtureFile& b) { return a.path < b.path; });
  return tree;
}

std::string read_fixture_file(const FixtureTree& tree, const FixtureFile& file) {
  const fs::path path = tree.root / file.path;
  std::string bytes = read_file(path);
  if (auto bad = find_invalid_utf8(bytes))
    throw InputError(path.string(), "invalid UTF-8 at byte " + std::to_string(*bad));
  return bytes;
}

std::string fixture_text(const FixtureTree& tree, const std::vector<std::string>& contents) {
  std::size_t total = 0;
  for (const auto& c : contents) total += c.size() + 64;
  std::string text;
  text.reserve(total);
  for (std::size_t i = 0; i < tree.files.size(); ++i) {
    if (i > 0) text += '\n';
    text += "===== FILE: ";
    text += tree.files[i].path;
    text += " =====\n";
    text += contents.at(i);
    text += '\n';
  }
  return text;
}

}  // namespace flowrank::flow
