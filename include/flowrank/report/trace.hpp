#pragma once
// Chrome trace-event JSON of a report (opens in Perfetto and chrome://tracing): one process per
// rank, named "rank R (host, device)"; its phases and its steps as complete ("X") events with
// timestamps in microseconds since the run's epoch. Spans that overlap (steps batched together,
// nccl_init inside engine_preload) go to separate lanes (threads "phases k", "steps k"), so each
// lane's spans never overlap.
#include <string>

#include "flowrank/report/records.hpp"

namespace flowrank::report {

std::string chrome_trace_json(const RunReport& report);

}  // namespace flowrank::report
