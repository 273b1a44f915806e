#pragma once
// Task suites (JSON, docs/FORMATS.md): workflow i takes task i.
#include <filesystem>
#include <string>
#include <vector>

namespace flowrank::flow {

struct Task {
  std::string id;
  std::string prompt;
};

struct TaskSuite {
  std::filesystem::path path;
  // True for the seed harness's prompt suite: a JSON array of prompt strings. Its tasks are then
  // named by their 1-based position ("1", "2", ...) and the suite by the file's stem.
  bool harness_format = false;
  std::string name;
  std::vector<Task> tasks;
  std::string canonical;  // sorted-key re-serialisation, for the cache key
};

// Reads either format, told apart by shape (object or array). Throws InputError "<file>: <problem>"
// (missing keys, wrong types, duplicate ids, no tasks).
TaskSuite load_task_suite(const std::filesystem::path& path);

}  // namespace flowrank::flow
