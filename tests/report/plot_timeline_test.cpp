#include <gtest/gtest.h>

#include <fstream>

#include "flowrank/common/files.hpp"
#include "flowrank/report/hdf5_report.hpp"
#include "report_test_support.hpp"

namespace flowrank::report {
namespace {

using testing_support::python_has_h5py_and_matplotlib;
using testing_support::run_command;
using testing_support::sample_report;
using testing_support::shell_quote;
using testing_support::TempDir;

std::string plot_command(const std::filesystem::path& h5, const std::filesystem::path& png) {
  return "/usr/bin/python3 " +
         shell_quote(std::string(FLOWRANK_SOURCE_DIR) + "/tools/plot_timeline.py") + " " +
         shell_quote(h5.string()) + " " + shell_quote(png.string());
}

TEST(PlotTimeline, DrawsAPng) {
  if (!python_has_h5py_and_matplotlib()) GTEST_SKIP() << "python3 with h5py+matplotlib absent";
  TempDir dir;
  write_report_hdf5(sample_report(), dir / "run.h5", false);
  const auto result = run_command(plot_command(dir / "run.h5", dir / "out.png"));
  ASSERT_EQ(result.code, 0) << result.out;
  const std::string png = read_file(dir / "out.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(PlotTimeline, DrawsAnEmptyReport) {
  if (!python_has_h5py_and_matplotlib()) GTEST_SKIP() << "python3 with h5py+matplotlib absent";
  TempDir dir;
  write_report_hdf5(RunReport{}, dir / "empty.h5", false);
  const auto result = run_command(plot_command(dir / "empty.h5", dir / "out.png"));
  EXPECT_EQ(result.code, 0) << result.out;
  EXPECT_TRUE(std::filesystem::exists(dir / "out.png"));
}

TEST(PlotTimeline, BadFileExitsTwoWithOneLine) {
  if (!python_has_h5py_and_matplotlib()) GTEST_SKIP() << "python3 with h5py+matplotlib absent";
  TempDir dir;
  std::ofstream(dir / "bad.h5") << "not hdf5";
  const auto result = run_command(plot_command(dir / "bad.h5", dir / "out.png"));
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(
      result.out.rfind("plot_timeline.py: " + (dir / "bad.h5").string() + ": not an HDF5 file", 0),
      0u)
      << result.out;
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 1);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.png"));
}

TEST(PlotTimeline, HdfFileWithoutStepsExitsTwo) {
  if (!python_has_h5py_and_matplotlib()) GTEST_SKIP() << "python3 with h5py+matplotlib absent";
  TempDir dir;
  const auto script = "import h5py, sys; f = h5py.File(sys.argv[1], 'w'); f['phases'] = [1, 2]";
  ASSERT_EQ(run_command("/usr/bin/python3 -c " + shell_quote(script) + " " +
                        shell_quote((dir / "other.h5").string()))
                .code,
            0);
  const auto result = run_command(plot_command(dir / "other.h5", dir / "out.png"));
  EXPECT_EQ(result.code, 2);
  EXPECT_NE(result.out.find("/phases has no column 'rank'"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace flowrank::report
