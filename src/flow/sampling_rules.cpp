#include "sampling_rules.hpp"

#include <cmath>
#include <limits>
#include <sstream>

namespace flowrank::flow::detail {
namespace {

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

}  // namespace

SamplingKeyKind sampling_key_kind(std::string_view key) {
  if (key == "max_tokens" || key == "top_k" || key == "seed") return SamplingKeyKind::kInt;
  if (key == "temperature" || key == "top_p") return SamplingKeyKind::kFloat;
  if (key == "stop") return SamplingKeyKind::kStrings;
  if (key == "ignore_eos") return SamplingKeyKind::kBool;
  return SamplingKeyKind::kUnknown;
}

std::string sampling_int_problem(std::string_view key, int64_t value) {
  const std::string got = ", got " + std::to_string(value);
  if (key == "max_tokens" && (value < 1 || value > kInt32Max))
    return "must be an integer in [1, " + std::to_string(kInt32Max) + "]" + got;
  if (key == "top_k" && (value < 0 || value > kInt32Max))
    return "must be an integer in [0, " + std::to_string(kInt32Max) + "] (0 = off)" + got;
  if (key == "seed" && value < 0) return "must be >= 0" + got;
  return {};
}

std::string sampling_float_problem(std::string_view key, double value) {
  const std::string got = ", got " + number_text(value);
  if (key == "temperature" && !(std::isfinite(value) && value >= 0))
    return "must be a number >= 0 (0 = greedy)" + got;
  if (key == "top_p" && !(value > 0 && value <= 1)) return "must be in (0, 1]" + got;
  return {};
}

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace flowrank::flow::detail
