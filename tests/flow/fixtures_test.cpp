#include "flowrank/flow/fixtures.hpp"

#include <gtest/gtest.h>

#include "flow_test_support.hpp"

namespace flowrank::flow {
namespace {
using namespace testing;

TEST(GlobMatch, Table) {
  struct Row {
    const char* pattern;
    const char* path;
    bool match;
  };
  const Row rows[] = {
      {"*.py", "a.py", true},
      {"*.py", "d/a.py", false},  // * stays inside a segment
      {"**/*.py", "a.py", true},  // **/ may match zero segments
      {"**/*.py", "d/e/a.py", true},
      {"d/*.py", "d/a.py", true},
      {"d/*.py", "d/e/a.py", false},
      {"d/**", "d/e/a.py", true},
      {"d/**", "d", false},
      {"d/**/a.py", "d/a.py", true},
      {"d/**/a.py", "d/x/y/a.py", true},
      {"d/**/a.py", "dx/a.py", false},
      {"d/**/a.py", "d/x/b.py", false},
      {"?.md", "a.md", true},
      {"?.md", "ab.md", false},
      {"?", "/", false},  // ? does not match the separator
      {"README.md", "README.md", true},
      {"README.md", "docs/README.md", false},
      {"a*b*c", "aXbYc", true},
      {"a*b*c", "a/b/c", false},
      {"**", "x/y/z", true},
      {"helpdesk/domain/*.py", "helpdesk/domain/ticket.py", true},
      {"helpdesk/domain/*.py", "helpdesk/domain/sub/ticket.py", false},
      {"*.PY", "a.py", false},  // case-sensitive
      {"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
  };
  for (const Row& r : rows)
    EXPECT_EQ(glob_match(r.pattern, r.path), r.match) << r.pattern << " vs " << r.path;
}

TEST(FixtureTreeTest, ListsSortedBytewiseWithSizes) {
  TempDir d;
  // Created out of order; uppercase and dot sort before lowercase bytewise.
  write(d / "z.txt", "zz");
  write(d / "B.md", "b");
  write(d / "sub/b.txt", "bbb");
  write(d / "a.txt", "a");
  write(d / "sub/a/c.txt", "cccc");
  write(d / ".hidden", "h");
  const FixtureTree t = list_fixture_tree(d.path(), {});
  EXPECT_EQ(paths_of(t), (std::vector<std::string>{".hidden", "B.md", "a.txt", "sub/a/c.txt",
                                                   "sub/b.txt", "z.txt"}));
  EXPECT_EQ(t.files[3].size, 4u);
  EXPECT_EQ(t.files[3].mtime_ns, mtime_ns(d / "sub/a/c.txt"));
}

TEST(FixtureTreeTest, IncludeGlobs) {
  TempDir d;
  write(d / "z.txt", "zz");
  write(d / "sub/b.txt", "bbb");
  write(d / "sub/a/c.py", "c");
  write(d / "a.txt", "a");
  EXPECT_EQ(paths_of(list_fixture_tree(d.path(), {"*.txt"})),
            (std::vector<std::string>{"a.txt", "z.txt"}));
  EXPECT_EQ(paths_of(list_fixture_tree(d.path(), {"sub/**"})),
            (std::vector<std::string>{"sub/a/c.py", "sub/b.txt"}));
  EXPECT_EQ(paths_of(list_fixture_tree(d.path(), {"**/*.py", "z.txt"})),
            (std::vector<std::string>{"sub/a/c.py", "z.txt"}));
  expect_input_error(
      [&] {
        list_fixture_tree(d.path(), {"*.txt", "docs/*.md"});
      },
      {d.path().string(), "\"docs/*.md\" matches no file"});
}

TEST(FixtureTreeTest, EmptySelectionAndMissingDir) {
  TempDir d;
  fs::create_directories(d / "empty/sub");
  expect_input_error([&] { list_fixture_tree(d / "empty", {}); },
                     {(d / "empty").string(), "no fixture files selected"});
  expect_input_error([&] { list_fixture_tree(d / "absent", {}); },
                     {(d / "absent").string(), "not a directory"});
}

TEST(FixtureTreeTest, InvalidUtf8NamesFileAndByte) {
  TempDir d;
  write(d / "ok.txt", "fine");
  write(d / "bad.txt", std::string("ab\xff", 3));
  write(d / "overlong.txt", std::string("x\xc0\xaf", 3));
  const FixtureTree t = list_fixture_tree(d.path(), {});
  ASSERT_EQ(paths_of(t), (std::vector<std::string>{"bad.txt", "ok.txt", "overlong.txt"}));
  auto content = [&](std::size_t i) {
    return fixture_content(read_fixture_file(t, t.files[i]), FixtureRules::kAll,
                           (d / t.files[i].path).string());
  };
  expect_input_error([&] { content(0); }, {(d / "bad.txt").string(), "invalid UTF-8 at byte 2"});
  expect_input_error([&] { content(2); },
                     {(d / "overlong.txt").string(), "invalid UTF-8 at byte 1"});
  EXPECT_EQ(content(1).text, "fine");
}

TEST(FixtureTreeTest, Symlinks) {
  TempDir d;
  write(d / "outside.txt", "secret");
  write(d / "tree/real.txt", "real");
  fs::create_directory_symlink(d / "tree", d / "tree/loop");  // inside: not descended
  fs::create_symlink(d / "tree/real.txt", d / "tree/alias.txt");
  const FixtureTree t = list_fixture_tree(d / "tree", {});
  EXPECT_EQ(paths_of(t), (std::vector<std::string>{"alias.txt", "real.txt"}));

  fs::create_symlink(d / "outside.txt", d / "tree/leak.txt");
  expect_input_error([&] { list_fixture_tree(d / "tree", {}); },
                     {(d / "tree/leak.txt").string(), "outside the fixture directory"});
}

TEST(FixtureTextTest, AssembledAsFormatsSays) {
  TempDir d;
  write(d / "sub/b.txt", "beta");
  write(d / "a.txt", "alpha\n");
  const FixtureTree t = list_fixture_tree(d.path(), {});
  FixtureTexts texts;
  for (const auto& f : t.files) texts.emplace_back(f.path, read_fixture_file(t, f));
  EXPECT_EQ(fixture_text(texts),
            "===== FILE: a.txt =====\nalpha\n\n"
            "\n"
            "===== FILE: sub/b.txt =====\nbeta\n");
}

}  // namespace
}  // namespace flowrank::flow
