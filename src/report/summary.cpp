#include "flowrank/report/summary.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>

#include "number_text.hpp"

namespace flowrank::report {

namespace {

constexpr std::array<std::string_view, 9> kPhaseOrder = {
    "world_init",        "flow_expand", "flow_broadcast", "engine_preload", "nccl_init",
    "weights_broadcast", "run",         "gather",         "report_write"};

DistributionStats distribution(const std::vector<double>& values) {
  DistributionStats s;
  if (values.empty()) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  s.p50 = nearest_rank_percentile(values, 50);
  s.p99 = nearest_rank_percentile(values, 99);
  return s;
}

StepSummary summarize_steps(const std::string& name, const std::vector<const StepRecord*>& steps,
                            double run_wall_s) {
  StepSummary s;
  s.name = name;
  s.count = static_cast<int64_t>(steps.size());
  std::vector<double> latency, ttft;
  double queued = 0;
  for (const StepRecord* r : steps) {
    latency.push_back(r->latency_ms);
    ttft.push_back(r->ttft_ms);
    queued += r->queued_ms;
    s.prompt_tokens += r->prompt_tokens;
    s.cached_tokens += r->cached_tokens;
    s.decode_tokens += r->decode_tokens;
  }
  s.latency_ms = distribution(latency);
  s.ttft_ms = distribution(ttft);
  s.mean_queued_ms = steps.empty() ? 0 : queued / static_cast<double>(steps.size());
  s.decode_tokens_per_s = run_wall_s > 0 ? static_cast<double>(s.decode_tokens) / run_wall_s : 0;
  return s;
}

using detail::fixed;

// A markdown table with columns padded to their widest cell; `right` marks numeric columns.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<bool>& right,
                           const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 3);
  for (size_t c = 0; c < header.size(); ++c) width[c] = std::max(width[c], header[c].size());
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  auto cell = [&](const std::string& text, size_t c) {
    const std::string pad(width[c] - std::min(width[c], text.size()), ' ');
    return right[c] ? pad + text : text + pad;
  };
  std::string out = "|";
  for (size_t c = 0; c < header.size(); ++c) out += " " + cell(header[c], c) + " |";
  out += "\n|";
  for (size_t c = 0; c < header.size(); ++c)
    out +=
        " " + (right[c] ? std::string(width[c] - 1, '-') + ":" : std::string(width[c], '-')) + " |";
  out += "\n";
  for (const auto& row : rows) {
    out += "|";
    for (size_t c = 0; c < row.size(); ++c) out += " " + cell(row[c], c) + " |";
    out += "\n";
  }
  return out;
}

std::vector<std::string> step_row(const StepSummary& s) {
  return {s.name,
          std::to_string(s.count),
          fixed(s.latency_ms.mean, 2),
          fixed(s.latency_ms.p50, 2),
          fixed(s.latency_ms.p99, 2),
          fixed(s.ttft_ms.mean, 2),
          fixed(s.ttft_ms.p50, 2),
          fixed(s.ttft_ms.p99, 2),
          fixed(s.mean_queued_ms, 2),
          std::to_string(s.prompt_tokens),
          std::to_string(s.cached_tokens),
          std::to_string(s.decode_tokens),
          fixed(s.decode_tokens_per_s, 2)};
}

nlohmann::json stats_json(const DistributionStats& d) {
  return {{"mean", d.mean}, {"p50", d.p50}, {"p99", d.p99}};
}

nlohmann::json step_json(const StepSummary& s) {
  return {{"name", s.name},
          {"count", s.count},
          {"latency_ms", stats_json(s.latency_ms)},
          {"ttft_ms", stats_json(s.ttft_ms)},
          {"mean_queued_ms", s.mean_queued_ms},
          {"prompt_tokens", s.prompt_tokens},
          {"cached_tokens", s.cached_tokens},
          {"decode_tokens", s.decode_tokens},
          {"decode_tokens_per_s", s.decode_tokens_per_s}};
}

// Energy per phase name and per step name, in the summary's orders.
void summarize_energy_rows(const RunReport& report, Summary& out) {
  const EnergyReport& e = *report.energy;
  out.energy = summarize_energy(e, report.steps);
  out.energy_source = e.source;
  for (const PhaseSummary& p : out.phases) {
    EnergyRow row{p.phase, 0, 0, 0};
    double seconds = 0;  // of the records measured: a rank without energy adds no time
    bool measured = false;
    for (const PhaseEnergy& x : e.phases) {
      if (x.phase != p.phase) continue;
      measured = true;
      row.energy_j += x.energy_j;
      seconds += x.duration_s;
    }
    if (!measured) continue;  // after the sampling ended (the gather), or on no measuring rank
    row.mean_power_w = seconds > 0 ? row.energy_j / seconds : 0;
    out.phase_energy.push_back(row);
  }
  std::map<std::tuple<int32_t, int32_t, int32_t>, double> by_step;
  for (const StepEnergy& x : e.steps) by_step[{x.rank, x.workflow, x.step}] += x.energy_j;
  std::vector<std::string> names;
  for (const StepSummary& s : out.steps) names.push_back(s.name);
  names.push_back("all");
  for (const std::string& name : names) {
    EnergyRow row{name, 0, 0, 0};
    int64_t tokens = 0;
    for (const StepRecord& r : report.steps) {
      if (name != "all" && r.name != name) continue;
      auto it = by_step.find({r.rank, r.workflow, r.step});
      if (it == by_step.end()) continue;  // on a rank that measured nothing
      row.energy_j += it->second;
      tokens += r.prompt_tokens + r.decode_tokens;
    }
    row.tokens_per_j = row.energy_j > 0 ? static_cast<double>(tokens) / row.energy_j : 0;
    out.step_energy.push_back(row);
  }
}

std::string format_energy(const Summary& summary) {
  std::string out;
  if (const auto& e = summary.energy) {
    out += "energy (" + summary.energy_source + "): run " + fixed(e->run_energy_j, 1) + " J at " +
           fixed(e->run_mean_power_w, 1) + " W mean, " + fixed(e->tokens_per_j, 3) + " tokens/J (" +
           fixed(e->decode_tokens_per_j, 3) + " decode tokens/J); all phases " +
           fixed(e->total_energy_j, 1) + " J; run from power readings alone " +
           fixed(e->run_energy_from_power_j, 1) + " J\n\n";
  } else {
    out += "energy (" + summary.energy_source + ")\n\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (const EnergyRow& r : summary.phase_energy)
    rows.push_back({r.name, fixed(r.energy_j, 1), fixed(r.mean_power_w, 1)});
  out += markdown_table({"phase", "energy J", "mean W"}, {false, true, true}, rows) + "\n";
  rows.clear();
  for (const EnergyRow& r : summary.step_energy)
    rows.push_back({r.name, fixed(r.energy_j, 1), fixed(r.tokens_per_j, 3)});
  return out + markdown_table({"step", "energy J", "tokens/J"}, {false, true, true}, rows);
}

nlohmann::json energy_json(const Summary& summary) {
  auto rows = [](const std::vector<EnergyRow>& v, bool phases) {
    nlohmann::json out = nlohmann::json::array();
    for (const EnergyRow& r : v)
      out.push_back(
          {{"name", r.name},
           {"energy_j", r.energy_j},
           {phases ? "mean_power_w" : "tokens_per_j", phases ? r.mean_power_w : r.tokens_per_j}});
    return out;
  };
  nlohmann::json j = {{"source", summary.energy_source},
                      {"phases", rows(summary.phase_energy, true)},
                      {"steps", rows(summary.step_energy, false)}};
  if (const auto& e = summary.energy) {
    j["run_energy_j"] = e->run_energy_j;
    j["run_energy_from_power_j"] = e->run_energy_from_power_j;
    j["run_mean_power_w"] = e->run_mean_power_w;
    j["total_energy_j"] = e->total_energy_j;
    j["tokens_per_j"] = e->tokens_per_j;
    j["decode_tokens_per_j"] = e->decode_tokens_per_j;
  }
  return j;
}

}  // namespace

double nearest_rank_percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  const double rank = std::ceil(p / 100.0 * n);  // 1-based
  const size_t index = rank < 1 ? 0 : std::min(values.size(), static_cast<size_t>(rank)) - 1;
  return values[index];
}

Summary summarize(const RunReport& report) {
  Summary out;
  out.workflows = static_cast<int64_t>(report.workflows.size());

  double run_begin = std::numeric_limits<double>::infinity();
  double run_end = -std::numeric_limits<double>::infinity();
  // phase -> rank -> summed duration; phases kept in first-appearance order for unknown names.
  std::map<std::string, std::map<int32_t, double>> per_rank;
  std::vector<std::string> appearance;
  for (const PhaseRecord& p : report.phases) {
    if (p.phase == "run") {
      run_begin = std::min(run_begin, p.start_s);
      run_end = std::max(run_end, p.start_s + p.duration_s);
    }
    if (!per_rank.count(p.phase)) appearance.push_back(p.phase);
    per_rank[p.phase][p.rank] += p.duration_s;
  }
  out.run_wall_s = run_end > run_begin ? run_end - run_begin : 0;

  std::vector<std::string> phase_names;
  for (std::string_view known : kPhaseOrder)
    if (per_rank.count(std::string(known))) phase_names.emplace_back(known);
  for (const std::string& name : appearance)
    if (std::find(kPhaseOrder.begin(), kPhaseOrder.end(), name) == kPhaseOrder.end())
      phase_names.push_back(name);
  for (const std::string& name : phase_names) {
    PhaseSummary ps;
    ps.phase = name;
    for (const auto& [rank, seconds] : per_rank[name]) {
      ++ps.ranks;
      ps.total_s += seconds;
      ps.max_rank_s = std::max(ps.max_rank_s, seconds);
    }
    out.phases.push_back(ps);
  }

  std::map<std::string, int32_t> first_index;
  std::map<std::string, std::vector<const StepRecord*>> by_name;
  std::vector<const StepRecord*> all;
  for (const StepRecord& s : report.steps) {
    if (!s.error.empty()) {  // failed or skipped: no output, no timing worth averaging
      ++out.failed_steps;
      continue;
    }
    auto [it, inserted] = first_index.emplace(s.name, s.step);
    if (!inserted) it->second = std::min(it->second, s.step);
    by_name[s.name].push_back(&s);
    all.push_back(&s);
  }
  std::vector<std::string> names;
  for (const auto& [name, index] : first_index) names.push_back(name);
  std::stable_sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    return first_index[a] < first_index[b];
  });
  for (const std::string& name : names)
    out.steps.push_back(summarize_steps(name, by_name[name], out.run_wall_s));
  out.overall = summarize_steps("all", all, out.run_wall_s);
  out.ranks = report.ranks;
  if (report.energy) summarize_energy_rows(report, out);
  return out;
}

std::string format_summary_table(const Summary& summary, const RunAttributes& attrs) {
  std::string out = "flowrank " + attrs.flowrank_version + " | job " + attrs.job_name +
                    " | model " + attrs.model + " | device " + attrs.device + " | ranks " +
                    std::to_string(attrs.world_size) + " | started " + attrs.started_at +
                    " | workflows " + std::to_string(summary.workflows) + " | run " +
                    fixed(summary.run_wall_s, 3) + " s\n\n";

  std::vector<std::vector<std::string>> rows;
  for (const StepSummary& s : summary.steps) rows.push_back(step_row(s));
  rows.push_back(step_row(summary.overall));
  out += markdown_table(
      {"step", "n", "lat ms", "lat p50", "lat p99", "ttft ms", "ttft p50", "ttft p99", "queued ms",
       "prompt tok", "cached tok", "decode tok", "decode tok/s"},
      {false, true, true, true, true, true, true, true, true, true, true, true, true}, rows);
  out += "\n";

  std::vector<std::vector<std::string>> phase_rows;
  for (const PhaseSummary& p : summary.phases)
    phase_rows.push_back(
        {p.phase, std::to_string(p.ranks), fixed(p.total_s, 3), fixed(p.max_rank_s, 3)});
  out += markdown_table({"phase", "ranks", "total s", "max rank s"}, {false, true, true, true},
                        phase_rows);
  if (summary.failed_steps > 0)
    out += "\n" + std::to_string(summary.failed_steps) +
           " steps failed or were skipped (their errors are in /steps)\n";
  if (summary.ranks.size() > 1 ||
      (summary.ranks.size() == 1 && summary.ranks[0].status != "complete")) {
    std::vector<std::vector<std::string>> rank_rows;
    for (const RankRecord& r : summary.ranks)
      rank_rows.push_back({std::to_string(r.rank), r.host, r.device, r.status,
                           std::to_string(r.steps_done) + "/" + std::to_string(r.steps_total),
                           r.error});
    out += "\n" + markdown_table({"rank", "host", "device", "status", "steps", "error"},
                                 {true, false, false, false, true, false}, rank_rows);
  }
  if (!summary.phase_energy.empty() || summary.energy) out += "\n" + format_energy(summary);
  return out;
}

nlohmann::json summary_json(const Summary& summary, const RunAttributes& attrs) {
  nlohmann::json run = {{"flowrank_version", attrs.flowrank_version},
                        {"job_name", attrs.job_name},
                        {"job_sha256", attrs.job_sha256},
                        {"model", attrs.model},
                        {"device", attrs.device},
                        {"world_size", attrs.world_size},
                        {"started_at", attrs.started_at},
                        {"extra", attrs.extra}};
  nlohmann::json steps = nlohmann::json::array();
  for (const StepSummary& s : summary.steps) steps.push_back(step_json(s));
  nlohmann::json phases = nlohmann::json::array();
  for (const PhaseSummary& p : summary.phases)
    phases.push_back({{"phase", p.phase},
                      {"ranks", p.ranks},
                      {"total_s", p.total_s},
                      {"max_rank_s", p.max_rank_s}});
  nlohmann::json ranks = nlohmann::json::array();
  for (const RankRecord& r : summary.ranks)
    ranks.push_back({{"rank", r.rank},
                     {"host", r.host},
                     {"device", r.device},
                     {"status", r.status},
                     {"error", r.error},
                     {"steps_done", r.steps_done},
                     {"steps_total", r.steps_total},
                     {"engine_steps", r.engine_steps},
                     {"engine_computed_tokens", r.engine_computed_tokens},
                     {"weights", r.weights},
                     {"energy", r.energy}});
  nlohmann::json out = {{"run", run},
                        {"ranks", ranks},
                        {"failed_steps", summary.failed_steps},
                        {"steps", steps},
                        {"overall", step_json(summary.overall)},
                        {"phases", phases},
                        {"run_wall_s", summary.run_wall_s},
                        {"workflows", summary.workflows}};
  if (!summary.energy_source.empty()) out["energy"] = energy_json(summary);
  return out;
}

std::string format_summary_json(const Summary& summary, const RunAttributes& attrs) {
  // `replace` keeps a report with odd bytes in a name printable instead of throwing.
  return summary_json(summary, attrs).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace flowrank::report
