#include "flowrank/report/seed_log.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

#include "number_text.hpp"

namespace flowrank::report {
namespace {

using detail::fixed;

SeedLine err(std::string text) {
  return {false, std::move(text) + "\n"};
}

// Earliest start and latest end of a phase over ranks; nullopt when no rank recorded it.
std::optional<std::pair<double, double>> phase_span(const RunReport& r, std::string_view phase) {
  std::optional<std::pair<double, double>> span;
  for (const PhaseRecord& p : r.phases) {
    if (p.phase != phase) continue;
    const double end = p.start_s + p.duration_s;
    span = span ? std::pair{std::min(span->first, p.start_s), std::max(span->second, end)}
                : std::pair{p.start_s, end};
  }
  return span;
}

// The longest record of a phase over ranks: the rank that gated the next phase.
std::optional<double> phase_max_s(const RunReport& r, std::string_view phase) {
  std::optional<double> v;
  for (const PhaseRecord& p : r.phases)
    if (p.phase == phase) v = std::max(v.value_or(p.duration_s), p.duration_s);
  return v;
}

}  // namespace

SeedLine seed_input_line(const std::string& fixture_bytes, const std::string& fixture_files) {
  return {true,
          "[INPUT] fixture_bytes=" + fixture_bytes + " fixture_files=" + fixture_files + "\n"};
}

SeedLine seed_expansion_line(double ms, const std::string& flow_cache) {
  std::string text = "[TIMING] flow_expansion_ms=" + fixed(ms, 2);
  if (flow_cache == "hit") text += " (cached)";
  if (flow_cache == "miss" || flow_cache == "off") text += " (generated)";
  return err(std::move(text));
}

SeedLine seed_engine_init_start_line() {
  return err("[TIMING] engine_init_start");
}

SeedLine seed_engine_init_line(double ms) {
  return err("[TIMING] engine_init_ms=" + fixed(ms, 2));
}

SeedLine seed_target_line(const StepRecord& s, const StepEnergy* energy) {
  std::string text = "[TARGET] flow=" + std::to_string(s.workflow + 1) + " step=" + s.name +
                     " latency_ms=" + fixed(s.latency_ms, 2) +
                     " prompt_tokens=" + std::to_string(s.prompt_tokens) +
                     " decode_tokens=" + std::to_string(s.decode_tokens) +
                     " prefill_tokens=" + std::to_string(s.prompt_tokens - s.cached_tokens) +
                     " reused_tokens=" + std::to_string(s.cached_tokens);
  if (energy)
    text +=
        " power_w=" + fixed(energy->mean_power_w, 2) + " energy_j=" + fixed(energy->energy_j, 2);
  return err(std::move(text));
}

SeedLine seed_workflow_line(const WorkflowRecord& w) {
  return err("[TIMING] workflow_" + std::to_string(w.workflow + 1) +
             "_ms=" + fixed((w.end_s - w.start_s) * 1000.0, 2));
}

std::vector<SeedLine> seed_closing_lines(const RunReport& report) {
  std::vector<SeedLine> out;
  // The harness timed its benchmark from just before creating the engine to the last step.
  const auto preload = phase_span(report, "engine_preload");
  const auto run = phase_span(report, "run");
  std::optional<std::pair<double, double>> total;
  if (run)
    total = std::pair{preload ? std::min(preload->first, run->first) : run->first, run->second};
  if (!total && !report.workflows.empty()) {
    total = {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
    for (const WorkflowRecord& w : report.workflows)
      total = std::pair{std::min(total->first, w.start_s), std::max(total->second, w.end_s)};
  }
  if (total)
    out.push_back(
        err("[TIMING] benchmark_total_ms=" + fixed((total->second - total->first) * 1000.0, 2)));
  if (!report.workflows.empty()) {
    double sum = 0;
    for (const WorkflowRecord& w : report.workflows) sum += w.end_s - w.start_s;
    out.push_back(err("[TIMING] avg_workflow_ms=" +
                      fixed(sum * 1000.0 / static_cast<double>(report.workflows.size()), 2)));
  }
  return out;
}

std::vector<SeedLine> seed_log_lines(const RunReport& report) {
  const RunAttributes& a = report.attrs;
  std::vector<SeedLine> out;
  auto fb = a.extra.find("fixture_bytes");
  auto ff = a.extra.find("fixture_files");
  if (fb != a.extra.end() && ff != a.extra.end()) {
    auto wf = a.extra.find("workflows");
    const long n =
        wf != a.extra.end() ? std::max(1L, std::strtol(wf->second.c_str(), nullptr, 10)) : 1;
    for (long i = 0; i < n; ++i) out.push_back(seed_input_line(fb->second, ff->second));
  }
  if (auto expand = phase_max_s(report, "flow_expand")) {
    auto cache = a.extra.find("flow_cache");
    out.push_back(
        seed_expansion_line(*expand * 1000.0, cache != a.extra.end() ? cache->second : ""));
  }
  if (auto preload = phase_max_s(report, "engine_preload")) {
    out.push_back(seed_engine_init_start_line());
    out.push_back(seed_engine_init_line(*preload * 1000.0));
  }

  std::map<std::tuple<int32_t, int32_t, int32_t>, const StepEnergy*> energy;
  if (report.energy)
    for (const StepEnergy& e : report.energy->steps) energy[{e.rank, e.workflow, e.step}] = &e;
  std::map<int32_t, std::vector<const StepRecord*>> steps_by_wf;
  for (const StepRecord& s : report.steps) steps_by_wf[s.workflow].push_back(&s);
  std::map<int32_t, const WorkflowRecord*> wf_records;
  for (const WorkflowRecord& w : report.workflows) wf_records[w.workflow] = &w;
  std::set<int32_t> workflows;
  for (const auto& [wf, steps] : steps_by_wf) workflows.insert(wf);
  for (const auto& [wf, rec] : wf_records) workflows.insert(wf);
  for (int32_t wf : workflows) {
    if (auto it = steps_by_wf.find(wf); it != steps_by_wf.end()) {
      std::vector<const StepRecord*> steps = it->second;
      std::stable_sort(steps.begin(), steps.end(),
                       [](const StepRecord* x, const StepRecord* y) { return x->step < y->step; });
      for (const StepRecord* s : steps) {
        if (!s->error.empty()) continue;  // failed or skipped: nothing the harness would print
        auto e = energy.find({s->rank, s->workflow, s->step});
        out.push_back(seed_target_line(*s, e != energy.end() ? e->second : nullptr));
      }
    }
    if (auto rec = wf_records.find(wf); rec != wf_records.end())
      out.push_back(seed_workflow_line(*rec->second));
  }
  for (SeedLine& line : seed_closing_lines(report)) out.push_back(std::move(line));
  return out;
}

}  // namespace flowrank::report
