// fixture_rules = "harness" | "all" and fixture_order = "sorted" | "walk", on trees made for each
// rule: what the seed harness's fixture_loader.py takes, skips and how it reads text.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "flow_test_support.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/fixtures.hpp"
#include "flowrank/flow/flow_cache.hpp"

namespace flowrank::flow {
namespace {
using namespace testing;

std::map<std::string, std::string> skipped_of(const std::vector<SkippedFixture>& skipped) {
  std::map<std::string, std::string> out;
  for (const auto& k : skipped) out[k.path] = k.reason;
  return out;
}

// A tree with one entry for each of the harness loader's rules.
void write_rule_tree(const TempDir& d) {
  write(d / "fx/keep.py", "x = 1\n");
  write(d / "fx/README.md", "# R\n");
  write(d / "fx/pyproject.toml", "[p]\n");
  write(d / "fx/notes.txt", "n\n");
  write(d / "fx/data.json", "{}\n");
  write(d / "fx/docs/guide.md", "g\n");
  write(d / "fx/pkg/sub/mod.py", "m\n");
  write(d / "fx/.env", "SECRET=1\n");                            // dot-file
  write(d / "fx/.git/config", "[core]\n");                       // dot-folder
  write(d / "fx/__pycache__/keep.cpython-311.pyc", "\x01\x02");  // __pycache__ folder
  write(d / "fx/pkg/__pycache__/mod.pyc", "\x01");
  write(d / "fx/stale.pyc", "\x01");       // .pyc outside __pycache__
  write(d / "fx/run.sh", "echo\n");        // other extension
  write(d / "fx/Makefile", "all:\n");      // no extension
  write(d / "fx/data.JSON", "{}\n");       // extensions are case-sensitive
  write(d / "fx/trailing.", "t\n");        // Path("trailing.").suffix == ""
  write(d / "fx/archive.tar.json", "{}");  // the last suffix counts: taken
}

TEST(FixtureRulesTest, HarnessTakesAndSkipsAsItsLoader) {
  TempDir d;
  write_rule_tree(d);
  const FixtureTree t = list_fixture_tree(d / "fx", {}, FixtureRules::kHarness);
  EXPECT_EQ(paths_of(t),
            (std::vector<std::string>{"README.md", "archive.tar.json", "data.json", "docs/guide.md",
                                      "keep.py", "notes.txt", "pkg/sub/mod.py", "pyproject.toml"}));
  const auto skipped = skipped_of(t.skipped);
  EXPECT_EQ(skipped.size(), 9u);
  EXPECT_EQ(skipped.at(".env"), "dot-file");
  EXPECT_EQ(skipped.at(".git/"), "dot-folder");
  EXPECT_EQ(skipped.at("__pycache__/"), "__pycache__ folder");
  EXPECT_EQ(skipped.at("pkg/__pycache__/"), "__pycache__ folder");
  EXPECT_EQ(skipped.at("stale.pyc"), ".pyc file");
  EXPECT_NE(skipped.at("run.sh").find("extension .sh"), std::string::npos);
  EXPECT_NE(skipped.at("data.JSON").find("extension .JSON"), std::string::npos);
  EXPECT_EQ(skipped.at("Makefile"), "no extension the harness takes");
  EXPECT_EQ(skipped.at("trailing."), "no extension the harness takes");
  for (const auto& f : t.files) EXPECT_EQ(f.path.find("__pycache__"), std::string::npos);

  // "all" takes every regular file and skips nothing.
  const FixtureTree all = list_fixture_tree(d / "fx", {}, FixtureRules::kAll);
  EXPECT_EQ(all.files.size(), t.files.size() + 9u);  // .git/config and both .pyc inside
  EXPECT_TRUE(all.skipped.empty());
}

TEST(FixtureRulesTest, IncludeGlobsNarrowWhatIsReported) {
  TempDir d;
  write_rule_tree(d);
  const FixtureTree t = list_fixture_tree(d / "fx", {"*"}, FixtureRules::kHarness);
  EXPECT_EQ(paths_of(t), (std::vector<std::string>{"README.md", "archive.tar.json", "data.json",
                                                   "keep.py", "notes.txt", "pyproject.toml"}));
  // Only top-level files a glob would have taken are named; skipped folders are not.
  std::set<std::string> named;
  for (const auto& [path, reason] : skipped_of(t.skipped)) named.insert(path);
  EXPECT_EQ(named, (std::set<std::string>{".env", "Makefile", "data.JSON", "run.sh", "stale.pyc",
                                          "trailing."}));
  expect_input_error([&] { list_fixture_tree(d / "fx", {"*.sh"}, FixtureRules::kHarness); },
                     {"\"*.sh\" matches no file that fixture_rules \"harness\" takes"});
}

TEST(FixtureRulesTest, SymlinksAndSpecialFiles) {
  TempDir d;
  write(d / "fx/real.py", "r\n");
  fs::create_symlink(d / "fx/real.py", d / "fx/alias.py");
  fs::create_symlink(d / "fx/missing.py", d / "fx/dangling.py");
  fs::create_directory_symlink(d / "fx", d / "fx/loop");
  const std::string sock = (d / "fx/s.py").string();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.size(), sizeof addr.sun_path);
  std::copy(sock.begin(), sock.end(), addr.sun_path);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);

  const FixtureTree t = list_fixture_tree(d / "fx", {}, FixtureRules::kHarness);
  EXPECT_EQ(paths_of(t), (std::vector<std::string>{"alias.py", "real.py"}));
  const auto skipped = skipped_of(t.skipped);
  EXPECT_EQ(skipped.at("dangling.py"), "dangling symlink");
  EXPECT_EQ(skipped.at("s.py"), "not a regular file");
  EXPECT_EQ(skipped.size(), 2u);
  expect_input_error([&] { list_fixture_tree(d / "fx", {}, FixtureRules::kAll); },
                     {"dangling.py", "dangling symlink"});
}

TEST(FixtureRulesTest, TextModeReading) {
  // Python's text mode: CRLF and lone CR become LF; a BOM stays (encoding "utf-8", not
  // "utf-8-sig").
  const FixtureContent c =
      fixture_content("a\r\nb\rc\r\r\nd\n\xef\xbb\xbf", FixtureRules::kHarness, "f.py");
  EXPECT_EQ(c.text, "a\nb\nc\n\nd\n\xef\xbb\xbf");
  EXPECT_EQ(fixture_content("a\r\n", FixtureRules::kAll, "f.py").text, "a\r\n");
  const FixtureContent bad = fixture_content("ok\xff", FixtureRules::kHarness, "f.py");
  EXPECT_FALSE(bad.text.has_value());
  EXPECT_EQ(bad.skip_reason, "not UTF-8 (byte 2)");
  expect_input_error([] { fixture_content("ok\xff", FixtureRules::kAll, "f.py"); },
                     {"f.py: invalid UTF-8 at byte 2"});
}

// The os.walk order, computed independently: each folder's entries as std::filesystem reads
// them (readdir order), its files first, then each subfolder's walk.
void os_walk(const fs::path& root, const std::string& rel, std::vector<std::string>& out) {
  std::vector<std::string> subdirs;
  for (const auto& e : fs::directory_iterator(rel.empty() ? root : root / rel)) {
    const std::string name = e.path().filename().string();
    const std::string path = rel.empty() ? name : rel + "/" + name;
    if (e.is_directory())
      subdirs.push_back(path);
    else
      out.push_back(path);
  }
  for (const auto& s : subdirs) os_walk(root, s, out);
}

TEST(FixtureOrderTest, WalkIsFilesFirstInDirectoryReadOrder) {
  TempDir d;
  // Names chosen so that sorted order and walk order must differ: "a/..." sorts before "z.txt",
  // but os.walk yields a folder's own files before any subfolder.
  for (const char* p : {"z.txt", "m.md", "a/x.py", "a/b/y.py", "a/c.json", "q/r.txt", "b.txt"})
    write(d / "fx" / p, p);
  const FixtureTree walk = list_fixture_tree(d / "fx", {}, FixtureRules::kAll, FixtureOrder::kWalk);
  std::vector<std::string> expected;
  os_walk(d / "fx", "", expected);
  EXPECT_EQ(paths_of(walk), expected);
  auto pos = [&](const std::string& p) {
    return std::find(expected.begin(), expected.end(), p) - expected.begin();
  };
  EXPECT_LT(pos("z.txt"), pos("a/x.py"));
  EXPECT_LT(pos("a/c.json"), pos("a/b/y.py"));

  const FixtureTree sorted = list_fixture_tree(d / "fx", {}, FixtureRules::kAll);
  std::vector<std::string> by_path = expected;
  std::sort(by_path.begin(), by_path.end());
  EXPECT_EQ(paths_of(sorted), by_path);
}

// Runs `fn` in a child process without root's right to read anything (so that a mode-000 file
// is unreadable, as it is for the harness's users); returns what `fn` returned.
std::string as_unprivileged(const std::function<std::string()>& fn) {
  if (::geteuid() != 0) return fn();
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string out;
    if (::setegid(65534) != 0 || ::seteuid(65534) != 0) {
      out = "cannot drop privileges";
    } else {
      try {
        out = fn();
      } catch (const std::exception& e) {
        out = std::string("exception: ") + e.what();
      }
    }
    if (::write(pipe_fds[1], out.data(), out.size()) < 0) ::_exit(2);
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

class RulesExpandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write(dir / "job/flow.json", R"({"name": "t", "input": "Review.", "steps": [
        {"name": "planner", "instruction": "Plan."}]})");
    write(dir / "job/suite.json", R"(["Task one.", "Task two."])");
  }
  void write_job(const std::string& extra) {
    write(dir / "job/j.toml",
          "name = \"j\"\nflow = \"flow.json\"\nfixtures = \"../fx\"\n"
          "suite = \"suite.json\"\nworkflows = 2\n" +
              extra);
  }
  ExpansionResult expand(bool cached = true) {
    return expand_job(load_job(dir / "job/j.toml"), cached ? &cache : nullptr);
  }
  TempDir dir;
  FlowCache cache{dir / "cache"};
};

// An unreadable file: the harness skipped it silently, "harness" names it, "all" refuses it.
TEST_F(RulesExpandTest, UnreadableFile) {
  write(dir / "fx/ok.py", "ok\n");
  write(dir / "fx/locked.py", "secret\n");
  ::chmod((dir / "fx/locked.py").c_str(), 0);
  for (const fs::path& p : {dir.path(), dir / "fx", dir / "job"}) ::chmod(p.c_str(), 0755);
  for (const char* f : {"fx/ok.py", "job/flow.json", "job/suite.json"})
    ::chmod((dir / f).c_str(), 0644);

  write_job("");
  ::chmod((dir / "job/j.toml").c_str(), 0644);
  const std::string harness = as_unprivileged([&] {
    const ExpansionResult r = expand(false);
    std::string out = std::to_string(r.job.fixture_files);
    for (const auto& k : r.job.fixture_skipped) out += "|" + k.path + ":" + k.reason;
    return out;
  });
  EXPECT_EQ(harness, "1|locked.py:cannot read: Permission denied");

  write_job("fixture_rules = \"all\"\n");
  ::chmod((dir / "job/j.toml").c_str(), 0644);
  const std::string all = as_unprivileged([&] {
    try {
      expand(false);
      return std::string("no error");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
  });
  EXPECT_NE(all.find("locked.py: cannot read: Permission denied"), std::string::npos) << all;
}

TEST_F(RulesExpandTest, SkipsTravelWithTheCacheEntryAndShapeTheKey) {
  write(dir / "fx/a.py", "a\r\nb\r\n");  // 6 bytes on disk, 4 as text
  write(dir / "fx/.hidden.py", "h\n");
  write(dir / "fx/sub/z.md", "z\n");
  write_job("");
  const ExpansionResult first = expand();
  EXPECT_FALSE(first.hit);
  EXPECT_EQ(first.job.fixture_bytes, 4u + 2u);
  EXPECT_EQ(first.job.fixture_text,
            "===== FILE: a.py =====\na\nb\n\n\n===== FILE: sub/z.md =====\nz\n\n");
  ASSERT_EQ(first.job.fixture_skipped.size(), 1u);
  const ExpansionResult second = expand();
  EXPECT_TRUE(second.hit);
  ASSERT_EQ(second.job.fixture_skipped.size(), 1u);
  EXPECT_EQ(second.job.fixture_skipped[0].path, ".hidden.py");
  EXPECT_EQ(second.job.fixture_skipped[0].reason, "dot-file");

  // Every rule and order is its own key; a new skipped file changes the key (its warning must
  // show), a changed file's CRLF text too.
  std::set<std::string> keys = {first.key};
  write_job("fixture_rules = \"all\"\n");
  EXPECT_TRUE(keys.insert(expand().key).second);
  write_job("fixture_order = \"walk\"\n");
  EXPECT_TRUE(keys.insert(expand().key).second);
  write_job("");
  write(dir / "fx/tool.sh", "s\n");
  const ExpansionResult more = expand();
  EXPECT_FALSE(more.hit);
  EXPECT_TRUE(keys.insert(more.key).second);
  EXPECT_EQ(more.job.fixture_skipped.size(), 2u);
}

}  // namespace
}  // namespace flowrank::flow
