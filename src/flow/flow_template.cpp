#include "flowrank/flow/flow_template.hpp"

#include <map>

#include "flowrank/common/error.hpp"
#include "json_input.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow {
namespace {

// Reads one template file; every problem becomes "<file>: <problem>".
class TemplateReader {
 public:
  explicit TemplateReader(const std::filesystem::path& path) : file_(path.string()) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw InputError(file_, detail::one_line(problem));
  }
  std::string string_of(const nlohmann::json& v, const std::string& key) const {
    if (!v.is_string()) fail(key + ": must be a string, got " + detail::json_type_name(v));
    return v.get<std::string>();
  }
  const nlohmann::json& steps_array(const nlohmann::json& j) const {
    const nlohmann::json& steps = j.at("steps");
    if (!steps.is_array() || steps.empty())
      fail("steps: must be a non-empty array of step objects");
    return steps;
  }
  // Name and object checks every step gets, in either format.
  std::string step_name(const nlohmann::json& s, std::size_t i,
                        const std::map<std::string, int32_t>& index_of) const {
    const std::string at = "step " + std::to_string(i);
    if (!s.is_object()) fail(at + ": must be an object, got " + detail::json_type_name(s));
    if (!s.contains("name")) fail(at + ": missing required key 'name'");
    std::string name = string_of(s.at("name"), at + ": name");
    if (name.empty()) fail(at + ": name must not be empty");
    if (index_of.count(name)) fail("step '" + name + "': duplicate step name");
    return name;
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

std::vector<int32_t> read_uses(const TemplateReader& r, const nlohmann::json& v,
                               const nlohmann::json& steps, std::size_t i, const TemplateStep& step,
                               const std::map<std::string, int32_t>& index_of) {
  const std::string named = "step '" + step.name + "'";
  if (!v.is_array()) r.fail(named + ": uses: must be an array of step names");
  std::vector<int32_t> uses;
  for (const auto& u : v) {
    const std::string used = r.string_of(u, named + ": uses");
    if (used == step.name) r.fail(named + ": uses itself");
    auto it = index_of.find(used);
    if (it == index_of.end()) {
      bool later = false;
      for (std::size_t k = i + 1; k < steps.size(); ++k)
        later = later || (steps[k].is_object() && steps[k].value("name", "") == used);
      r.fail(named + ": uses '" + used + "', " +
             (later ? "a later step (uses may name only earlier steps)" : "an unknown step"));
    }
    for (int32_t prev : uses)
      if (prev == it->second) r.fail(named + ": uses '" + used + "' twice");
    uses.push_back(it->second);
  }
  return uses;
}

void read_flowrank_template(const TemplateReader& r, const nlohmann::json& j, FlowTemplate& t) {
  bool has_name = false, has_input = false, has_steps = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "name") {
      t.name = r.string_of(v, key);
      if (t.name.empty()) r.fail("name: must not be empty");
      has_name = true;
    } else if (key == "input") {
      t.input = r.string_of(v, key);
      has_input = true;
    } else if (key == "steps") {
      has_steps = true;
    } else {
      r.fail("unknown key '" + key + "'");
    }
  }
  if (!has_name) r.fail("missing required key 'name'");
  if (!has_input) r.fail("missing required key 'input'");
  if (!has_steps) r.fail("missing required key 'steps'");

  const nlohmann::json& steps = r.steps_array(j);
  std::map<std::string, int32_t> index_of;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const nlohmann::json& s = steps[i];
    TemplateStep step;
    step.name = r.step_name(s, i, index_of);
    const std::string named = "step '" + step.name + "'";
    if (!s.contains("instruction")) r.fail(named + ": missing required key 'instruction'");
    for (const auto& [key, v] : s.items()) {
      if (key == "name") continue;
      if (key == "instruction") {
        step.instruction = r.string_of(v, named + ": instruction");
      } else if (key == "uses") {
        step.uses = read_uses(r, v, steps, i, step, index_of);
      } else if (key == "sampling") {
        step.sampling = detail::json_sampling(r.file(), named + ": sampling", v);
      } else {
        r.fail(named + ": unknown key '" + key + "'");
      }
    }
    index_of[step.name] = static_cast<int32_t>(i);
    t.steps.push_back(std::move(step));
  }
}

// The seed harness's flow file (flows/three_step.json): no name, `input`, and steps of only
// `name` and `instruction`. Its reader defaulted a missing `input` or `instruction` to "".
bool has_harness_shape(const nlohmann::json& j) {
  if (j.contains("name") || !j.contains("steps") || !j.at("steps").is_array()) return false;
  for (const auto& [key, v] : j.items())
    if (key != "input" && key != "steps") return false;
  for (const auto& s : j.at("steps")) {
    if (!s.is_object()) return false;
    for (const auto& [key, v] : s.items())
      if (key != "name" && key != "instruction") return false;
  }
  return true;
}

void read_harness_template(const TemplateReader& r, const nlohmann::json& j, FlowTemplate& t) {
  t.name = t.path.stem().string();
  if (j.contains("input")) t.input = r.string_of(j.at("input"), "input");
  const nlohmann::json& steps = r.steps_array(j);
  std::map<std::string, int32_t> index_of;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    TemplateStep step;
    step.name = r.step_name(steps[i], i, index_of);
    if (steps[i].contains("instruction"))
      step.instruction =
          r.string_of(steps[i].at("instruction"), "step '" + step.name + "': instruction");
    index_of[step.name] = static_cast<int32_t>(i);
    t.steps.push_back(std::move(step));
  }
}

}  // namespace

FlowTemplate load_flow_template(const std::filesystem::path& path) {
  const TemplateReader r(path);
  const nlohmann::json j = detail::read_json_object(path);
  FlowTemplate t;
  t.path = path;
  t.canonical = j.dump();  // nlohmann objects are key-sorted maps: this is the canonical form
  if (has_harness_shape(j)) {
    t.harness_format = true;
    read_harness_template(r, j, t);
  } else {
    read_flowrank_template(r, j, t);
  }
  return t;
}

}  // namespace flowrank::flow
