#include "flowrank/report/journal.hpp"

#include <gtest/gtest.h>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "report_test_support.hpp"

namespace flowrank::report {
namespace {

using testing_support::TempDir;

JournalHeader header(int32_t rank) {
  JournalHeader h;
  h.identity = "id-" + std::string(60, 'c');
  h.rank = rank;
  h.world_size = 3;
  h.attrs = {{"job_name", "small"}, {"host", "node-a"}};
  return h;
}

RecordBatch one_step(int32_t wf, int32_t step, const std::string& output) {
  RecordBatch b;
  StepRecord s;
  s.rank = 1;
  s.workflow = wf;
  s.step = step;
  s.name = "plan";
  s.finish = "length";
  s.output_sha256_8 = "abcdef01";
  b.steps.push_back(s);
  b.outputs[{wf, step}] = output;
  return b;
}

TEST(Journal, ReadsBackTheHeaderAndEveryFrameInOrder) {
  TempDir dir;
  const auto path = journal_path(dir.path(), 1);
  {
    JournalWriter w(path, header(1));
    w.append(one_step(0, 0, "first"));
    RecordBatch phase;
    phase.phases = {{1, "run", 0.5, 2.0}};
    w.append(phase);
    w.append(one_step(0, 1, std::string("nul\0x", 5)));
    w.sync();
  }
  const JournalContents j = read_journal(path);
  EXPECT_FALSE(j.warning) << *j.warning;
  EXPECT_EQ(j.header.identity, header(1).identity);
  EXPECT_EQ(j.header.rank, 1);
  EXPECT_EQ(j.header.world_size, 3);
  EXPECT_EQ(j.header.attrs, header(1).attrs);
  ASSERT_EQ(j.records.steps.size(), 2u);
  EXPECT_EQ(j.records.steps[1].step, 1);
  ASSERT_EQ(j.records.phases.size(), 1u);
  EXPECT_EQ(j.records.phases[0].phase, "run");
  EXPECT_EQ(j.records.outputs.at({0, 1}), std::string("nul\0x", 5));
}

// A process killed mid-write leaves a torn last frame: the frames before it survive, and the
// reader says what it dropped. Every possible cut point is tried.
TEST(Journal, TornTailKeepsEveryCompleteFrame) {
  TempDir dir;
  const auto path = journal_path(dir.path(), 0);
  std::size_t after_first = 0;
  {
    JournalWriter w(path, header(0));
    w.append(one_step(0, 0, "first"));
    after_first = std::filesystem::file_size(path);
    w.append(one_step(1, 0, "second"));
  }
  const std::string full = read_file(path);
  for (std::size_t cut = after_first + 1; cut < full.size(); ++cut) {
    SCOPED_TRACE(cut);
    write_file_atomic(path, full.substr(0, cut));
    const JournalContents j = read_journal(path);
    ASSERT_EQ(j.records.steps.size(), 1u);
    EXPECT_EQ(j.records.outputs.at({0, 0}), "first");
    ASSERT_TRUE(j.warning);
    EXPECT_NE(j.warning->find("torn or corrupt"), std::string::npos) << *j.warning;
  }
}

TEST(Journal, FlippedByteFailsTheChecksum) {
  TempDir dir;
  const auto path = journal_path(dir.path(), 0);
  {
    JournalWriter w(path, header(0));
    w.append(one_step(0, 0, "first"));
  }
  std::string bytes = read_file(path);
  bytes[bytes.size() - 2] ^= 0x20;  // inside the output text
  write_file_atomic(path, bytes);
  const JournalContents j = read_journal(path);
  EXPECT_TRUE(j.records.steps.empty());
  ASSERT_TRUE(j.warning);
  EXPECT_NE(j.warning->find("checksum mismatch"), std::string::npos) << *j.warning;
}

TEST(Journal, OtherFilesAreRejectedNamingThePath) {
  TempDir dir;
  write_file_atomic(dir / "rank-0.journal", "hello\n");
  try {
    read_journal(dir / "rank-0.journal");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("rank-0.journal: not a flowrank journal"),
              std::string::npos)
        << e.what();
  }
}

TEST(Journal, FilesAreListedByRankNumber) {
  TempDir dir;
  for (int r : {10, 2, 0}) JournalWriter(journal_path(dir.path(), r), header(r));
  write_file_atomic(dir / "rank-x.journal", "");
  write_file_atomic(dir / "notes.txt", "");
  const auto files = journal_files(dir.path());
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].filename(), "rank-0.journal");
  EXPECT_EQ(files[1].filename(), "rank-2.journal");
  EXPECT_EQ(files[2].filename(), "rank-10.journal");
}

}  // namespace
}  // namespace flowrank::report
