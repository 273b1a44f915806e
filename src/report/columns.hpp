#pragma once
// The fields of each record type, in order, named as their HDF5 columns. One list serves the HDF5
// tables and the record bytes, so a new field is added in one place.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "flowrank/report/records.hpp"

namespace flowrank::report::detail {

template <class R>
struct Column {
  const char* name;
  std::variant<int32_t R::*, double R::*, std::string R::*, int64_t R::*> member;
  // Added after report_format 1: a file without it reads as the default value.
  bool optional = false;
};

enum class Kind { I32, F64, Str, I64 };

template <class R>
Kind kind_of(const Column<R>& c) {
  return static_cast<Kind>(c.member.index());
}

const std::vector<Column<PhaseRecord>>& phase_columns();
const std::vector<Column<StepRecord>>& step_columns();
const std::vector<Column<WorkflowRecord>>& workflow_columns();
const std::vector<Column<RankRecord>>& rank_columns();
const std::vector<Column<PlanRecord>>& plan_columns();
// The /energy tables.
const std::vector<Column<PowerSample>>& sample_columns();
const std::vector<Column<PhaseEnergy>>& phase_energy_columns();
const std::vector<Column<StepEnergy>>& step_energy_columns();

}  // namespace flowrank::report::detail
