// `flowrank report FILE.h5`: summary table, JSON, or the seed harness's log lines.
#include <cstdio>

#include "commands.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/report/hdf5_report.hpp"
#include "flowrank/report/seed_log.hpp"
#include "flowrank/report/summary.hpp"

namespace flowrank::cli {

int report_command(const ReportArgs& args) {
  const report::RunReport rep = report::read_report_hdf5(args.file);
  if (args.seed_log) {
    for (const report::SeedLine& line : report::seed_log_lines(rep))
      std::fputs(line.text.c_str(), line.to_stdout ? stdout : stderr);
    return 0;
  }
  const report::Summary summary = report::summarize(rep);
  if (args.format == "json") {
    std::printf("%s\n", report::format_summary_json(summary, rep.attrs).c_str());
  } else {
    std::printf("%s", report::format_summary_table(summary, rep.attrs).c_str());
  }
  return 0;
}

}  // namespace flowrank::cli
