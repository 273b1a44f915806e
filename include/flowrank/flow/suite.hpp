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
  std::string name;
  std::vector<Task> tasks;
  std::string canonical;  // sorted-key re-serialisation, for the cache key
};

// Throws InputError "<file>: <problem>" (missing keys, wrong types, duplicate ids, no tasks).
TaskSuite load_task_suite(const std::filesystem::path& path);

}  // namespace flowrank::flow
