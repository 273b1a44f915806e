#include "flowrank/run/progress.hpp"

#include <cmath>
#include <cstdio>

namespace flowrank::run {

std::string format_progress(const ProgressSnapshot& p) {
  const double tps = p.elapsed_s > 0 ? static_cast<double>(p.decode_tokens) / p.elapsed_s : 0.0;
  std::string eta = "?";
  if (p.steps_done > 0 && p.steps_done < p.steps_total) {
    // Steps are not equal in cost, but over a batch of workflows the average is a fair guide.
    const double remaining = p.elapsed_s / p.steps_done * (p.steps_total - p.steps_done);
    const long s = std::lround(remaining);
    eta = std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
  } else if (p.steps_done == p.steps_total) {
    eta = "0m00s";
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "steps %d/%d  decode %.1f tok/s  elapsed %.1fs  ETA %s",
                p.steps_done, p.steps_total, tps, p.elapsed_s, eta.c_str());
  return buf;
}

ProgressDisplay::ProgressDisplay(std::FILE* out, bool terminal, double interval_s)
    : out_(out), terminal_(terminal), interval_s_(interval_s), last_(Clock::now()) {}

void ProgressDisplay::update(const ProgressSnapshot& p) {
  const auto now = Clock::now();
  const bool last_step = p.steps_done == p.steps_total;
  if (terminal_) {
    std::fprintf(out_, "\r\033[K%s", format_progress(p).c_str());
    std::fflush(out_);
    printed_ = true;
  } else if (last_step || seconds_between(last_, now) >= interval_s_) {
    std::fprintf(out_, "[progress] %s\n", format_progress(p).c_str());
    std::fflush(out_);
    last_ = now;
  }
}

void ProgressDisplay::finish() {
  if (terminal_ && printed_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  printed_ = false;
}

}  // namespace flowrank::run
