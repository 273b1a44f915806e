#pragma once
// Reading JSON inputs (templates, suites) with one-line errors naming the file.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "flowrank/flow/job.hpp"

namespace flowrank::flow::detail {

// Parses a JSON value from `path`; throws InputError "<file>: <parse problem>".
nlohmann::json read_json(const std::filesystem::path& path);
// The same, and the value must be an object.
nlohmann::json read_json_object(const std::filesystem::path& path);

std::string json_type_name(const nlohmann::json& j);

// Parses a `sampling` object; `where` prefixes key names in errors ("step 'planner': sampling").
SamplingOverride json_sampling(const std::string& file, const std::string& where,
                               const nlohmann::json& j);

}  // namespace flowrank::flow::detail
