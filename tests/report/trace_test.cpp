#include "flowrank/report/trace.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "report_test_support.hpp"

namespace flowrank::report {
namespace {

TEST(ChromeTrace, OneProcessPerRankAndEveryPhaseAndStepAsANonOverlappingSpan) {
  const RunReport r = testing_support::sample_report();
  const auto j = nlohmann::json::parse(chrome_trace_json(r));
  std::map<int, std::string> process_names;
  std::size_t spans = 0;
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> lanes;
  for (const auto& e : j.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "process_name")
      process_names[e.at("pid").get<int>()] = e.at("args").at("name").get<std::string>();
    if (e.at("ph") != "X") continue;
    ++spans;
    const double ts = e.at("ts").get<double>();
    lanes[{e.at("pid").get<int>(), e.at("tid").get<int>()}].push_back(
        {ts, ts + e.at("dur").get<double>()});
  }
  EXPECT_EQ(spans, r.phases.size() + r.steps.size());
  ASSERT_EQ(process_names.size(), 2u);
  EXPECT_EQ(process_names[0], "rank 0 (node-a, cpu (2 threads))");
  EXPECT_EQ(process_names[1], "rank 1 (node-b, cpu (2 threads))");
  for (auto& [lane, intervals] : lanes) {
    std::sort(intervals.begin(), intervals.end());
    for (std::size_t i = 1; i < intervals.size(); ++i)
      EXPECT_LE(intervals[i - 1].second, intervals[i].first + 1e-6)
          << "overlap in pid " << lane.first << " tid " << lane.second;
  }
  // The planner of workflow 0 starts at 1.6 s: 1.6e6 microseconds.
  bool found = false;
  for (const auto& e : j.at("traceEvents"))
    if (e.at("ph") == "X" && e.at("name") == "planner wf0") {
      EXPECT_DOUBLE_EQ(e.at("ts").get<double>(), 1.6e6);
      EXPECT_EQ(e.at("args").at("workflow"), 0);
      found = true;
    }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace flowrank::report
