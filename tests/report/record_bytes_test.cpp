#include "flowrank/report/record_bytes.hpp"

#include <gtest/gtest.h>

#include "flowrank/common/error.hpp"
#include "report_test_support.hpp"

namespace flowrank::report {
namespace {

using testing_support::expect_equal;
using testing_support::sample_report;

RunReport records_only(RunReport r) {
  r.attrs = RunAttributes{};
  return r;
}

RunReport from_batch(RecordBatch&& b) {
  RunReport r;
  append_records(r, std::move(b));
  return r;
}

TEST(RecordBytes, RoundTripsEveryRecordAndOutput) {
  const RunReport report = sample_report();
  const std::string bytes = serialize_records(report);
  expect_equal(records_only(report), from_batch(deserialize_records(bytes)));
}

TEST(RecordBytes, StartsWithMagicAndVersionAndIsLittleEndian) {
  RecordBatch b;
  b.phases = {{258, "run", 0.0, 1.0}};
  const std::string bytes = serialize_records(b);
  EXPECT_EQ(bytes.substr(0, 5), std::string("FRRB\x03", 5));
  // phase count 1, then rank 258 = 0x0102 little-endian, then the name's length 3.
  EXPECT_EQ(bytes.substr(5, 4), std::string("\x01\0\0\0", 4));
  EXPECT_EQ(bytes.substr(9, 4), std::string("\x02\x01\0\0", 4));
  EXPECT_EQ(bytes.substr(13, 7), std::string("\x03\0\0\0run", 7));
  // 5 header + 4 count + (4 + 7 + 8 + 8) phase + eight empty counts of 4.
  EXPECT_EQ(bytes.size(), 5u + 4 + 27 + 32);
}

// The energy rows travel with the records; the report's energy source is rebuilt from the ranks
// that measured (one: its own words; several: each named).
TEST(RecordBytes, RoundTripsEnergyAndRebuildsItsSource) {
  RunReport report = sample_report();
  report.energy = testing_support::sample_energy();
  RunReport back = from_batch(deserialize_records(serialize_records(report)));
  ASSERT_TRUE(back.energy.has_value());
  EXPECT_EQ(back.energy->source,
            "rank 0: nvml: NVIDIA H200 (GPU 0), every 20 ms; rank 1: nvml: NVIDIA H200 (GPU 1), "
            "every 20 ms");
  report.energy->source = back.energy->source;
  expect_equal(records_only(report), back);

  // Only rank 0 sampled: the source is its own.
  std::erase_if(report.energy->samples, [](const PowerSample& x) { return x.rank == 1; });
  back = from_batch(deserialize_records(serialize_records(report)));
  EXPECT_EQ(back.energy->source, "nvml: NVIDIA H200 (GPU 0), every 20 ms");

  // A batch without energy rows makes no /energy.
  report.energy.reset();
  EXPECT_FALSE(from_batch(deserialize_records(serialize_records(report))).energy.has_value());
}

TEST(RecordBytes, EmptyBatchRoundTrips) {
  const RecordBatch back = deserialize_records(serialize_records(RecordBatch{}));
  EXPECT_TRUE(back.phases.empty());
  EXPECT_TRUE(back.steps.empty());
  EXPECT_TRUE(back.workflows.empty());
  EXPECT_TRUE(back.outputs.empty());
}

TEST(RecordBytes, EveryTruncationIsRejected) {
  const std::string bytes = serialize_records(sample_report());
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_THROW(deserialize_records(std::string_view(bytes).substr(0, n)), RunError);
  }
}

void expect_rejected(const std::string& bytes, const std::string& message) {
  try {
    deserialize_records(bytes);
    FAIL() << "expected RunError";
  } catch (const RunError& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(RecordBytes, GarbageIsRejectedWithTheReasonAndOffset) {
  std::string bytes = serialize_records(RecordBatch{});  // 5 + 9 * 4 = 41 bytes
  expect_rejected(bytes + "x", "record bytes: trailing bytes at byte 41");
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  expect_rejected(bad_magic, "record bytes: bad magic at byte 4");
  std::string bad_version = bytes;
  bad_version[4] = 9;
  expect_rejected(bad_version, "record bytes: version 9 not supported (expected 3) at byte 5");
  // A phase count of 2^32-1 with nothing behind it must not allocate: it is checked first.
  std::string huge = bytes;
  huge.replace(5, 4, std::string("\xff\xff\xff\xff", 4));
  expect_rejected(huge, "record bytes: count 4294967295 exceeds the data at byte 9");
  expect_rejected("", "record bytes: truncated at byte 0");
}

TEST(RecordBytes, StringLengthPastTheEndIsRejected) {
  RecordBatch b;
  b.phases = {{0, "run", 0.0, 1.0}};
  std::string bytes = serialize_records(b);
  bytes.replace(13, 4, std::string("\xff\xff\xff\x7f", 4));  // the phase name's length
  expect_rejected(bytes, "record bytes: truncated at byte 17");
}

TEST(AppendRecords, MergesRanksAndRejectsDuplicateOutputs) {
  RecordBatch rank0;
  rank0.phases = {{0, "run", 0.0, 1.0}};
  rank0.outputs[{0, 0}] = "zero";
  RecordBatch rank1;
  rank1.phases = {{1, "run", 0.5, 1.0}};
  rank1.steps.resize(2);
  rank1.outputs[{1, 0}] = "one";
  RunReport report;
  append_records(report, deserialize_records(serialize_records(rank0)));
  append_records(report, deserialize_records(serialize_records(rank1)));
  ASSERT_EQ(report.phases.size(), 2u);
  EXPECT_EQ(report.phases[1].rank, 1);
  EXPECT_EQ(report.steps.size(), 2u);
  EXPECT_EQ(report.outputs.size(), 2u);
  EXPECT_EQ(report.outputs.at({1, 0}), "one");

  RecordBatch again;
  again.outputs[{0, 0}] = "dup";
  try {
    append_records(report, std::move(again));
    FAIL() << "expected RunError";
  } catch (const RunError& e) {
    EXPECT_EQ(std::string(e.what()), "records: two outputs for workflow 0 step 0");
  }
  EXPECT_EQ(report.outputs.at({0, 0}), "zero");
}

}  // namespace
}  // namespace flowrank::report
