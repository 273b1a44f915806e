#include "flowrank/report/trace.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace flowrank::report {
namespace {

using nlohmann::json;

constexpr int kStepLaneBase = 1000;  // thread ids of step lanes; phase lanes count from 0

struct Span {
  double start_s;
  double end_s;
  json event;
};

// Greedy interval partitioning: each span (by start) goes to the first lane free at its start.
void add_lanes(json& events, std::vector<Span> spans, int32_t rank, int tid_base,
               const std::string& lane_name) {
  std::stable_sort(spans.begin(), spans.end(),
                   [](const Span& a, const Span& b) { return a.start_s < b.start_s; });
  std::vector<double> lane_end;
  for (Span& s : spans) {
    size_t lane = 0;
    while (lane < lane_end.size() && lane_end[lane] > s.start_s) ++lane;
    if (lane == lane_end.size()) {
      lane_end.push_back(0);
      events.push_back({{"ph", "M"},
                        {"name", "thread_name"},
                        {"pid", rank},
                        {"tid", tid_base + static_cast<int>(lane)},
                        {"args", {{"name", lane_name + " " + std::to_string(lane)}}}});
    }
    lane_end[lane] = s.end_s;
    s.event["pid"] = rank;
    s.event["tid"] = tid_base + static_cast<int>(lane);
    s.event["ph"] = "X";
    s.event["ts"] = s.start_s * 1e6;
    s.event["dur"] = std::max(0.0, s.end_s - s.start_s) * 1e6;
    events.push_back(std::move(s.event));
  }
}

}  // namespace

std::string chrome_trace_json(const RunReport& report) {
  std::set<int32_t> ranks;
  for (const auto& p : report.phases) ranks.insert(p.rank);
  for (const auto& s : report.steps) ranks.insert(s.rank);
  for (const auto& r : report.ranks) ranks.insert(r.rank);
  std::map<int32_t, const RankRecord*> rank_info;
  for (const auto& r : report.ranks) rank_info[r.rank] = &r;

  json events = json::array();
  for (int32_t rank : ranks) {
    std::string name = "rank " + std::to_string(rank);
    if (auto it = rank_info.find(rank); it != rank_info.end())
      name += " (" + it->second->host + ", " + it->second->device + ")";
    events.push_back({{"ph", "M"},
                      {"name", "process_name"},
                      {"pid", rank},
                      {"tid", 0},
                      {"args", {{"name", name}}}});
    events.push_back({{"ph", "M"},
                      {"name", "process_sort_index"},
                      {"pid", rank},
                      {"tid", 0},
                      {"args", {{"sort_index", rank}}}});
    std::vector<Span> phases, steps;
    for (const auto& p : report.phases) {
      if (p.rank != rank) continue;
      phases.push_back(
          {p.start_s, p.start_s + p.duration_s, {{"name", p.phase}, {"cat", "phase"}}});
    }
    for (const auto& s : report.steps) {
      if (s.rank != rank) continue;
      json args = {{"workflow", s.workflow},
                   {"step", s.step},
                   {"prompt_tokens", s.prompt_tokens},
                   {"cached_tokens", s.cached_tokens},
                   {"decode_tokens", s.decode_tokens},
                   {"ttft_ms", s.ttft_ms},
                   {"finish", s.finish},
                   {"output_sha256_8", s.output_sha256_8}};
      if (!s.error.empty()) args["error"] = s.error;
      steps.push_back({s.start_s,
                       s.end_s,
                       {{"name", s.name + " wf" + std::to_string(s.workflow)},
                        {"cat", "step"},
                        {"args", std::move(args)}}});
    }
    add_lanes(events, std::move(phases), rank, 0, "phases");
    add_lanes(events, std::move(steps), rank, kStepLaneBase, "steps");
  }
  json out = {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
  out["metadata"] = {{"job_name", report.attrs.job_name},
                     {"job_sha256", report.attrs.job_sha256},
                     {"world_size", report.attrs.world_size},
                     {"started_at", report.attrs.started_at}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace flowrank::report
