#include "run_journal.hpp"

#include <set>

#include "flowrank/common/error.hpp"

namespace flowrank::cli {
namespace fs = std::filesystem;

fs::path default_journal_dir(const fs::path& report_path) {
  return fs::path(report_path.string() + ".journal");
}

ResumeState load_resume(const fs::path& dir, const std::string& identity) {
  ResumeState out;
  std::set<int32_t> complete_workflows;
  for (const fs::path& path : report::journal_files(dir)) {
    report::JournalContents j = report::read_journal(path);
    if (j.warning) out.warnings.push_back(*j.warning);
    if (j.header.identity != identity) {
      out.warnings.push_back(path.string() + ": journal of another job or model (identity " +
                             j.header.identity.substr(0, 16) + "), not resumed from");
      continue;
    }
    for (report::StepRecord& s : j.records.steps) {
      auto it = j.records.outputs.find({s.workflow, s.step});
      if (!s.error.empty() || it == j.records.outputs.end()) continue;
      if (!out.done.emplace(it->first, it->second).second) continue;  // journaled twice
      out.records.outputs[it->first] = it->second;
      out.records.steps.push_back(std::move(s));
    }
    for (report::WorkflowRecord& w : j.records.workflows)
      if (complete_workflows.insert(w.workflow).second) out.records.workflows.push_back(w);
  }
  return out;
}

report::RunReport recover_report(const fs::path& dir, std::vector<std::string>* warnings) {
  const std::vector<fs::path> files = report::journal_files(dir);
  if (files.empty()) throw InputError(dir.string(), "no journal files (rank-*.journal) here");
  report::RunReport rep;
  bool have_attrs = false;
  for (const fs::path& path : files) {
    report::JournalContents j = report::read_journal(path);
    if (j.warning && warnings) warnings->push_back(*j.warning);
    const auto& a = j.header.attrs;
    auto get = [&](const char* k) {
      auto it = a.find(k);
      return it == a.end() ? std::string() : it->second;
    };
    if (!have_attrs || j.header.rank == 0) {
      rep.attrs.flowrank_version = get("flowrank_version");
      rep.attrs.job_name = get("job_name");
      rep.attrs.job_sha256 = get("job_sha256");
      rep.attrs.model = get("model");
      rep.attrs.device = get("device");
      rep.attrs.started_at = get("started_at");
      rep.attrs.world_size = j.header.world_size;
      for (const char* k : {"flow_cache_key", "layout", "report"})
        if (!get(k).empty()) rep.attrs.extra[k] = get(k);
      have_attrs = true;
    }
    if (j.records.ranks.empty()) {
      report::RankRecord r;
      r.rank = j.header.rank;
      r.host = get("host");
      r.status = "lost";
      r.error = "no rank record in its journal: the rank ended before the gather";
      j.records.ranks.push_back(r);
    }
    // A resumed run carries the earlier steps in rank 0's journal: keep each step once.
    std::set<std::pair<int32_t, int32_t>> seen;
    for (const auto& s : rep.steps) seen.insert({s.workflow, s.step});
    report::RecordBatch fresh;
    for (auto& s : j.records.steps) {
      if (!seen.insert({s.workflow, s.step}).second) continue;
      auto it = j.records.outputs.find({s.workflow, s.step});
      if (it != j.records.outputs.end()) fresh.outputs[it->first] = std::move(it->second);
      fresh.steps.push_back(std::move(s));
    }
    fresh.phases = std::move(j.records.phases);
    fresh.workflows = std::move(j.records.workflows);
    fresh.ranks = std::move(j.records.ranks);
    fresh.plan = std::move(j.records.plan);
    fresh.power_samples = std::move(j.records.power_samples);
    fresh.phase_energy = std::move(j.records.phase_energy);
    fresh.step_energy = std::move(j.records.step_energy);
    report::append_records(rep, std::move(fresh));
  }
  rep.attrs.extra["status"] = "recovered from journals";
  return rep;
}

}  // namespace flowrank::cli
