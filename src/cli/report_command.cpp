// `flowrank report FILE.h5`: summary table, JSON, the seed harness's log lines, a Chrome trace;
// `flowrank report --recover DIR`: a report rebuilt from a run's journals.
#include <cstdio>

#include "commands.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/report/hdf5_report.hpp"
#include "flowrank/report/seed_log.hpp"
#include "flowrank/report/summary.hpp"
#include "flowrank/report/trace.hpp"
#include "run_journal.hpp"

namespace flowrank::cli {

int report_command(const ReportArgs& args) {
  report::RunReport rep;
  if (args.recover) {
    std::vector<std::string> warnings;
    rep = recover_report(*args.recover, &warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "flowrank: warning: %s\n", w.c_str());
    std::string out = args.out ? *args.out : args.file;
    if (out.empty()) {
      auto it = rep.attrs.extra.find("report");
      if (it == rep.attrs.extra.end())
        throw InputError(*args.recover, "the journals name no report path: pass --out FILE");
      out = it->second;
    }
    if (!args.keep_outputs) rep.outputs.clear();
    report::write_report_hdf5(rep, out, args.keep_outputs);
    std::printf("[recover] %zu steps from the journals in %s written to %s\n", rep.steps.size(),
                args.recover->c_str(), out.c_str());
  } else {
    if (args.file.empty()) throw InputError("report", "name a report file, or --recover DIR");
    rep = report::read_report_hdf5(args.file);
  }
  if (args.trace) {
    write_file_atomic(*args.trace, report::chrome_trace_json(rep));
    std::printf("[trace] %s\n", args.trace->c_str());
    return 0;
  }
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
