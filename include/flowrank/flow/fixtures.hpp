#pragma once
// Fixture trees: the files whose text every prompt carries. Listing only stats files (path, size,
// mtime), so that a cached run can prove them unchanged without reading them; contents are read
// on demand, each UTF-8-checked.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace flowrank::flow {

// Glob over '/'-separated relative paths: `*` and `?` stay within one segment, `**` spans
// segments (`a/**/b` also matches `a/b`). No character classes, no escapes.
bool glob_match(std::string_view pattern, std::string_view path);

// A stat result's modification time in nanoseconds since the epoch: the one clock every
// manifest comparison uses.
inline int64_t mtime_ns_of(const struct ::stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

struct FixtureFile {
  std::string path;  // relative, '/'-separated
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// A directory of the tree and its mtime: adding, removing or renaming an entry changes it, so
// unchanged directory mtimes prove an unchanged file list without listing.
struct FixtureDir {
  std::string path;  // relative, '/'-separated; "" is the root
  int64_t mtime_ns = 0;
};

struct FixtureTree {
  std::filesystem::path root;        // as given
  std::vector<std::string> include;  // globs; empty = every file
  std::vector<FixtureFile> files;    // sorted bytewise by path
  std::vector<FixtureDir> dirs;      // every directory descended, root first
};

// Lists (stats, does not read) the selected files. Symlinks resolving outside the tree are an
// error; symlinked directories inside it are not descended (their files are reached directly).
// Throws InputError on a missing directory, an include glob matching nothing, or an empty
// selection.
FixtureTree list_fixture_tree(const std::filesystem::path& root,
                              const std::vector<std::string>& include);

// Reads one listed file; throws InputError "<file>: invalid UTF-8 at byte N" or a read error.
std::string read_fixture_file(const FixtureTree& tree, const FixtureFile& file);

// `===== FILE: <path> =====\n<content>\n` per file, joined by "\n"; `contents[i]` belongs to
// tree.files[i].
std::string fixture_text(const FixtureTree& tree, const std::vector<std::string>& contents);

}  // namespace flowrank::flow
