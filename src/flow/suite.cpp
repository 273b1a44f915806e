#include "flowrank/flow/suite.hpp"

#include <functional>
#include <set>

#include "flowrank/common/error.hpp"
#include "json_input.hpp"
#include "sampling_rules.hpp"

namespace flowrank::flow {
namespace {

using Fail = std::function<void(const std::string&)>;

void read_flowrank_suite(const nlohmann::json& j, TaskSuite& suite, const Fail& fail) {
  for (const auto& [key, v] : j.items())
    if (key != "name" && key != "tasks") fail("unknown key '" + key + "'");
  if (!j.contains("name")) fail("missing required key 'name'");
  if (!j.at("name").is_string()) fail("name: must be a string");
  suite.name = j.at("name").get<std::string>();
  if (!j.contains("tasks")) fail("missing required key 'tasks'");
  const nlohmann::json& tasks = j.at("tasks");
  if (!tasks.is_array() || tasks.empty()) fail("tasks: must be a non-empty array");
  std::set<std::string> ids;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const nlohmann::json& t = tasks[i];
    const std::string at = "task " + std::to_string(i);
    if (!t.is_object()) fail(at + ": must be an object, got " + detail::json_type_name(t));
    for (const auto& [key, v] : t.items())
      if (key != "id" && key != "prompt") fail(at + ": unknown key '" + key + "'");
    if (!t.contains("id") || !t.at("id").is_string() || t.at("id").get<std::string>().empty())
      fail(at + ": needs a non-empty string 'id'");
    if (!t.contains("prompt") || !t.at("prompt").is_string())
      fail(at + ": needs a string 'prompt'");
    Task task{t.at("id").get<std::string>(), t.at("prompt").get<std::string>()};
    if (!ids.insert(task.id).second) fail(at + ": duplicate id '" + task.id + "'");
    suite.tasks.push_back(std::move(task));
  }
}

// The seed harness's flows/prompt_suite.json: an array of prompt strings, taken in order.
void read_harness_suite(const nlohmann::json& j, TaskSuite& suite, const Fail& fail) {
  suite.harness_format = true;
  suite.name = suite.path.stem().string();
  if (j.empty()) fail("a prompt suite array must not be empty");
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string())
      fail("element " + std::to_string(i) + ": a prompt suite array must hold only strings, got " +
           detail::json_type_name(j[i]));
    suite.tasks.push_back(Task{std::to_string(i + 1), j[i].get<std::string>()});
  }
}

}  // namespace

TaskSuite load_task_suite(const std::filesystem::path& path) {
  const std::string file = path.string();
  const nlohmann::json j = detail::read_json(path);
  const Fail fail = [&](const std::string& problem) {
    throw InputError(file, detail::one_line(problem));
  };
  TaskSuite suite;
  suite.path = path;
  suite.canonical = j.dump();
  if (j.is_array()) {
    read_harness_suite(j, suite, fail);
  } else if (j.is_object()) {
    read_flowrank_suite(j, suite, fail);
  } else {
    fail("must be a JSON object (a task suite) or an array of prompt strings, got " +
         detail::json_type_name(j));
  }
  return suite;
}

}  // namespace flowrank::flow
