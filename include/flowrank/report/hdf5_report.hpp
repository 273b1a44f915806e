#pragma once
// The run report as one HDF5 file (layout in DESIGN.md "The report (HDF5)"):
//   /            attributes: flowrank_version, job_name, job_sha256, model, device, started_at
//                (UTF-8 strings), world_size (int32), report_format (int32, this layout's
//                version), and every RunAttributes::extra entry as a UTF-8 string attribute.
//   /phases      compound table, one field per PhaseRecord member
//   /steps       compound table, one field per StepRecord member
//   /workflows   compound table, one field per WorkflowRecord member
//   /ranks       compound table, one field per RankRecord member (format 2)
//   /plan        compound table, one field per PlanRecord member (format 2)
//   /energy      (only when board power was measured) attribute `source`; tables samples
//                (PowerSample), phases (PhaseEnergy), steps (StepEnergy) (format 2)
//   /outputs/<workflow>/<step>   (only with keep_outputs) the generated text as a scalar
//                fixed-length UTF-8 string (null-padded, so text with NUL bytes survives) with an
//                int64 attribute `length` = its byte count; decimal names, e.g. /outputs/3/1.
// Table strings are variable-length UTF-8; numbers are little-endian int32 / int64 / float64. h5py
// reads a table as a structured array (string fields come back as bytes). Empty tables have zero
// rows.
#include <cstdint>
#include <filesystem>

#include "flowrank/report/records.hpp"

namespace flowrank::report {

// Version of the layout above, written as the root attribute `report_format`. Every column and
// table added after format 1 is optional when reading: a file without it reads as empty / absent.
//   2  two development lines each wrote a "format 2": one with /ranks, /plan and the /steps column
//      `error`; the other with the /steps column `prompt_sha256_8` and /energy. Both still read.
//   3  the union of the two: /ranks (with `energy`), /plan, /energy (samples with `rank`), and
//      /steps with both `error` and `prompt_sha256_8`.
inline constexpr int32_t kReportFormat = 3;

// Writes `report` to `path` atomically (temp file + rename; a failed write leaves any previous
// file untouched). Throws RunError("<path>: <problem>") on any HDF5 failure, and when an `extra`
// key is empty or collides with a fixed attribute name.
void write_report_hdf5(const RunReport& report, const std::filesystem::path& path,
                       bool keep_outputs);

// Reads a file written by write_report_hdf5. Throws InputError(path, problem) for a missing or
// non-HDF5 file ("not an HDF5 file"), a missing table ("missing dataset /steps"), a missing column
// ("/steps has no column 'latency_ms'") or a malformed /outputs entry.
RunReport read_report_hdf5(const std::filesystem::path& path);

}  // namespace flowrank::report
