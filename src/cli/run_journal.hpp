#pragma once
// The journals of a run (<report>.journal/rank-R.journal): what --resume reads and
// `report --recover` rebuilds a report from.
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "flowrank/report/journal.hpp"
#include "flowrank/report/records.hpp"

namespace flowrank::cli {

std::filesystem::path default_journal_dir(const std::filesystem::path& report_path);

// Steps an earlier run of the same identity finished, from every journal in `dir`.
struct ResumeState {
  report::RecordBatch records;  // their step and workflow records, with outputs
  std::map<std::pair<int32_t, int32_t>, std::string> done;  // (workflow, step) -> output
  std::vector<std::string> warnings;  // torn journals, journals of another job
};
// A step with an output counts as done; one that failed or was skipped runs again. Journals of
// another identity are left out with a warning.
ResumeState load_resume(const std::filesystem::path& dir, const std::string& identity);

// A report from the journals in `dir` (a run that never reached its gather): attributes from the
// journal headers, every journaled record, and a rank record per journal ("lost" for a rank whose
// journal has none). Throws InputError when `dir` holds no journal.
report::RunReport recover_report(const std::filesystem::path& dir,
                                 std::vector<std::string>* warnings);

}  // namespace flowrank::cli
