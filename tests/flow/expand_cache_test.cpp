#include <gtest/gtest.h>

#include <chrono>

#include "flow_test_support.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/flow_cache.hpp"

namespace flowrank::flow {
namespace {
using namespace testing;

// Fixture mtimes safely in the past: the manifest only vouches for files older than its own
// racy window (see expand.cpp), as a just-written file could still change within one tick.
constexpr int64_t kOldMtime = 1600000000LL * 1000000000LL + 123456789;

class ExpandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write(dir / "fx/sub/b.txt", "beta");
    write(dir / "fx/a.txt", "alpha\n");
    write(dir / "fx/c.md", "gamma");
    age_fixtures();
    write(dir / "job/flow.json", R"({"name": "t", "input": "Review.", "steps": [
        {"name": "planner", "instruction": "Plan.", "sampling": {"max_tokens": 128}},
        {"name": "executor", "instruction": "Do.", "uses": ["planner"]}]})");
    write(dir / "job/suite.json", R"({"name": "s", "tasks": [
        {"id": "t0", "prompt": "Task zero."}, {"id": "t1", "prompt": "Task one."},
        {"id": "t2", "prompt": "Task two."}]})");
    write_job("");
  }
  void age_fixtures() {
    int64_t i = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir / "fx"))
      if (e.is_regular_file()) set_mtime_ns(e.path(), kOldMtime + 1000 * ++i);
  }
  void write_job(const std::string& extra, int workflows = 2) {
    write(dir / "job/j.toml",
          "name = \"j\"\nflow = \"flow.json\"\nfixtures = \"../fx\"\n"
          "suite = \"suite.json\"\nworkflows = " +
              std::to_string(workflows) + "\n" + extra);
  }
  ExpansionResult expand() { return expand_job(load_job(dir / "job/j.toml"), &cache); }
  // The seed layout's defaults: harness rules, sorted order.
  fs::path manifest() const {
    return cache.manifest_path(dir / "fx", {}, FixtureRules::kHarness, FixtureOrder::kSorted);
  }

  TempDir dir;
  FlowCache cache{dir / "cache"};
};

TEST_F(ExpandTest, ExpandsWithEffectiveSampling) {
  write_job("[sampling]\ntemperature = 0.7\nmax_tokens = 300\n[steps.planner]\nmax_tokens = 64\n");
  const ExpansionResult r = expand_job(load_job(dir / "job/j.toml"), nullptr);
  const ExpandedJob& job = r.job;
  EXPECT_FALSE(r.hit);
  EXPECT_EQ(r.key.size(), 64u);
  EXPECT_EQ(job.job_name, "j");
  EXPECT_EQ(job.input, "Review.");
  EXPECT_EQ(job.fixture_files, 3u);
  EXPECT_EQ(job.fixture_bytes, 6u + 5u + 4u);
  EXPECT_EQ(job.fixture_text,
            "===== FILE: a.txt =====\nalpha\n\n\n===== FILE: c.md =====\ngamma\n\n"
            "===== FILE: sub/b.txt =====\nbeta\n");
  ASSERT_EQ(job.workflows.size(), 2u);
  EXPECT_EQ(job.workflows[1].index, 1);
  EXPECT_EQ(job.workflows[1].task_id, "t1");
  EXPECT_EQ(job.workflows[1].task, "Task one.");
  const auto& steps = job.workflows[0].steps;
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[1].uses, std::vector<int32_t>{0});
  // template 128 < [sampling] 300 < [steps.planner] 64
  EXPECT_EQ(steps[0].sampling.max_tokens, 64);
  EXPECT_EQ(steps[1].sampling.max_tokens, 300);
  EXPECT_FLOAT_EQ(steps[0].sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(steps[1].sampling.top_p, 1.0f);  // default
}

TEST_F(ExpandTest, WorkflowsBeyondSuiteAndUnknownStepOverride) {
  write_job("", 4);
  const std::string job = (dir / "job/j.toml").string();
  expect_input_error([&] { expand(); }, {job, "workflows", "4", "3 tasks"});
  write_job("");
  JobSpec spec = load_job(dir / "job/j.toml");
  apply_overrides(spec, JobOverrides{{}, {}, {}, 5});
  expect_input_error([&] { expand_job(spec, nullptr); },
                     {"--workflows", "5", "3 tasks", "suite.json"});
  write_job("[steps.reviewer]\nmax_tokens = 5\n");
  expect_input_error([&] { expand(); }, {job, "steps.reviewer", "no step named 'reviewer'"});
}

// Under fixture_rules "all" a file that is not UTF-8 is an error; the harness rules skip it (its
// loader's decode failed and it moved on), and say so.
TEST_F(ExpandTest, InvalidUtf8FixtureThroughExpand) {
  write(dir / "fx/bad.py", std::string("ok\n\xe2\x82", 5));  // cut-short sequence at byte 3
  write_job("fixture_rules = \"all\"\n");
  expect_input_error([&] { expand(); }, {(dir / "fx/bad.py").string(), "invalid UTF-8 at byte 3"});
  write_job("");
  const ExpansionResult r = expand();
  EXPECT_EQ(r.job.fixture_files, 3u);
  ASSERT_EQ(r.job.fixture_skipped.size(), 1u);
  EXPECT_EQ(r.job.fixture_skipped[0].path, "bad.py");
  EXPECT_EQ(r.job.fixture_skipped[0].reason, "not UTF-8 (byte 3)");
}

TEST_F(ExpandTest, MissThenHitWithoutReadingFixtures) {
  const ExpansionResult first = expand();
  EXPECT_FALSE(first.hit);
  EXPECT_FALSE(first.warning.has_value());
  EXPECT_EQ(first.fixture_files_read, 3u);
  EXPECT_TRUE(fs::exists(cache.entry_path(first.key)));
  EXPECT_TRUE(fs::exists(manifest()));

  const ExpansionResult second = expand();
  EXPECT_TRUE(second.hit);
  EXPECT_FALSE(second.warning.has_value());
  EXPECT_EQ(second.key, first.key);
  EXPECT_EQ(second.fixture_files_read, 0u);
  EXPECT_EQ(serialize_expanded_job(second.job), serialize_expanded_job(first.job));

  // Same key without a cache: the key depends on content only.
  EXPECT_EQ(expand_job(load_job(dir / "job/j.toml"), nullptr).key, first.key);
}

// A hit on unchanged raw inputs goes through the alias file (raw-input key -> content key). A
// garbled alias, or one naming no entry, must only cost the full path: still a correct hit, and
// the alias is rewritten.
TEST_F(ExpandTest, BadAliasFallsBackToTheContentKey) {
  const ExpansionResult first = expand();
  std::vector<fs::path> aliases;
  for (const auto& e : fs::directory_iterator(dir / "cache"))
    if (e.path().filename().string().rfind("alias-", 0) == 0) aliases.push_back(e.path());
  ASSERT_EQ(aliases.size(), 1u);
  for (const std::string& bad : {std::string("not a key"), std::string(64, 'a'), std::string()}) {
    write(aliases[0], bad);
    const ExpansionResult again = expand();
    EXPECT_TRUE(again.hit) << bad;
    EXPECT_EQ(again.key, first.key);
    EXPECT_EQ(again.job.fixture_text, first.job.fixture_text);
    EXPECT_EQ(read_file(aliases[0]), first.key) << "alias repaired";
  }
}

// With the directories old enough too, the manifest vouches for the listing itself (directory
// mtimes), so a hit stats instead of walking the tree. Adding a file changes its directory's
// mtime: the next run must list again, see the file and miss.
TEST_F(ExpandTest, VouchedListingStillSeesAddedAndRemovedFiles) {
  auto age_dirs = [&] {
    for (const fs::path& d : {dir / "fx", dir / "fx/sub"}) set_mtime_ns(d, kOldMtime);
  };
  age_dirs();
  const ExpansionResult first = expand();
  EXPECT_FALSE(first.hit);
  EXPECT_NE(read_file(manifest()).find("\nD\t"), std::string::npos);
  const ExpansionResult second = expand();
  EXPECT_TRUE(second.hit);
  EXPECT_EQ(second.fixture_files_read, 0u);

  write(dir / "fx/sub/new.txt", "delta");
  set_mtime_ns(dir / "fx/sub/new.txt", kOldMtime + 99);  // an old file moved in
  const ExpansionResult added = expand();
  EXPECT_FALSE(added.hit);
  EXPECT_EQ(added.job.fixture_files, 4u);
  EXPECT_NE(added.job.fixture_text.find("delta"), std::string::npos);

  age_dirs();
  (void)expand();  // records the new listing
  fs::remove(dir / "fx/c.md");
  const ExpansionResult removed = expand();
  EXPECT_FALSE(removed.hit);
  EXPECT_EQ(removed.job.fixture_files, 3u);
  EXPECT_EQ(removed.job.fixture_text.find("gamma"), std::string::npos);
}

// Old template and suite files enter the raw-input key by path, size and mtime; a changed file
// changes its mtime, so the next run takes the full path and sees the new content.
TEST_F(ExpandTest, OldTemplateAndSuiteStillMissWhenEdited) {
  set_mtime_ns(dir / "job/flow.json", kOldMtime);
  set_mtime_ns(dir / "job/suite.json", kOldMtime);
  const ExpansionResult first = expand();
  EXPECT_TRUE(expand().hit);
  write(dir / "job/suite.json", R"({"name": "s", "tasks": [
        {"id": "t0", "prompt": "Task ZERO."}, {"id": "t1", "prompt": "Task one."}]})");
  set_mtime_ns(dir / "job/suite.json", kOldMtime + 5);
  const ExpansionResult edited = expand();
  EXPECT_FALSE(edited.hit);
  EXPECT_NE(edited.key, first.key);
  EXPECT_EQ(edited.job.workflows[0].task, "Task ZERO.");
  EXPECT_TRUE(expand().hit);
  write(dir / "job/flow.json", R"({"name": "t", "input": "Review again.", "steps": [
        {"name": "planner", "instruction": "Plan."}]})");
  set_mtime_ns(dir / "job/flow.json", kOldMtime + 7);
  const ExpansionResult retemplated = expand();
  EXPECT_FALSE(retemplated.hit);
  EXPECT_EQ(retemplated.job.input, "Review again.");
}

// The real proof that a hit does not read fixture bytes: change a file's bytes but keep its
// size and mtime. Reading it would change the key (a miss); a hit serves the recorded text.
TEST_F(ExpandTest, HitTrustsUnchangedSizeAndMtime) {
  const ExpansionResult first = expand();
  const int64_t old = mtime_ns(dir / "fx/a.txt");
  write(dir / "fx/a.txt", "ALPHA\n");
  set_mtime_ns(dir / "fx/a.txt", old);
  const ExpansionResult second = expand();
  EXPECT_TRUE(second.hit);
  EXPECT_EQ(second.fixture_files_read, 0u);
  EXPECT_NE(second.job.fixture_text.find("alpha"), std::string::npos);

  // Once the mtime moves, the file is read again and the new bytes miss.
  set_mtime_ns(dir / "fx/a.txt", old + 1);
  const ExpansionResult third = expand();
  EXPECT_FALSE(third.hit);
  EXPECT_EQ(third.fixture_files_read, 3u);  // 1 to hash it, then the other 2 for the text
  EXPECT_NE(third.key, first.key);
  EXPECT_NE(third.job.fixture_text.find("ALPHA"), std::string::npos);
}

TEST_F(ExpandTest, FreshFilesAreNotVouchedFor) {
  write(dir / "fx/new.txt", "new");  // mtime = now: inside the racy window
  const ExpansionResult first = expand();
  EXPECT_FALSE(first.hit);
  const ExpansionResult second = expand();
  EXPECT_TRUE(second.hit);
  EXPECT_EQ(second.fixture_files_read, 1u);  // only the fresh file is re-hashed
}

TEST_F(ExpandTest, EachInputChangeMisses) {
  const std::string base = expand().key;
  auto key_after = [&](const std::function<void()>& change) {
    change();
    return expand().key;
  };
  // One fixture byte (same size, new mtime).
  const std::string k1 = key_after([&] {
    write(dir / "fx/sub/b.txt", "betA");
    set_mtime_ns(dir / "fx/sub/b.txt", kOldMtime + 999999);
  });
  EXPECT_NE(k1, base);
  const std::string k2 = key_after([&] {
    write(dir / "job/suite.json", R"({"name": "s", "tasks": [
        {"id": "t0", "prompt": "Task zero!"}, {"id": "t1", "prompt": "Task one."},
        {"id": "t2", "prompt": "Task two."}]})");
  });
  EXPECT_NE(k2, k1);
  const std::string k3 = key_after([&] {
    write(dir / "job/flow.json", R"({"name": "t", "input": "Review!", "steps": [
        {"name": "planner", "instruction": "Plan.", "sampling": {"max_tokens": 128}},
        {"name": "executor", "instruction": "Do.", "uses": ["planner"]}]})");
  });
  EXPECT_NE(k3, k2);
  const std::string k4 = key_after([&] { write_job("layout = \"context-first\"\n"); });
  EXPECT_NE(k4, k3);
  const std::string k5 = key_after([&] { write_job("chat = true\n"); });
  EXPECT_NE(k5, k3);
  const std::string k6 = key_after([&] { write_job("", 3); });
  EXPECT_NE(k6, k3);
  const std::string k7 = key_after([&] { write_job("[steps.executor]\nseed = 5\n"); });
  EXPECT_NE(k7, k3);
  const std::string k8 =
      key_after([&] { write_job("fixture_include = [\"*.txt\", \"**/*.txt\"]\n"); });
  EXPECT_NE(k8, k3);
  // The job's name and engine settings do not shape prompts: same key, served under the new name.
  write_job("[engine]\nmax_seqs = 3\n");
  write(dir / "job/j.toml", "name = \"renamed\"\n" + slurp(dir / "job/j.toml").substr(11));
  const ExpansionResult renamed = expand();
  EXPECT_EQ(renamed.key, k3);
  EXPECT_TRUE(renamed.hit);
  EXPECT_EQ(renamed.job.job_name, "renamed");
  // Reformatting the template (same JSON content) keeps the key.
  write(dir / "job/flow.json", R"({"steps": [
        {"instruction": "Plan.", "name": "planner", "sampling": {"max_tokens": 128}},
        {"uses": ["planner"], "name": "executor", "instruction": "Do."}],
      "input": "Review!", "name": "t"})");
  EXPECT_EQ(expand().key, k3);
}

TEST_F(ExpandTest, TruncatedEntryIsReportedAndRebuilt) {
  const ExpansionResult first = expand();
  const fs::path entry = cache.entry_path(first.key);
  const std::string bytes = slurp(entry);
  write(entry, bytes.substr(0, bytes.size() - 10));
  const ExpansionResult second = expand();
  EXPECT_FALSE(second.hit);
  ASSERT_TRUE(second.warning.has_value());
  EXPECT_NE(second.warning->find(entry.string()), std::string::npos) << *second.warning;
  EXPECT_NE(second.warning->find("truncated"), std::string::npos) << *second.warning;
  EXPECT_EQ(second.warning->find('\n'), std::string::npos);
  EXPECT_EQ(serialize_expanded_job(second.job), serialize_expanded_job(first.job));
  EXPECT_EQ(slurp(entry), bytes);  // rewritten whole
  const ExpansionResult third = expand();
  EXPECT_TRUE(third.hit);
  EXPECT_FALSE(third.warning.has_value());
}

TEST_F(ExpandTest, FlippedByteIsReportedAndRebuilt) {
  const ExpansionResult first = expand();
  const fs::path entry = cache.entry_path(first.key);
  std::string bytes = slurp(entry);
  // Flip a byte inside the fixture text: still valid JSON, so only the checksum can tell.
  const std::size_t at = bytes.find("gamma");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'G';
  write(entry, bytes);
  const ExpansionResult second = expand();
  EXPECT_FALSE(second.hit);
  ASSERT_TRUE(second.warning.has_value());
  EXPECT_NE(second.warning->find("checksum mismatch"), std::string::npos) << *second.warning;
  EXPECT_NE(second.job.fixture_text.find("gamma"), std::string::npos);
  EXPECT_EQ(second.job.fixture_text.find("Gamma"), std::string::npos);
  EXPECT_TRUE(expand().hit);
}

TEST_F(ExpandTest, DirectCacheLoadStates) {
  const ExpansionResult first = expand();
  EXPECT_FALSE(cache.load(std::string(64, '0')).job.has_value());  // absent: no warning
  EXPECT_FALSE(cache.load(std::string(64, '0')).warning.has_value());
  write(cache.entry_path("garbage"), "not a cache entry");
  const auto bad = cache.load("garbage");
  EXPECT_FALSE(bad.job.has_value());
  ASSERT_TRUE(bad.warning.has_value());
  const auto good = cache.load(first.key);
  ASSERT_TRUE(good.job.has_value());
  EXPECT_EQ(good.job->fixture_text, first.job.fixture_text);
}

TEST_F(ExpandTest, CorruptManifestOnlyCostsReads) {
  const ExpansionResult first = expand();
  write(manifest(), "{ broken");
  const ExpansionResult second = expand();
  EXPECT_TRUE(second.hit);
  EXPECT_EQ(second.fixture_files_read, 3u);
  EXPECT_EQ(expand().fixture_files_read, 0u);  // manifest rewritten
}

TEST_F(ExpandTest, SerialisationRoundTrip) {
  write_job(
      "[sampling]\nstop = [\"<END>\", \"\\u00e9\"]\nseed = 18446744073709551\ntop_k = 3\n"
      "ignore_eos = true\ntop_p = 0.9\n");
  const ExpandedJob job = expand().job;
  const ExpandedJob back = parse_expanded_job(serialize_expanded_job(job));
  EXPECT_EQ(back.fixture_text, job.fixture_text);
  EXPECT_EQ(back.workflows[1].steps[1].sampling.stop,
            (std::vector<std::string>{"<END>", "\xc3\xa9"}));
  EXPECT_EQ(back.workflows[1].steps[1].sampling.seed, 18446744073709551u);
  EXPECT_EQ(back.workflows[1].steps[1].sampling.top_k, 3);
  EXPECT_TRUE(back.workflows[1].steps[1].sampling.ignore_eos);
  EXPECT_EQ(back.workflows[1].steps[1].sampling.top_p, 0.9f);
  EXPECT_THROW(parse_expanded_job(std::string_view("{\"job_name\": 1}")), std::runtime_error);
  // Every truncation of a real payload is rejected, never read past its end.
  const std::string bytes = serialize_expanded_job(job);
  for (std::size_t n = 0; n < bytes.size(); n += 1 + n / 8)
    EXPECT_THROW(parse_expanded_job(std::string_view(bytes).substr(0, n)), std::runtime_error) << n;
  EXPECT_THROW(parse_expanded_job(bytes + "x"), std::runtime_error);
}

TEST(DefaultCacheDir, Precedence) {
  auto with_env = [](const char* flowrank, const char* xdg, const char* home) {
    auto set = [](const char* k, const char* v) { v ? ::setenv(k, v, 1) : ::unsetenv(k); };
    set("FLOWRANK_CACHE_DIR", flowrank);
    set("XDG_CACHE_HOME", xdg);
    set("HOME", home);
    return default_cache_dir();
  };
  const char* saved[3] = {std::getenv("FLOWRANK_CACHE_DIR"), std::getenv("XDG_CACHE_HOME"),
                          std::getenv("HOME")};
  const std::string keep[3] = {saved[0] ? saved[0] : "", saved[1] ? saved[1] : "",
                               saved[2] ? saved[2] : ""};
  EXPECT_EQ(with_env("/c/f", "/x", "/h"), fs::path("/c/f"));
  EXPECT_EQ(with_env(nullptr, "/x", "/h"), fs::path("/x/flowrank"));
  EXPECT_EQ(with_env("", "", "/h"), fs::path("/h/.cache/flowrank"));
  EXPECT_EQ(with_env(nullptr, nullptr, "/h"), fs::path("/h/.cache/flowrank"));
  for (int i = 0; i < 3; ++i) {
    const char* k[3] = {"FLOWRANK_CACHE_DIR", "XDG_CACHE_HOME", "HOME"};
    saved[i] ? ::setenv(k[i], keep[i].c_str(), 1) : ::unsetenv(k[i]);
  }
}

}  // namespace
}  // namespace flowrank::flow
