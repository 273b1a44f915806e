#pragma once
// Records as plain bytes, so that dist/ can gather every rank's records onto rank 0 without
// knowing what they mean. Format (all integers little-endian):
//   "FRRB" magic, u8 version (kRecordBytesVersion),
//   u32 n, n phase records; u32 n, n step records; u32 n, n workflow records; u32 n, n outputs
//   (i32 workflow, i32 step, str text); and nothing after.
//   i32 / f64 (IEEE-754 bits) fields in record-member order; str = u32 byte length + bytes.
// Attributes are not included: rank 0 owns them.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowrank/report/records.hpp"

namespace flowrank::report {

inline constexpr uint8_t kRecordBytesVersion = 2;  // 2: steps carry prompt_sha256_8

// One rank's records.
struct RecordBatch {
  std::vector<PhaseRecord> phases;
  std::vector<StepRecord> steps;
  std::vector<WorkflowRecord> workflows;
  std::map<std::pair<int32_t, int32_t>, std::string> outputs;
};

std::string serialize_records(const RecordBatch& batch);
// The records of `report` (phases, steps, workflows, outputs); its attrs are not serialised.
std::string serialize_records(const RunReport& report);

// Throws RunError("record bytes: <problem> at byte N") for a wrong magic or version, truncated or
// trailing bytes, or a count larger than the bytes could hold. Never reads out of bounds.
RecordBatch deserialize_records(std::string_view bytes);

// Appends a batch's records to `report` (records in order; outputs merged). Throws RunError when
// an output for the same (workflow, step) is already present.
void append_records(RunReport& report, RecordBatch&& batch);

}  // namespace flowrank::report
