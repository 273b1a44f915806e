#pragma once
// Live progress: on a terminal one line rewritten in place; otherwise a plain line every
// `interval_s` seconds (logs of batch jobs stay readable).
#include <cstdio>
#include <string>

#include "flowrank/common/clock.hpp"
#include "flowrank/run/executor.hpp"

namespace flowrank::run {

std::string format_progress(const ProgressSnapshot& p);

class ProgressDisplay {
 public:
  ProgressDisplay(std::FILE* out, bool terminal, double interval_s = 10.0);
  void update(const ProgressSnapshot& p);
  void finish();  // ends the live line

 private:
  std::FILE* out_;
  bool terminal_;
  double interval_s_;
  Clock::time_point last_{};
  bool printed_ = false;
};

}  // namespace flowrank::run
