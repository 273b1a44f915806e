#include "flowrank/flow/flow_template.hpp"

#include <map>

#include "flowrank/common/error.hpp"
#include "json_input.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow {

FlowTemplate load_flow_template(const std::filesystem::path& path) {
  const std::string file = path.string();
  const nlohmann::json j = detail::read_json_object(path);
  auto fail = [&](const std::string& problem) -> void {
    throw InputError(file, detail::one_line(problem));
  };
  auto string_of = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_string()) fail(key + ": must be a string, got " + detail::json_type_name(v));
    return v.get<std::string>();
  };

  FlowTemplate t;
  t.path = path;
  t.canonical = j.dump();  // nlohmann objects are key-sorted maps: this is the canonical form
  bool has_name = false, has_input = false, has_steps = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "name") {
      t.name = string_of(v, key);
      if (t.name.empty()) fail("name: must not be empty");
      has_name = true;
    } else if (key == "input") {
      t.input = string_of(v, key);
      has_input = true;
    } else if (key == "steps") {
      has_steps = true;
    } else {
      fail("unknown key '" + key + "'");
    }
  }
  if (!has_name) fail("missing required key 'name'");
  if (!has_input) fail("missing required key 'input'");
  if (!has_steps) fail("missing required key 'steps'");

  const nlohmann::json& steps = j.at("steps");
  if (!steps.is_array() || steps.empty()) fail("steps: must be a non-empty array of step objects");
  std::map<std::string, int32_t> index_of;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const nlohmann::json& s = steps[i];
    const std::string at = "step " + std::to_string(i);
    if (!s.is_object()) fail(at + ": must be an object, got " + detail::json_type_name(s));
    TemplateStep step;
    if (!s.contains("name")) fail(at + ": missing required key 'name'");
    step.name = string_of(s.at("name"), at + ": name");
    if (step.name.empty()) fail(at + ": name must not be empty");
    const std::string named = "step '" + step.name + "'";
    if (index_of.count(step.name)) fail(named + ": duplicate step name");
    if (!s.contains("instruction")) fail(named + ": missing required key 'instruction'");
    for (const auto& [key, v] : s.items()) {
      if (key == "name") continue;
      if (key == "instruction") {
        step.instruction = string_of(v, named + ": instruction");
      } else if (key == "uses") {
        if (!v.is_array()) fail(named + ": uses: must be an array of step names");
        for (const auto& u : v) {
          const std::string used = string_of(u, named + ": uses");
          if (used == step.name) fail(named + ": uses itself");
          auto it = index_of.find(used);
          if (it == index_of.end()) {
            bool later = false;
            for (std::size_t k = i + 1; k < steps.size(); ++k)
              later = later || (steps[k].is_object() && steps[k].value("name", "") == used);
            fail(named + ": uses '" + used + "', " +
                 (later ? "a later step (uses may name only earlier steps)" : "an unknown step"));
          }
          for (int32_t prev : step.uses)
            if (prev == it->second) fail(named + ": uses '" + used + "' twice");
          step.uses.push_back(it->second);
        }
      } else if (key == "sampling") {
        step.sampling = detail::json_sampling(file, named + ": sampling", v);
      } else {
        fail(named + ": unknown key '" + key + "'");
      }
    }
    index_of[step.name] = static_cast<int32_t>(i);
    t.steps.push_back(std::move(step));
  }
  return t;
}

}  // namespace flowrank::flow
