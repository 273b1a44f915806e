#include "json_input.hpp"

#include <limits>
#include <set>
#include <vector>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow::detail {

nlohmann::json read_json(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  nlohmann::json j;
  // nlohmann keeps the last of duplicate keys silently; a duplicated step key is almost surely a
  // mistake, so the parse callback rejects it.
  std::vector<std::set<std::string>> open_objects;
  auto reject_duplicates = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second)
        throw InputError(path.string(), one_line("duplicate key '" + key + "'"));
    }
    return true;
  };
  try {
    j = nlohmann::json::parse(bytes, reject_duplicates);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep "parse error at line..".
    if (auto close = what.find("] "); what.rfind("[json.exception", 0) == 0 && close != what.npos)
      what = what.substr(close + 2);
    throw InputError(path.string(), one_line("invalid JSON: " + what));
  }
  return j;
}

nlohmann::json read_json_object(const std::filesystem::path& path) {
  nlohmann::json j = read_json(path);
  if (!j.is_object())
    throw InputError(path.string(), "must be a JSON object, got " + json_type_name(j));
  return j;
}

std::string json_type_name(const nlohmann::json& j) {
  if (j.is_string()) return "a string";
  if (j.is_number_integer()) return "an integer";
  if (j.is_number_float()) return "a number";
  if (j.is_boolean()) return "a boolean";
  if (j.is_array()) return "an array";
  if (j.is_object()) return "an object";
  return "null";
}

SamplingOverride json_sampling(const std::string& file, const std::string& where,
                               const nlohmann::json& j) {
  auto fail = [&](const std::string& key, const std::string& problem) {
    throw InputError(file, one_line(where + "." + key + ": " + problem));
  };
  if (!j.is_object())
    throw InputError(file, where + ": must be an object, got " + json_type_name(j));
  SamplingOverride s;
  for (const auto& [key, v] : j.items()) {
    switch (sampling_key_kind(key)) {
      case SamplingKeyKind::kInt: {
        if (!v.is_number_integer()) fail(key, "must be an integer, got " + json_type_name(v));
        int64_t n;
        if (v.is_number_unsigned()) {
          const auto u = v.get<uint64_t>();
          if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            fail(key, "is out of range");
          n = static_cast<int64_t>(u);
        } else {
          n = v.get<int64_t>();
        }
        if (auto p = sampling_int_problem(key, n); !p.empty()) fail(key, p);
        if (key == "max_tokens") s.max_tokens = static_cast<int32_t>(n);
        if (key == "top_k") s.top_k = static_cast<int32_t>(n);
        if (key == "seed") s.seed = static_cast<uint64_t>(n);
        break;
      }
      case SamplingKeyKind::kFloat: {
        if (!v.is_number()) fail(key, "must be a number, got " + json_type_name(v));
        const double d = v.get<double>();
        if (auto p = sampling_float_problem(key, d); !p.empty()) fail(key, p);
        if (key == "temperature") s.temperature = static_cast<float>(d);
        if (key == "top_p") s.top_p = static_cast<float>(d);
        break;
      }
      case SamplingKeyKind::kStrings: {
        if (!v.is_array()) fail(key, "must be an array of strings, got " + json_type_name(v));
        std::vector<std::string> stops;
        for (const auto& el : v) {
          if (!el.is_string()) fail(key, "must be an array of strings, has " + json_type_name(el));
          if (el.get_ref<const std::string&>().empty()) fail(key, "stop strings must not be empty");
          stops.push_back(el.get<std::string>());
        }
        s.stop = std::move(stops);
        break;
      }
      case SamplingKeyKind::kBool:
        if (!v.is_boolean()) fail(key, "must be true or false, got " + json_type_name(v));
        s.ignore_eos = v.get<bool>();
        break;
      case SamplingKeyKind::kUnknown:
        throw InputError(file, one_line(where + ": unknown key '" + key + "'"));
    }
  }
  return s;
}

}  // namespace flowrank::flow::detail
