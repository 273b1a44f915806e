// Multi-rank costs measured under mpirun (tools/bench/run --ranks runs it at 1..4 ranks):
//   broadcast: rank 0's flow cache entry for a job (jobs/seed-25x3.toml by default) to every
//              rank, decoded and checksum-verified there (what `flowrank run` does);
//   gather:    N step records spread evenly over the ranks, serialised, MPI_Gatherv'd to rank 0
//              and merged into one report there (10,000 by default).
// Each is timed from a barrier to the last rank done (the slowest rank's view, gathered), over
// `reps` repetitions; the median is printed as one JSON line.
//   mpirun -np 4 build/flowrank_bench_dist [JOB] [RECORDS] [REPS]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "flowrank/common/bytes.hpp"
#include "flowrank/common/clock.hpp"
#include "flowrank/dist/communicator.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/flow_cache.hpp"
#include "flowrank/report/record_bytes.hpp"

using namespace flowrank;

namespace {

// The slowest rank's seconds, on rank 0.
double slowest(dist::Communicator& comm, double mine) {
  ByteWriter w("bench");
  w.f64(mine);
  double worst = 0;
  for (const std::string& b : comm.gather(w.take())) {
    ByteReader r(b, "bench");
    worst = std::max(worst, r.f64());
  }
  return worst;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

report::RecordBatch step_records(int32_t rank, int32_t n) {
  report::RecordBatch b;
  for (int32_t i = 0; i < n; ++i) {
    report::StepRecord s;
    s.rank = rank;
    s.workflow = rank * n + i;
    s.step = i % 3;
    s.name = i % 3 == 0 ? "planner" : i % 3 == 1 ? "executor" : "verifier";
    s.prompt_tokens = 35000 + i;
    s.cached_tokens = 30000;
    s.decode_tokens = 512;
    s.queued_ms = 1.5;
    s.ttft_ms = 250.0 + i;
    s.latency_ms = 9000.0 + i;
    s.start_s = 10.0 + i;
    s.end_s = 19.0 + i;
    s.finish = "length";
    s.output_sha256_8 = "0123abcd";
    b.steps.push_back(s);
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string job_path = argc > 1 ? argv[1] : "jobs/seed-25x3.toml";
  const int32_t records = argc > 2 ? std::stoi(argv[2]) : 10000;
  const int reps = argc > 3 ? std::stoi(argv[3]) : 20;
  auto comm = dist::Communicator::init();
  const int32_t rank = comm->rank(), size = comm->size();

  std::string entry;
  if (rank == 0)
    entry = flow::encode_cache_entry(flow::expand_job(flow::load_job(job_path), nullptr).job);
  std::vector<double> bcast, gather;
  for (int k = 0; k < reps; ++k) {
    std::string bytes = rank == 0 ? entry : std::string();
    comm->barrier();
    auto t0 = Clock::now();
    comm->broadcast(bytes);
    if (rank != 0) flow::decode_cache_entry(std::move(bytes));
    const double b = slowest(*comm, seconds_between(t0, Clock::now()));

    const int32_t mine = records / size + (rank < records % size ? 1 : 0);
    report::RecordBatch batch = step_records(rank, mine);
    comm->barrier();
    t0 = Clock::now();
    std::vector<std::string> parts = comm->gather(report::serialize_records(batch));
    report::RunReport merged;
    for (const std::string& p : parts)
      report::append_records(merged, report::deserialize_records(p));
    const double g = slowest(*comm, seconds_between(t0, Clock::now()));
    if (rank == 0 && static_cast<int32_t>(merged.steps.size()) != records) {
      std::fprintf(stderr, "gathered %zu of %d records\n", merged.steps.size(), records);
      return 1;
    }
    bcast.push_back(b);
    gather.push_back(g);
  }
  if (rank == 0)
    std::printf(
        "{\"ranks\": %d, \"entry_bytes\": %zu, \"broadcast_ms\": %.3f, \"records\": %d, "
        "\"gather_ms\": %.3f}\n",
        size, entry.size(), median(bcast) * 1e3, records, median(gather) * 1e3);
  return 0;
}
