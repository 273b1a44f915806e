#include "flowrank/report/hdf5_report.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "flowrank/common/error.hpp"
#include "report_test_support.hpp"

namespace flowrank::report {
namespace {

using testing_support::expect_equal;
using testing_support::run_command;
using testing_support::sample_report;
using testing_support::shell_quote;
using testing_support::TempDir;

std::vector<std::string> directory_entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Hdf5Report, RoundTripsEveryFieldWithOutputs) {
  TempDir dir;
  const RunReport report = sample_report();
  write_report_hdf5(report, dir / "run.h5", true);
  const RunReport back = read_report_hdf5(dir / "run.h5");
  expect_equal(report, back);
  EXPECT_EQ(back.outputs.at({0, 2}).size(), 10u);  // the NUL byte and what follows survive
  EXPECT_EQ(back.outputs.at({0, 1}), "");
}

TEST(Hdf5Report, RoundTripsEnergy) {
  TempDir dir;
  RunReport report = sample_report();
  report.energy = testing_support::sample_energy();
  write_report_hdf5(report, dir / "run.h5", false);
  RunReport back = read_report_hdf5(dir / "run.h5");
  report.outputs.clear();
  expect_equal(report, back);
  ASSERT_TRUE(back.energy.has_value());

  // A sample without a counter reading (NaN) comes back as one; without energy, no /energy group.
  EXPECT_TRUE(std::isnan(back.energy->samples[3].counter_j));
  report.energy.reset();
  write_report_hdf5(report, dir / "run.h5", false);
  EXPECT_FALSE(read_report_hdf5(dir / "run.h5").energy.has_value());
  hid_t f = H5Fopen((dir / "run.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  EXPECT_EQ(H5Lexists(f, "energy", H5P_DEFAULT), 0);
  H5Fclose(f);
}

TEST(Hdf5Report, LeavesOutputsOutUnlessAsked) {
  TempDir dir;
  const RunReport report = sample_report();
  write_report_hdf5(report, dir / "run.h5", false);
  RunReport back = read_report_hdf5(dir / "run.h5");
  EXPECT_TRUE(back.outputs.empty());
  RunReport expected = report;
  expected.outputs.clear();
  expect_equal(expected, back);
}

TEST(Hdf5Report, ZeroRowTablesAreValidDatasets) {
  TempDir dir;
  RunReport report;
  report.attrs.job_name = "empty";
  write_report_hdf5(report, dir / "empty.h5", true);
  const RunReport back = read_report_hdf5(dir / "empty.h5");
  expect_equal(report, back);

  // Each table exists as a one-dimensional compound dataset with zero rows.
  hid_t f = H5Fopen((dir / "empty.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  for (const char* name : {"phases", "steps", "workflows", "ranks", "plan"}) {
    SCOPED_TRACE(name);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    ASSERT_GE(ds, 0);
    hid_t type = H5Dget_type(ds);
    EXPECT_EQ(H5Tget_class(type), H5T_COMPOUND);
    hid_t space = H5Dget_space(ds);
    hsize_t dims[1] = {99};
    EXPECT_EQ(H5Sget_simple_extent_ndims(space), 1);
    H5Sget_simple_extent_dims(space, dims, nullptr);
    EXPECT_EQ(dims[0], 0u);
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(ds);
  }
  H5Fclose(f);
}

// A report_format 1 file has neither /ranks nor /plan: it still reads, with both empty.
TEST(Hdf5ReportRead, FormatOneFileWithoutRanksOrPlanReads) {
  TempDir dir;
  RunReport report = sample_report();
  write_report_hdf5(report, dir / "old.h5", false);
  hid_t f = H5Fopen((dir / "old.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Ldelete(f, "ranks", H5P_DEFAULT), 0);
  ASSERT_GE(H5Ldelete(f, "plan", H5P_DEFAULT), 0);
  H5Fclose(f);
  const RunReport back = read_report_hdf5(dir / "old.h5");
  EXPECT_TRUE(back.ranks.empty());
  EXPECT_TRUE(back.plan.empty());
  EXPECT_EQ(back.steps.size(), report.steps.size());
}

TEST(Hdf5Report, WritesNoTempFileAndReplacesThePreviousReport) {
  TempDir dir;
  RunReport first = sample_report();
  first.attrs.job_name = "first";
  write_report_hdf5(first, dir / "run.h5", false);
  RunReport second = sample_report();
  second.attrs.job_name = "second";
  second.steps.pop_back();
  write_report_hdf5(second, dir / "run.h5", false);
  EXPECT_EQ(directory_entries(dir.path()), std::vector<std::string>{"run.h5"});
  EXPECT_EQ(read_report_hdf5(dir / "run.h5").attrs.job_name, "second");
  EXPECT_EQ(read_report_hdf5(dir / "run.h5").steps.size(), second.steps.size());
}

TEST(Hdf5Report, FailedWriteKeepsThePreviousFileAndNamesThePath) {
  TempDir dir;
  const RunReport good = sample_report();
  write_report_hdf5(good, dir / "run.h5", true);

  RunReport bad = sample_report();
  bad.attrs.extra["model"] = "collides with the fixed attribute";
  try {
    write_report_hdf5(bad, dir / "run.h5", true);
    FAIL() << "expected RunError";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "run.h5").string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'model'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(directory_entries(dir.path()), std::vector<std::string>{"run.h5"});
  expect_equal(good, read_report_hdf5(dir / "run.h5"));
}

TEST(Hdf5Report, HdfLibraryFailureMidWriteBecomesRunErrorAndLeavesNoTempFile) {
  TempDir dir;
  const RunReport good = sample_report();
  write_report_hdf5(good, dir / "run.h5", true);

  // An attribute name too long for an object header makes H5Acreate fail inside HDF5, after the
  // temp file exists and holds the fixed attributes.
  RunReport bad = sample_report();
  bad.attrs.extra[std::string(70000, 'k')] = "v";
  try {
    write_report_hdf5(bad, dir / "run.h5", false);
    FAIL() << "expected RunError";
  } catch (const RunError& e) {
    EXPECT_EQ(std::string(e.what()).rfind((dir / "run.h5").string() + ": HDF5 write failed", 0), 0u)
        << e.what();
  }
  EXPECT_EQ(directory_entries(dir.path()), std::vector<std::string>{"run.h5"});
  expect_equal(good, read_report_hdf5(dir / "run.h5"));
}

TEST(Hdf5Report, UnwritableDirectoryIsRunError) {
  TempDir dir;
  std::ofstream(dir / "plain-file") << "x";
  EXPECT_THROW(write_report_hdf5(sample_report(), dir / "plain-file" / "run.h5", false), RunError);
}

void expect_input_error(const std::filesystem::path& path, const std::string& problem) {
  try {
    read_report_hdf5(path);
    FAIL() << "expected InputError for " << path;
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + ": " + problem);
    EXPECT_EQ(e.where(), path.string());
  }
}

TEST(Hdf5ReportRead, MissingFile) {
  TempDir dir;
  expect_input_error(dir / "nope.h5", "cannot read: no such file");
}

TEST(Hdf5ReportRead, GarbledFileIsNotHdf5) {
  TempDir dir;
  std::ofstream(dir / "garbled.h5") << "this is not HDF5 at all\n";
  expect_input_error(dir / "garbled.h5", "not an HDF5 file");
}

TEST(Hdf5ReportRead, TruncatedFileIsNotHdf5) {
  TempDir dir;
  write_report_hdf5(sample_report(), dir / "run.h5", false);
  std::filesystem::resize_file(dir / "run.h5", 600);
  EXPECT_THROW(read_report_hdf5(dir / "run.h5"), InputError);
}

// Opens a good report for editing with the HDF5 C API.
template <class Edit>
std::filesystem::path edited_report(const TempDir& dir, Edit edit,
                                    const RunReport& report = sample_report()) {
  const auto path = dir / "edited.h5";
  write_report_hdf5(report, path, false);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  EXPECT_GE(f, 0);
  edit(f);
  H5Fclose(f);
  return path;
}

TEST(Hdf5ReportRead, MissingStepsDataset) {
  TempDir dir;
  auto path = edited_report(dir, [](hid_t f) { ASSERT_GE(H5Ldelete(f, "steps", H5P_DEFAULT), 0); });
  expect_input_error(path, "missing dataset /steps");
}

TEST(Hdf5ReportRead, StepsThatAreNotATable) {
  TempDir dir;
  auto path = edited_report(dir, [](hid_t f) {
    ASSERT_GE(H5Ldelete(f, "steps", H5P_DEFAULT), 0);
    hsize_t dims[1] = {3};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t ds = H5Dcreate2(f, "steps", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(ds, 0);
    H5Dclose(ds);
    H5Sclose(space);
  });
  expect_input_error(path, "/steps is not a table");
}

TEST(Hdf5ReportRead, TableMissingAColumn) {
  TempDir dir;
  auto path = edited_report(dir, [](hid_t f) {
    ASSERT_GE(H5Ldelete(f, "workflows", H5P_DEFAULT), 0);
    hid_t type = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(type, "rank", 0, H5T_STD_I32LE);
    H5Tinsert(type, "workflow", 4, H5T_STD_I32LE);
    hsize_t dims[1] = {0};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t ds = H5Dcreate2(f, "workflows", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(ds, 0);
    H5Dclose(ds);
    H5Sclose(space);
    H5Tclose(type);
  });
  expect_input_error(path, "/workflows has no column 'start_s'");
}

// Rewrites table `name` without the columns in `drop`, rows kept (an older writer's table).
void drop_columns(hid_t f, const char* name, const std::vector<std::string>& drop) {
  hid_t old = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t full = H5Dget_type(old);
  hid_t space = H5Dget_space(old);
  size_t size = 0;
  std::vector<std::pair<std::string, hid_t>> members;
  for (int i = 0; i < H5Tget_nmembers(full); ++i) {
    char* member = H5Tget_member_name(full, static_cast<unsigned>(i));
    if (std::find(drop.begin(), drop.end(), std::string(member)) == drop.end()) {
      hid_t t = H5Tget_member_type(full, static_cast<unsigned>(i));
      members.emplace_back(member, t);
      size += H5Tget_size(t);
    }
    H5free_memory(member);
  }
  hid_t reduced = H5Tcreate(H5T_COMPOUND, size);
  size_t at = 0;
  for (const auto& [member, t] : members) {
    H5Tinsert(reduced, member.c_str(), at, t);
    at += H5Tget_size(t);
  }
  const hssize_t rows = H5Sget_simple_extent_npoints(space);
  std::vector<unsigned char> buf(std::max<size_t>(1, static_cast<size_t>(rows) * size));
  ASSERT_GE(H5Dread(old, reduced, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), 0);
  H5Dclose(old);
  ASSERT_GE(H5Ldelete(f, name, H5P_DEFAULT), 0);
  hid_t ds = H5Dcreate2(f, name, reduced, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(ds, reduced, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), 0);
  H5Dclose(ds);
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(reduced, space, H5P_DEFAULT, buf.data());  // the strings H5Dread allocated
#else
  H5Dvlen_reclaim(reduced, space, H5P_DEFAULT, buf.data());
#endif
  for (const auto& m : members) H5Tclose(m.second);
  H5Tclose(reduced);
  H5Sclose(space);
  H5Tclose(full);
}

void set_report_format(hid_t f, int32_t format) {
  hid_t attr = H5Aopen(f, "report_format", H5P_DEFAULT);
  H5Awrite(attr, H5T_NATIVE_INT32, &format);
  H5Aclose(attr);
}

TEST(Hdf5ReportRead, WritesFormatThree) {
  TempDir dir;
  write_report_hdf5(sample_report(), dir / "run.h5", false);
  hid_t f = H5Fopen((dir / "run.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  int32_t format = 0;
  hid_t attr = H5Aopen(f, "report_format", H5P_DEFAULT);
  H5Aread(attr, H5T_NATIVE_INT32, &format);
  H5Aclose(attr);
  H5Fclose(f);
  EXPECT_EQ(format, 3);
}

// A report written before format 2: /steps without error or prompt_sha256_8, no /ranks, no /plan,
// report_format 1. It still reads, the newer columns empty.
TEST(Hdf5ReportRead, FormatOneReportReads) {
  TempDir dir;
  auto path = edited_report(dir, [](hid_t f) {
    drop_columns(f, "steps", {"error", "prompt_sha256_8"});
    ASSERT_GE(H5Ldelete(f, "ranks", H5P_DEFAULT), 0);
    ASSERT_GE(H5Ldelete(f, "plan", H5P_DEFAULT), 0);
    set_report_format(f, 1);
  });
  const RunReport back = read_report_hdf5(path);
  RunReport expected = sample_report();
  expected.outputs.clear();
  expected.ranks.clear();
  expected.plan.clear();
  for (StepRecord& s : expected.steps) {
    s.prompt_sha256_8.clear();
    s.error.clear();
  }
  expect_equal(expected, back);
}

// The many-ranks line's format 2: /ranks without `energy`, /steps without prompt_sha256_8.
TEST(Hdf5ReportRead, FormatTwoOfTheRanksLineReads) {
  TempDir dir;
  auto path = edited_report(dir, [](hid_t f) {
    drop_columns(f, "steps", {"prompt_sha256_8"});
    drop_columns(f, "ranks", {"energy"});
    set_report_format(f, 2);
  });
  const RunReport back = read_report_hdf5(path);
  RunReport expected = sample_report();
  expected.outputs.clear();
  for (StepRecord& s : expected.steps) s.prompt_sha256_8.clear();
  for (RankRecord& r : expected.ranks) r.energy.clear();
  expect_equal(expected, back);
}

// The harness line's format 2: /steps without `error`, no /ranks or /plan, /energy/samples
// without `rank` (one board).
TEST(Hdf5ReportRead, FormatTwoOfTheHarnessLineReads) {
  TempDir dir;
  RunReport report = sample_report();
  report.energy = testing_support::sample_energy();
  auto path = edited_report(
      dir,
      [](hid_t f) {
        drop_columns(f, "steps", {"error"});
        drop_columns(f, "energy/samples", {"rank"});
        ASSERT_GE(H5Ldelete(f, "ranks", H5P_DEFAULT), 0);
        ASSERT_GE(H5Ldelete(f, "plan", H5P_DEFAULT), 0);
        set_report_format(f, 2);
      },
      report);
  const RunReport back = read_report_hdf5(path);
  RunReport expected = report;
  expected.outputs.clear();
  expected.ranks.clear();
  expected.plan.clear();
  for (StepRecord& s : expected.steps) s.error.clear();
  for (PowerSample& x : expected.energy->samples) x.rank = 0;
  expect_equal(expected, back);
}

TEST(Hdf5ReportRead, NewerFormatIsRefused) {
  TempDir dir;
  auto path = edited_report(dir, [](hid_t f) { set_report_format(f, 4); });
  expect_input_error(path, "report_format 4 is not supported (this build reads 1 to 3)");
}

TEST(Hdf5ReportRead, OutputGroupWithANonNumericName) {
  TempDir dir;
  auto path = edited_report(dir, [](hid_t f) {
    hid_t g = H5Gcreate2(f, "outputs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t w = H5Gcreate2(g, "planner", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(w, 0);
    H5Gclose(w);
    H5Gclose(g);
  });
  expect_input_error(path, "/outputs/planner: name is not an integer index");
}

TEST(Hdf5ReportTools, H5dumpReadsTheFile) {
  if (!std::filesystem::exists("/usr/bin/h5dump")) GTEST_SKIP() << "h5dump not installed";
  TempDir dir;
  write_report_hdf5(sample_report(), dir / "run.h5", true);
  const auto listing = run_command("/usr/bin/h5dump -n " + shell_quote((dir / "run.h5").string()));
  EXPECT_EQ(listing.code, 0) << listing.out;
  EXPECT_NE(listing.out.find("dataset    /steps"), std::string::npos) << listing.out;
  EXPECT_NE(listing.out.find("dataset    /outputs/0/2"), std::string::npos) << listing.out;
  // A full dump converts every value, so it fails on anything malformed.
  const auto full = run_command("/usr/bin/h5dump " + shell_quote((dir / "run.h5").string()));
  EXPECT_EQ(full.code, 0) << full.out.substr(0, 2000);
  EXPECT_NE(full.out.find("\"verifier\""), std::string::npos);
}

TEST(Hdf5ReportTools, H5pyReadsTablesAttributesAndOutputs) {
  if (!std::filesystem::exists("/usr/bin/python3") ||
      run_command("/usr/bin/python3 -c 'import h5py'").code != 0)
    GTEST_SKIP() << "python3 with h5py not installed";
  TempDir dir;
  const RunReport report = sample_report();
  write_report_hdf5(report, dir / "run.h5", true);
  const std::string script = R"PY(
import sys, json, h5py
f = h5py.File(sys.argv[1], "r")
s = f["steps"][()]
p = f["phases"][()]
w = f["workflows"][()]
print(json.dumps({
  "step_fields": list(s.dtype.names),
  "rows": [len(p), len(s), len(w)],
  "latency_4": float(s["latency_ms"][4]),
  "name_5": s["name"][5].decode(),
  "prompt_sum": int(s["prompt_tokens"].sum()),
  "phase_2": p["phase"][2].decode(),
  "wf_end_1": float(w["end_s"][1]),
  "job_name": f.attrs["job_name"],
  "world_size": int(f.attrs["world_size"]),
  "note": f.attrs["note"],
  "output_0_0": f["outputs/0/0"][()].decode("utf-8"),
  "rank_1_host": f["ranks"][()]["host"][1].decode(),
  "rank_0_engine_steps": int(f["ranks"][()]["engine_steps"][0]),
  "plan_rank_3": int(f["plan"][()]["rank"][3]),
}))
)PY";
  const auto result = run_command("/usr/bin/python3 -c " + shell_quote(script) + " " +
                                  shell_quote((dir / "run.h5").string()));
  ASSERT_EQ(result.code, 0) << result.out;
  const auto j = nlohmann::json::parse(result.out);
  EXPECT_EQ(j["step_fields"],
            nlohmann::json({"rank", "workflow", "step", "name", "prompt_tokens", "cached_tokens",
                            "decode_tokens", "queued_ms", "ttft_ms", "latency_ms", "start_s",
                            "end_s", "finish", "output_sha256_8", "error", "prompt_sha256_8"}));
  EXPECT_EQ(j["rows"], nlohmann::json({8, 11, 3}));
  EXPECT_EQ(j["rank_1_host"], "node-b");
  EXPECT_EQ(j["rank_0_engine_steps"].get<int64_t>(), int64_t{1} << 40);
  EXPECT_EQ(j["plan_rank_3"], 1);
  EXPECT_EQ(j["latency_4"].get<double>(), report.steps[4].latency_ms);
  EXPECT_EQ(j["name_5"], "verifier");
  int64_t prompt_sum = 0;
  for (const auto& s : report.steps) prompt_sum += s.prompt_tokens;
  EXPECT_EQ(j["prompt_sum"].get<int64_t>(), prompt_sum);
  EXPECT_EQ(j["phase_2"], "flow_expand");
  EXPECT_EQ(j["wf_end_1"].get<double>(), 7.9);
  EXPECT_EQ(j["job_name"], "seed-25x3");
  EXPECT_EQ(j["world_size"], 2);
  EXPECT_EQ(j["note"], "größe ✓");
  EXPECT_EQ(j["output_0_0"], "plan: naïve → 東京 🚀\nline two");
}

}  // namespace
}  // namespace flowrank::report
