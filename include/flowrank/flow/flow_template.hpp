#pragma once
// Flow templates (JSON, docs/FORMATS.md).
#include <filesystem>
#include <string>
#include <vector>

#include "flowrank/flow/job.hpp"
#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow {

struct TemplateStep {
  std::string name;
  std::string instruction;
  std::vector<int32_t> uses;  // indices of earlier steps
  SamplingOverride sampling;  // the step's own `sampling`, keys as written
};

struct FlowTemplate {
  std::filesystem::path path;
  // True for the seed harness's own format (no `name`; steps of only `name` and `instruction`,
  // docs/FORMATS.md): the name is then the file's stem.
  bool harness_format = false;
  std::string name;
  std::string input;
  std::vector<TemplateStep> steps;
  // The JSON re-serialised with sorted keys and no whitespace: formatting changes do not change
  // the cache key, content changes do.
  std::string canonical;
};

// Reads either format, told apart by shape. Throws InputError "<file>: <problem>" naming the step
// or key at fault.
FlowTemplate load_flow_template(const std::filesystem::path& path);

}  // namespace flowrank::flow
