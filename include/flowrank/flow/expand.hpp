#pragma once
// Job -> ExpandedJob, through the FlowCache.
#include <cstdint>
#include <optional>
#include <string>

#include "flowrank/flow/flow_cache.hpp"
#include "flowrank/flow/job.hpp"
#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow {

// Bump when expansion or prompt assembly changes meaning: old cache entries then miss.
inline constexpr const char* kExpanderVersion = "flowrank-expander-2";

struct ExpansionResult {
  ExpandedJob job;
  std::string key;  // cache key (hex sha256), also without a cache
  bool hit = false;
  double seconds = 0;
  std::optional<std::string> warning;  // corrupt entry rebuilt, cache not writable, ...
  uint32_t fixture_files_read = 0;     // 0 on a hit whose fixture manifest matched
};

// Reads template, suite and fixtures, validates them against the job (workflows <= tasks,
// [steps.<name>] naming template steps) and expands; `cache` may be nullptr. Throws InputError.
ExpansionResult expand_job(const JobSpec& job, FlowCache* cache);

}  // namespace flowrank::flow
