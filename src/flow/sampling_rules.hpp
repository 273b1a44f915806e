#pragma once
// Range rules for sampling keys, shared by the TOML (job) and JSON (template) readers.
#include <cstdint>
#include <string>
#include <string_view>

namespace flowrank::flow::detail {

enum class SamplingKeyKind { kInt, kFloat, kStrings, kBool, kUnknown };

SamplingKeyKind sampling_key_kind(std::string_view key);

// An empty string when `value` is allowed for `key`, else the problem ("must be >= 1, got 0").
std::string sampling_int_problem(std::string_view key, int64_t value);
std::string sampling_float_problem(std::string_view key, double value);

// Replaces newlines so that a library's message fits the one-line error rule.
std::string one_line(std::string text);

}  // namespace flowrank::flow::detail

#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow::detail {

// Sorted-key JSON of an effective sampling: cache payload and cache key use the same form.
std::string sampling_canonical(const StepSampling& sampling);

}  // namespace flowrank::flow::detail
