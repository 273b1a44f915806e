#pragma once
// The job spec (TOML, docs/FORMATS.md): what to run, on what, with which overrides.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow {

// Sampling keys as written in a flow step's `sampling`, a job's [sampling] or [steps.<name>]:
// only the keys present are set, so layers apply in precedence order.
struct SamplingOverride {
  std::optional<int32_t> max_tokens;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int32_t> top_k;
  std::optional<uint64_t> seed;
  std::optional<std::vector<std::string>> stop;
  std::optional<bool> ignore_eos;
};

// Sets in `sampling` every key that `layer` has.
void apply_sampling(const SamplingOverride& layer, StepSampling& sampling);

struct EngineSettings {
  int32_t block_size = 16;
  int32_t kv_blocks = 0;         // 0 = size automatically
  int32_t max_batch_tokens = 0;  // 0 = the engine backend's default
  int32_t max_seqs = 0;
  bool prefix_cache = true;
  int32_t threads = 0;  // 0 = all cores
};

struct JobSpec {
  std::filesystem::path path;  // the job file as given
  std::string job_sha256;      // sha256 of the job file's raw bytes (hex)
  std::string name;
  // Resolved against the job file's directory (lexically normalised, relative if the job path was).
  std::filesystem::path flow;
  std::filesystem::path fixtures;
  std::vector<std::string> fixture_include;  // empty = every file
  // Defaults: harness rules for the seed layouts, every file for context-first; sorted order.
  FixtureRules fixture_rules = FixtureRules::kHarness;
  FixtureOrder fixture_order = FixtureOrder::kSorted;
  std::filesystem::path suite;
  int32_t workflows = 0;
  bool workflows_from_command_line = false;  // set by apply_overrides: errors then name --workflows
  PromptLayout layout = PromptLayout::kSeed;
  bool chat = false;
  // A GGUF path (resolved against the job directory) or "dummy:<shape>"; empty when the job
  // names none, so that the caller's default applies.
  std::string model;
  // A tokenizer GGUF for a dummy model (resolved like `model`); empty: the bundled tokenizer.
  std::string tokenizer;
  std::string device = "auto";   // auto | cpu | cuda
  std::filesystem::path output;  // relative to the current directory; default reports/<name>.h5
  SamplingOverride sampling;     // [sampling]
  std::map<std::string, SamplingOverride> steps;  // [steps.<name>]
  EngineSettings engine;
};

// Throws InputError "<file>[:line[:col]]: <problem>" (one line) on any bad input.
JobSpec load_job(const std::filesystem::path& path);

// Command-line overrides, applied after loading. Paths here are relative to the current
// directory (they come from the command line, not from the job file).
struct JobOverrides {
  std::optional<std::filesystem::path> out;
  std::optional<std::string> device;
  std::optional<std::string> model;
  std::optional<int64_t> workflows;
};

// Validates like load_job; errors name the option ("--device: ..."). workflows <= suite size is
// checked when the suite is read (expand_job).
void apply_overrides(JobSpec& job, const JobOverrides& overrides);

const char* layout_name(PromptLayout layout);  // "seed" | "context-first" | "seed-chained"

}  // namespace flowrank::flow
