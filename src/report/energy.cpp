#include "flowrank/report/energy.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "flowrank/report/records.hpp"

namespace flowrank::report {
namespace {

std::size_t first_after(const std::vector<PowerSample>& s, double t) {
  return static_cast<std::size_t>(
      std::upper_bound(s.begin(), s.end(), t,
                       [](double v, const PowerSample& x) { return v < x.t_s; }) -
      s.begin());
}

// A sample field linearly interpolated at t (`after` = first sample later than t), held at the
// nearest sample outside the sampled span.
double field_at(const std::vector<PowerSample>& s, std::size_t after, double t,
                double PowerSample::*field) {
  if (after == 0) return s.front().*field;
  if (after == s.size()) return s.back().*field;
  const PowerSample& a = s[after - 1];
  const PowerSample& b = s[after];
  if (b.t_s <= a.t_s) return b.*field;
  return a.*field + (b.*field - a.*field) * (t - a.t_s) / (b.t_s - a.t_s);
}

bool has_counter(const std::vector<PowerSample>& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](const PowerSample& x) { return std::isfinite(x.counter_j); });
}

double from_counter(const std::vector<PowerSample>& s, double t0, double t1) {
  if (t1 <= t0) return 0;
  const double lo = s.front().t_s, hi = s.back().t_s;
  double joules = 0;
  if (t0 < lo) joules += s.front().power_w * (std::min(t1, lo) - t0);
  if (t1 > hi) joules += s.back().power_w * (t1 - std::max(t0, hi));
  const double a = std::max(t0, lo), b = std::min(t1, hi);
  if (b > a)
    joules += field_at(s, first_after(s, b), b, &PowerSample::counter_j) -
              field_at(s, first_after(s, a), a, &PowerSample::counter_j);
  return joules;
}

double between(const std::vector<PowerSample>& s, bool counter, double t0, double t1) {
  return counter ? from_counter(s, t0, t1) : energy_from_power(s, t0, t1);
}

double mean_power(const std::vector<PowerSample>& s, bool counter, double t0, double t1) {
  if (t1 > t0) return between(s, counter, t0, t1) / (t1 - t0);
  return field_at(s, first_after(s, t0), t0, &PowerSample::power_w);
}

}  // namespace

double energy_from_power(const std::vector<PowerSample>& s, double t0, double t1) {
  if (s.empty() || t1 <= t0) return 0;
  std::size_t i = first_after(s, t0);
  double t = t0, p = field_at(s, i, t0, &PowerSample::power_w), joules = 0;
  for (; i < s.size() && s[i].t_s < t1; ++i) {
    joules += (s[i].t_s - t) * (p + s[i].power_w) / 2;
    t = s[i].t_s;
    p = s[i].power_w;
  }
  return joules + (t1 - t) * (p + field_at(s, i, t1, &PowerSample::power_w)) / 2;
}

double energy_between(const std::vector<PowerSample>& s, double t0, double t1) {
  if (s.empty()) return 0;
  return between(s, has_counter(s), t0, t1);
}

std::optional<EnergyReport> attribute_energy(std::string source, std::vector<PowerSample> samples,
                                             const std::vector<PhaseRecord>& phases,
                                             const std::vector<StepRecord>& steps) {
  if (samples.empty()) return std::nullopt;
  EnergyReport out;
  out.source = std::move(source);
  out.samples = std::move(samples);
  const auto& s = out.samples;
  const bool counter = has_counter(s);
  for (const PhaseRecord& p : phases) {
    const double end = p.start_s + p.duration_s;
    out.phases.push_back({p.rank, p.phase, p.start_s, p.duration_s,
                          between(s, counter, p.start_s, end),
                          mean_power(s, counter, p.start_s, end)});
  }

  // Shares: with S(t) = integral of power / (steps running) over the time any step runs, a step
  // running over [a, b] gets S(b) - S(a). Breakpoints are the window ends and the samples
  // between them, so power is linear and the running count constant on every segment.
  std::vector<std::pair<double, double>> windows;
  std::vector<double> points;
  for (const StepRecord& r : steps) {
    const double a = r.start_s + r.queued_ms / 1e3;
    const double b = std::max(a, r.end_s);
    windows.emplace_back(a, b);
    points.push_back(a);
    points.push_back(b);
  }
  if (!points.empty()) {
    const auto [lo, hi] = std::minmax_element(points.begin(), points.end());
    const double from = *lo, to = *hi;
    for (const PowerSample& x : s)
      if (x.t_s > from && x.t_s < to) points.push_back(x.t_s);
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  auto index_of = [&](double t) {
    return static_cast<std::size_t>(std::lower_bound(points.begin(), points.end(), t) -
                                    points.begin());
  };
  std::vector<int64_t> delta(points.size() + 1, 0);
  for (const auto& [a, b] : windows) {
    if (b <= a) continue;
    ++delta[index_of(a)];
    --delta[index_of(b)];
  }
  std::vector<double> share(points.size(), 0);
  int64_t running = 0;
  for (std::size_t k = 0; k + 1 < points.size(); ++k) {
    running += delta[k];
    const double e = running > 0 ? between(s, counter, points[k], points[k + 1]) / running : 0;
    share[k + 1] = share[k] + e;
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto [a, b] = windows[i];
    out.steps.push_back({steps[i].rank, steps[i].workflow, steps[i].step,
                         share[index_of(b)] - share[index_of(a)], mean_power(s, counter, a, b)});
  }
  return out;
}

std::string energy_source(const std::vector<RankRecord>& ranks,
                          const std::vector<PowerSample>& samples) {
  std::set<int32_t> sampled;
  for (const PowerSample& x : samples) sampled.insert(x.rank);
  std::vector<const RankRecord*> measured;
  for (const RankRecord& r : ranks)
    if (sampled.count(r.rank)) measured.push_back(&r);
  if (measured.size() == 1) return measured[0]->energy;
  std::string out;
  for (const RankRecord* r : measured)
    out += (out.empty() ? "rank " : "; rank ") + std::to_string(r->rank) + ": " + r->energy;
  return out;
}

std::optional<EnergySummary> summarize_energy(const EnergyReport& energy,
                                              const std::vector<StepRecord>& steps) {
  std::map<int32_t, std::vector<PowerSample>> samples_of;  // each board's own trace
  for (const PowerSample& x : energy.samples) samples_of[x.rank].push_back(x);
  EnergySummary out;
  std::set<int32_t> measured;  // ranks with energy for their run phase
  double run_s = 0;
  for (const PhaseEnergy& p : energy.phases) {
    out.total_energy_j += p.energy_j;
    if (p.phase != "run") continue;
    measured.insert(p.rank);
    out.run_energy_j += p.energy_j;
    out.run_energy_from_power_j +=
        energy_from_power(samples_of[p.rank], p.start_s, p.start_s + p.duration_s);
    run_s += p.duration_s;
  }
  if (measured.empty()) return std::nullopt;
  out.run_mean_power_w = run_s > 0 ? out.run_energy_j / run_s : 0;
  std::set<std::tuple<int32_t, int32_t, int32_t>> shared;  // steps with a share of the energy
  for (const StepEnergy& x : energy.steps) shared.insert({x.rank, x.workflow, x.step});
  int64_t prompt = 0, decode = 0;
  for (const StepRecord& r : steps) {
    if (!measured.count(r.rank) || !shared.count({r.rank, r.workflow, r.step})) continue;
    prompt += r.prompt_tokens;
    decode += r.decode_tokens;
  }
  if (out.run_energy_j > 0) {
    out.tokens_per_j = static_cast<double>(prompt + decode) / out.run_energy_j;
    out.decode_tokens_per_j = static_cast<double>(decode) / out.run_energy_j;
  }
  return out;
}

}  // namespace flowrank::report
