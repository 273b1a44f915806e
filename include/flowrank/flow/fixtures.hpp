#pragma once
// Fixture trees: the files whose text every prompt carries. Listing only stats files (path, size,
// mtime), so that a cached run can prove them unchanged without reading them; contents are read
// on demand and turned into prompt text by the job's fixture rules.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowrank::flow {

// Which files a fixture tree contributes, and how their bytes become text (docs/FORMATS.md).
enum class FixtureRules {
  kAll,      // every regular file, bytes as they are (must be UTF-8)
  kHarness,  // the seed harness's fixture_loader.py: .py .md .toml .txt .json only; dot-files,
             // dot-directories, __pycache__ and .pyc skipped; read as Python text mode does
             // (strict UTF-8, CRLF and CR become LF); unreadable files skipped
};
// The order of files in the fixture text.
enum class FixtureOrder {
  kSorted,  // relative paths sorted bytewise: the same on every file system
  kWalk,    // os.walk's top-down order: each folder's files in directory-read order, then its
            // subfolders in directory-read order. Matches the harness on the same file system.
};

const char* fixture_rules_name(FixtureRules rules);  // "all" | "harness"
const char* fixture_order_name(FixtureOrder order);  // "sorted" | "walk"

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

// An entry the rules left out, for a warning line. Directories end with '/'.
struct SkippedFixture {
  std::string path;
  std::string reason;  // "dot-file", "extension .cfg", "not UTF-8 (byte 12)", ...
};

struct FixtureTree {
  std::filesystem::path root;        // as given
  std::vector<std::string> include;  // globs; empty = every file
  FixtureRules rules = FixtureRules::kAll;
  FixtureOrder order = FixtureOrder::kSorted;
  std::vector<FixtureFile> files;       // selected, in `order`
  std::vector<FixtureDir> dirs;         // every directory descended, root first
  std::vector<SkippedFixture> skipped;  // left out by the rules while listing, in walk order
};

// Lists (stats, does not read) the selected files. Symlinks resolving outside the tree are an
// error; symlinked directories are not descended (their files are reached directly). Skipped
// entries are reported when no include glob narrows the tree, or (files) when a glob matches
// them. Throws InputError on a missing directory, an include glob matching no selected file, or
// an empty selection; under kAll also on a folder that cannot be listed.
FixtureTree list_fixture_tree(const std::filesystem::path& root,
                              const std::vector<std::string>& include,
                              FixtureRules rules = FixtureRules::kAll,
                              FixtureOrder order = FixtureOrder::kSorted);

// Reads one listed file's bytes; throws InputError "<file>: cannot read: <reason>".
std::string read_fixture_file(const FixtureTree& tree, const FixtureFile& file);

// The text a file's bytes contribute under `rules`. kAll: the bytes themselves, which must be
// UTF-8 (InputError "<shown_path>: invalid UTF-8 at byte N"). kHarness: strict UTF-8 decoding and
// universal newlines (CRLF and lone CR become LF), as Python's open(..., encoding="utf-8") reads;
// bytes that are not UTF-8 give no text and `skip_reason` says why.
struct FixtureContent {
  std::optional<std::string> text;
  std::string skip_reason;
};
FixtureContent fixture_content(std::string bytes, FixtureRules rules,
                               const std::string& shown_path);

// (relative path, text) of each file that enters the prompts, in order.
using FixtureTexts = std::vector<std::pair<std::string, std::string>>;

// `===== FILE: <path> =====\n<text>\n` per file, joined by "\n" (the seed harness's format).
std::string fixture_text(const FixtureTexts& files);

// Each file as the harness's later runner formats a retrieved snippet of a whole file:
// "### Snippet: <path> (lines [1, <n>])" and "```\n<text>\n```\n", all joined by "\n".
std::string fixture_snippets(const FixtureTexts& files);

}  // namespace flowrank::flow
