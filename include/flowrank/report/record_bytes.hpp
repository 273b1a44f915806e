#pragma once
// Records as plain bytes, so that dist/ can gather every rank's records onto rank 0 without
// knowing what they mean. Format (all integers little-endian):
//   "FRRB" magic, u8 version (kRecordBytesVersion),
//   u32 n, n phase records; u32 n, n step records; u32 n, n workflow records; u32 n, n outputs
//   (i32 workflow, i32 step, str text); u32 n, n rank records; u32 n, n plan records; u32 n, n
//   power samples; u32 n, n phase energies; u32 n, n step energies; and nothing after. Fields in
//   record-member order (the HDF5 column order): i32, i64, f64 (IEEE-754 bits); str = u32 byte
//   length + bytes.
// Attributes are not included: rank 0 owns them.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowrank/report/records.hpp"

namespace flowrank::report {

// 2 was used by two development lines with different step fields; 3 carries both (error and
// prompt_sha256_8), rank energy, and the energy tables. Other versions are refused, not guessed.
inline constexpr uint8_t kRecordBytesVersion = 3;

// One rank's records.
struct RecordBatch {
  std::vector<PhaseRecord> phases;
  std::vector<StepRecord> steps;
  std::vector<WorkflowRecord> workflows;
  std::map<std::pair<int32_t, int32_t>, std::string> outputs;
  std::vector<RankRecord> ranks;
  std::vector<PlanRecord> plan;
  // This rank's board power and the energy it attributed to its phases and steps (/energy).
  std::vector<PowerSample> power_samples;
  std::vector<PhaseEnergy> phase_energy;
  std::vector<StepEnergy> step_energy;
};

std::string serialize_records(const RecordBatch& batch);
// The records of `report` (phases, steps, workflows, outputs, ranks, plan, energy tables); not its
// attrs nor the energy source.
std::string serialize_records(const RunReport& report);

// Throws RunError("record bytes: <problem> at byte N") for a wrong magic or version, truncated or
// trailing bytes, or a count larger than the bytes could hold. Never reads out of bounds.
RecordBatch deserialize_records(std::string_view bytes);

// Appends a batch's records to `report` (records in order; outputs merged; energy rows into
// report.energy, made when the batch has any, its source rebuilt from the ranks' `energy`).
// Throws RunError when an output for the same (workflow, step) is already present.
void append_records(RunReport& report, RecordBatch&& batch);
// The same into another batch.
void merge_records(RecordBatch& into, RecordBatch&& batch);

}  // namespace flowrank::report
