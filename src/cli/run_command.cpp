// `flowrank run JOB`: world -> flow expansion (rank 0, cached) and broadcast -> sharding ->
// engine preload (NCCL weights broadcast when ranks have GPUs of their own) -> executor, journaling
// every step -> each rank's board energy -> gather to rank 0 -> report. Board power is sampled on
// every rank from before the world starts to the end of its run.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <set>

#include "cli_common.hpp"
#include "commands.hpp"
#include "flowrank/common/clock.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/hash.hpp"
#include "flowrank/dist/gpu_ranks.hpp"
#include "flowrank/dist/sharding.hpp"
#include "flowrank/dist/world.hpp"
#include "flowrank/flow/cost.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/flow_cache.hpp"
#include "flowrank/power/board_power.hpp"
#include "flowrank/report/energy.hpp"
#include "flowrank/report/hdf5_report.hpp"
#include "flowrank/report/journal.hpp"
#include "flowrank/report/record_bytes.hpp"
#include "flowrank/report/seed_log.hpp"
#include "flowrank/report/summary.hpp"
#include "flowrank/run/executor.hpp"
#include "flowrank/run/progress.hpp"
#include "rank_world.hpp"
#include "run_journal.hpp"

namespace flowrank::cli {
namespace {

std::string utc_now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Phases as clock readings; they become records once the shared epoch is known.
class PhaseLog {
 public:
  template <class F>
  auto time(const char* phase, F&& f) {
    const auto start = Clock::now();
    struct Record {
      PhaseLog* self;
      const char* phase;
      Clock::time_point start;
      ~Record() { self->add(phase, start, Clock::now()); }
    } record{this, phase, start};
    return f();
  }
  void add(const std::string& phase, Clock::time_point a, Clock::time_point b) {
    entries_.push_back({phase, a, b});
  }
  double last_duration_s() const {
    return entries_.empty() ? 0 : seconds_between(entries_.back().a, entries_.back().b);
  }
  // Records from entry `from` on, relative to `epoch`.
  std::vector<report::PhaseRecord> records(int32_t rank, Clock::time_point epoch,
                                           std::size_t from = 0) const {
    std::vector<report::PhaseRecord> out;
    for (std::size_t i = from; i < entries_.size(); ++i)
      out.push_back({rank, entries_[i].phase, seconds_between(epoch, entries_[i].a),
                     seconds_between(entries_[i].a, entries_[i].b)});
    return out;
  }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string phase;
    Clock::time_point a, b;
  };
  std::vector<Entry> entries_;
};

// Prints one of the seed harness's lines live, on the stream the harness used.
void emit(const report::SeedLine& line) {
  std::FILE* f = line.to_stdout ? stdout : stderr;
  std::fputs(line.text.c_str(), f);
  std::fflush(f);
}

// This rank's board power sampler, or why it has none.
struct PowerSampling {
  std::unique_ptr<power::BoardPowerSampler> sampler;
  std::string none;  // off | absent: <why>
};

// Everything one rank carries through a run.
struct RankRun {
  RankRun(const RunArgs& a, RankWorld& w) : args(a), rw(w) {}
  const RunArgs& args;
  RankWorld& rw;
  PhaseLog phases;
  flow::JobSpec job;
  flow::ExpandedJob expanded;
  std::string flow_key;
  std::string identity;  // what journals must match to be resumed from
  dist::ShardPlan plan;
  ResumeState resume;
  std::unique_ptr<report::JournalWriter> journal;
  std::unique_ptr<engine::Engine> eng;
  std::string backend;          // the engine's, once preloaded
  int32_t ranks_on_my_gpu = 1;  // ranks sharing this rank's GPU (they share its board power)
  PowerSampling power;
  std::optional<report::EnergyReport> energy;  // this rank's board energy, once its run ended
  report::RankRecord me;
  run::ExecutionResult result;
  std::exception_ptr rank_error;  // preload or engine failure on this rank (multi-rank)
  report::RunReport rep;          // rank 0's report
};

flow::JobSpec load_job_spec(const RunArgs& args) {
  flow::JobSpec job = flow::load_job(args.job);
  flow::JobOverrides ov;
  if (args.out) ov.out = *args.out;
  ov.device = args.device;
  ov.model = args.model;
  ov.workflows = args.workflows;
  flow::apply_overrides(job, ov);
  if (!args.weights_from.empty() && args.weights_from != "rank0" && args.weights_from != "disk")
    throw InputError("--weights-from", "expected rank0 or disk, found '" + args.weights_from + "'");
  return job;
}

void print_flow_line(const RankRun& r, const flow::ExpansionResult& e) {
  std::printf("[flow] %s  key=%.16s  %s  %.1f ms  workflows=%zu  fixture=%llu bytes in %u files\n",
              r.job.name.c_str(), e.key.c_str(),
              r.args.no_cache ? "uncached" : (e.hit ? "hit" : "miss"), e.seconds * 1e3,
              e.job.workflows.size(), static_cast<unsigned long long>(e.job.fixture_bytes),
              e.job.fixture_files);
}

// Rank 0 alone reads the flow cache and the fixtures; the others receive the cache entry's bytes
// and verify its checksum. An expansion error on rank 0 ends the others quietly.
void expand_and_share(RankRun& r) {
  std::string payload;  // 'K' key '\n' entry bytes, or 'E' code
  if (r.rw.root()) {
    try {
      std::optional<flow::FlowCache> cache;
      if (!r.args.no_cache) cache.emplace(flow::default_cache_dir());
      flow::ExpansionResult e = r.phases.time(
          "flow_expand", [&] { return flow::expand_job(r.job, cache ? &*cache : nullptr); });
      print_expansion_warnings(r.job, e);
      print_flow_line(r, e);
      auto& x = r.rep.attrs.extra;
      x["flow_cache"] = r.args.no_cache ? "off" : (e.hit ? "hit" : "miss");
      x["flow_cache_key"] = e.key;
      x["fixture_bytes"] = std::to_string(e.job.fixture_bytes);
      x["fixture_files"] = std::to_string(e.job.fixture_files);
      x["fixture_rules"] = flow::fixture_rules_name(r.job.fixture_rules);
      x["fixture_order"] = flow::fixture_order_name(r.job.fixture_order);
      x["layout"] = flow::layout_name(e.job.layout);
      x["workflows"] = std::to_string(e.job.workflows.size());
      if (r.args.seed_log) {
        for (std::size_t i = 0; i < e.job.workflows.size(); ++i)
          emit(report::seed_input_line(x["fixture_bytes"], x["fixture_files"]));
        emit(report::seed_expansion_line(r.phases.last_duration_s() * 1e3, x["flow_cache"]));
      }
      r.expanded = std::move(e.job);
      r.flow_key = e.key;
    } catch (const InputError&) {
      payload = "E2";
      if (r.rw.comm()) r.rw.comm()->broadcast(payload);
      throw;
    } catch (...) {
      payload = "E1";
      if (r.rw.comm()) r.rw.comm()->broadcast(payload);
      throw;
    }
  }
  if (!r.rw.comm()) return;
  r.phases.time("flow_broadcast", [&] {
    if (r.rw.root()) payload = "K" + r.flow_key + "\n" + flow::encode_cache_entry(r.expanded);
    r.rw.comm()->broadcast(payload);
    if (r.rw.root()) return;
    if (payload[0] == 'E') throw QuietExit{payload[1] - '0'};
    const std::size_t nl = payload.find('\n');
    r.flow_key = payload.substr(1, nl - 1);
    try {
      r.expanded = flow::decode_cache_entry(payload.substr(nl + 1));
    } catch (const std::exception& e) {
      throw RunError("rank " + std::to_string(r.rw.rank()) + " on " + r.rw.host() +
                     ": flows from rank 0 arrived corrupt (" + e.what() + ")");
    }
  });
}

void make_plan(RankRun& r) {
  const std::vector<flow::WorkflowCost> costs = flow::estimate_costs(r.expanded);
  std::vector<dist::ShardItem> items;
  for (const auto& c : costs)
    items.push_back({c.own_tokens, c.shared_prefix_tokens > 0 ? 0 : -1, c.shared_prefix_tokens});
  r.plan = dist::plan_shards(items, r.rw.size());
  if (r.rw.root())
    for (std::size_t i = 0; i < items.size(); ++i)
      r.rep.plan.push_back(
          {static_cast<int32_t>(i), r.plan.rank_of[i], items[i].cost + items[i].prefix_cost});
  for (int32_t w : r.plan.items[r.rw.rank()])
    r.me.steps_total += static_cast<int32_t>(r.expanded.workflows[w].steps.size());
  r.me.workflows = static_cast<int32_t>(r.plan.items[r.rw.rank()].size());
}

report::JournalHeader journal_header(const RankRun& r) {
  report::JournalHeader h;
  h.identity = r.identity;
  h.rank = r.rw.rank();
  h.world_size = r.rw.size();
  const auto& a = r.rep.attrs;
  h.attrs = {
      {"flowrank_version", FLOWRANK_VERSION}, {"job_name", r.job.name},
      {"job_sha256", r.job.job_sha256},       {"model", a.model},
      {"started_at", a.started_at},           {"host", r.rw.host()},
      {"pid", std::to_string(::getpid())},    {"report", r.job.output.string()},
      {"flow_cache_key", r.flow_key},         {"layout", flow::layout_name(r.expanded.layout)}};
  return h;
}

// Rank 0 reads the earlier journals (--resume) or clears them, and shares what was done; then
// every rank starts its own journal. Rank 0's carries the plan and the resumed steps, so the new
// set of journals stands on its own.
void open_journals(RankRun& r) {
  const auto dir =
      r.args.journal ? std::filesystem::path(*r.args.journal) : default_journal_dir(r.job.output);
  std::string done_bytes;
  if (r.rw.root()) {
    if (r.args.resume) {
      r.resume = load_resume(dir, r.identity);
      for (const auto& w : r.resume.warnings)
        std::fprintf(stderr, "flowrank: warning: %s\n", w.c_str());
      std::printf("[resume] %zu steps done by an earlier run (%s)\n", r.resume.done.size(),
                  dir.c_str());
    }
    for (const auto& old : report::journal_files(dir)) std::filesystem::remove(old);
    report::RecordBatch done;
    done.outputs = r.resume.done;
    done_bytes = report::serialize_records(done);
  }
  if (r.rw.comm()) {
    r.rw.comm()->broadcast(done_bytes);
    if (!r.rw.root()) r.resume.done = report::deserialize_records(done_bytes).outputs;
  }
  r.journal = std::make_unique<report::JournalWriter>(report::journal_path(dir, r.rw.rank()),
                                                      journal_header(r));
  if (r.rw.root()) {
    report::RecordBatch first;
    first.plan = r.rep.plan;
    first.steps = r.resume.records.steps;
    first.workflows = r.resume.records.workflows;
    first.outputs = r.resume.records.outputs;
    r.journal->append(first);
  }
}

// The CUDA device a rank of several takes: its local rank over the GPUs it sees, -1 without any.
int32_t local_gpu(const dist::World& world) {
  const int32_t count = dist::visible_gpu_count();
  return count > 0 ? world.local_rank % count : -1;
}

// Board power of the GPU this rank's engine will run on, sampled from before the world starts
// unless energy is off or the job runs on the CPU; NVML loads on the sampler's own thread.
PowerSampling start_power_sampler(const RunArgs& args, const flow::JobSpec& job,
                                  const dist::World& world) {
  if (args.energy == "off") return {nullptr, "off"};
  if (args.energy == "auto" && job.device == "cpu")
    return {nullptr, "absent: the job runs on the CPU"};
  power::BoardPowerSampler::Options options;
  if (const char* lib = std::getenv("FLOWRANK_NVML_LIBRARY"); lib && *lib) options.library = lib;
  if (world.size > 1) {
    // As assign_gpu will choose; without a CUDA runtime, the local rank's entry.
    const int32_t gpu = local_gpu(world);
    options.gpu = gpu >= 0 ? gpu : world.local_rank;
  } else {
    engine::EngineOptions eopts = engine_options_for(job);
    apply_engine_flags(args.engine, eopts);
    options.gpu = std::max(eopts.gpu, 0);
  }
  return {std::make_unique<power::BoardPowerSampler>(options), ""};
}

// This rank's GPU, when the run uses GPUs and has several ranks. Every rank takes part in the
// all_gather of GPU identities (a rank without a GPU sends none and fails after it, in one line).
// Returns whether the weights should come from rank 0 over NCCL.
bool assign_gpu(RankRun& r, engine::EngineOptions& eopts) {
  if (!r.rw.comm() || r.rw.size() < 2 || eopts.device == "cpu") return false;
  const int32_t device = local_gpu(r.rw.world());
  const std::string id = device >= 0 ? r.rw.host() + "|" + dist::gpu_pci_id(device) : "";
  const auto gpus = dist::assign_gpus(r.rw.comm()->all_gather(id), r.rw.rank(), device);
  if (eopts.device == "cuda" && gpus.gpu < 0) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throw RunError("rank " + std::to_string(r.rw.rank()) + " on " + r.rw.host() +
                   ": no GPU for device cuda (local rank " +
                   std::to_string(r.rw.world().local_rank) +
                   ", CUDA_VISIBLE_DEVICES=" + (visible ? visible : "unset") + ")");
  }
  if (gpus.gpu < 0) return false;
  r.ranks_on_my_gpu = gpus.ranks_on_this_gpu;
  eopts.gpu = gpus.gpu;
  eopts.gpu_memory_fraction /= static_cast<float>(gpus.ranks_on_this_gpu);
  if (!gpus.distinct_gpus && r.rw.root())
    std::printf("[dist] ranks share GPUs: no NCCL, every rank reads the weights from disk\n");
  return dist::nccl_wanted(r.rw.size(), gpus) && r.args.weights_from != "disk" &&
         dist::nccl_available();
}

void preload(RankRun& r) {
  engine::EngineOptions eopts = engine_options_for(r.job);
  apply_engine_flags(r.args.engine, eopts);
  if (r.args.no_prefix_cache) eopts.prefix_cache = false;
  std::unique_ptr<dist::DeviceBroadcast> nccl;
  const bool use_nccl = assign_gpu(r, eopts);
  r.me.weights = "disk";
  if (use_nccl) {
    eopts.read_weights = r.rw.root();
    eopts.broadcast_weights = [&nccl](void* p, std::size_t n) { nccl->broadcast(p, n); };
    r.me.weights = r.rw.root() ? "disk" : "rank0";
  }
  const auto start = Clock::now();
  const bool log_preload = r.args.seed_log && r.rw.root();
  if (log_preload) emit(report::seed_engine_init_start_line());
  r.eng = r.phases.time("engine_preload", [&] {
    if (use_nccl)  // its creation overlaps the weight load
      nccl = std::make_unique<dist::DeviceBroadcast>(*r.rw.comm(), eopts.gpu);
    auto e = engine::make_engine(eopts);
    e->preload();
    return e;
  });
  if (log_preload) emit(report::seed_engine_init_line(r.phases.last_duration_s() * 1e3));
  if (nccl) {  // both overlap the preload: recorded as their own phases inside it
    r.phases.add("nccl_init", nccl->init_started(), nccl->init_ended());
    if (nccl->broadcast_any())
      r.phases.add("weights_broadcast", nccl->first_broadcast(), nccl->last_broadcast_end());
  }
  const engine::EngineInfo info = r.eng->info();
  r.backend = info.backend;
  r.me.device = info.device;
  r.me.kv_blocks = info.kv_blocks;
  if (r.rw.root()) {
    r.rep.attrs.device = info.device;
    r.rep.attrs.extra["backend"] = info.backend;
    r.rep.attrs.extra["kv_blocks"] = std::to_string(info.kv_blocks);
    r.rep.attrs.extra["block_size"] = std::to_string(info.block_size);
    r.rep.attrs.extra["prefix_cache"] = eopts.prefix_cache ? "on" : "off";
    std::printf("[engine] %s on %s: %d KV blocks x %d tokens, context %d (preload %.2f s)\n",
                info.model_name.c_str(), info.device.c_str(), info.kv_blocks, info.block_size,
                info.context_length, seconds_between(start, Clock::now()));
    std::fflush(stdout);
  }
}

void run_shard(RankRun& r) {
  // With --seed-log the harness's lines are the progress report, unless asked otherwise.
  const std::string progress =
      r.args.seed_log && r.args.progress == "auto" ? "off" : r.args.progress;
  const bool terminal = progress == "live" || (progress == "auto" && isatty(fileno(stderr)));
  run::ProgressDisplay display(stderr, terminal);
  run::ExecutorOptions xopts;
  xopts.epoch = r.rw.epoch();
  xopts.rank = r.rw.rank();
  xopts.keep_outputs = r.args.keep_outputs;
  xopts.stop = &r.rw.stop;
  xopts.grace_s = r.args.grace_s;
  xopts.abort = &r.rw.abort;
  xopts.done = &r.resume.done;
  if (progress != "off" && r.rw.root())
    xopts.on_progress = [&](const run::ProgressSnapshot& p) { display.update(p); };
  xopts.on_step = [&](const report::StepRecord& s, const std::string& out,
                      const report::WorkflowRecord* w) {
    report::RecordBatch b;
    b.steps.push_back(s);
    if (s.error.empty()) b.outputs[{s.workflow, s.step}] = out;
    if (w) b.workflows.push_back(*w);
    r.journal->append(b);
    if (!r.args.seed_log) return;  // each rank prints its own steps' lines as they end
    if (s.error.empty()) emit(report::seed_target_line(s));
    if (w) emit(report::seed_workflow_line(*w));
  };
  // Phases so far go to the journal first: a recovered report shows them too.
  report::RecordBatch before;
  before.phases = r.phases.records(r.rw.rank(), r.rw.epoch());
  r.journal->append(before);
  const std::size_t mark = r.phases.size();
  r.result = r.phases.time(
      "run", [&] { return run::execute(r.expanded, r.plan.items[r.rw.rank()], *r.eng, xopts); });
  display.finish();
  report::RecordBatch after;
  after.phases = r.phases.records(r.rw.rank(), r.rw.epoch(), mark);
  r.journal->append(after);
  if (r.result.error) r.rank_error = r.result.error;
}

std::string status_of(const RankRun& r) {
  if (r.rank_error) return "failed";
  if (r.result.interrupted) return "interrupted";
  return "complete";
}

std::string error_line(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

// Stops this rank's sampler and attributes its board's energy to its phases and steps (before
// the gather: the gather itself is not measured). r.me.energy says what was sampled, or why
// nothing was.
void finish_energy(RankRun& r) {
  std::string& status = r.me.energy;
  if (!r.power.sampler) {
    status = r.power.none;
    return;
  }
  const power::Trace trace = r.power.sampler->stop();
  r.power.sampler.reset();
  if (r.args.energy == "auto" && r.backend != "cuda") {
    status = r.backend.empty() ? "absent: no engine" : "absent: the engine ran on the CPU";
  } else if (trace.readings.empty()) {
    status = "absent: " + trace.unavailable;
  } else {
    std::vector<report::PowerSample> samples;
    for (const power::Reading& x : trace.readings)
      samples.push_back({seconds_between(r.rw.epoch(), x.t), x.watts, x.counter_j, r.rw.rank()});
    r.energy =
        report::attribute_energy(trace.source, std::move(samples),
                                 r.phases.records(r.rw.rank(), r.rw.epoch()), r.result.steps);
    status = trace.source;
    if (r.ranks_on_my_gpu > 1)
      status += "; board shared by " + std::to_string(r.ranks_on_my_gpu) + " ranks";
  }
  if (r.args.energy == "on" && !r.energy) {
    const std::string who =
        r.rw.size() > 1 ? "rank " + std::to_string(r.rw.rank()) + ": " : std::string();
    std::fprintf(stderr, "flowrank: warning: %sno energy figures: %s\n", who.c_str(),
                 status.c_str());
  }
}

// This rank's energy rows into a batch (the gather's and the journal's last one).
void add_energy(const RankRun& r, report::RecordBatch& b) {
  if (!r.energy) return;
  b.power_samples = r.energy->samples;
  b.phase_energy = r.energy->phases;
  b.step_energy = r.energy->steps;
}

void fill_rank_record(RankRun& r) {
  finish_energy(r);
  r.me.rank = r.rw.rank();
  r.me.host = r.rw.host();
  r.me.status = status_of(r);
  if (r.rank_error) r.me.error = error_line(r.rank_error);
  r.me.steps_done = static_cast<int32_t>(r.result.steps.size()) + r.result.steps_resumed;
  if (r.eng) {
    const engine::EngineStats st = r.eng->stats();
    r.me.engine_steps = st.steps;
    r.me.engine_preemptions = st.preemptions;
    r.me.engine_evictions = st.evictions;
    r.me.engine_computed_tokens = st.computed_tokens;
    r.me.engine_cached_tokens = st.cached_tokens;
  }
}

// This rank's records as one batch (what the gather moves and the journal ends with).
report::RecordBatch own_records(RankRun& r, std::size_t phases_from = 0) {
  report::RecordBatch b;
  b.phases = r.phases.records(r.rw.rank(), r.rw.epoch(), phases_from);
  b.steps = std::move(r.result.steps);
  b.workflows = std::move(r.result.workflows);
  b.outputs = std::move(r.result.outputs);
  b.ranks = {r.me};
  add_energy(r, b);
  return b;
}

// Every rank's records to rank 0 by MPI_Gatherv, once every rank has arrived; then each rank's
// gather phase by a second, small gather (a phase cannot carry its own duration).
void gather(RankRun& r) {
  fill_rank_record(r);
  report::RecordBatch mine = own_records(r);
  report::RecordBatch last;
  last.ranks = mine.ranks;
  add_energy(r, last);
  r.journal->append(last);
  r.journal->sync();
  if (!r.rw.comm()) {
    report::append_records(r.rep, std::move(mine));
    return;
  }
  // Waiting for the slowest rank is idle time, not gathering: the phase starts when all are here.
  r.rw.comm()->barrier();
  const auto g0 = Clock::now();
  std::vector<std::string> parts = r.rw.comm()->gather(report::serialize_records(mine));
  if (r.rw.root())
    for (const std::string& p : parts)
      report::append_records(r.rep, report::deserialize_records(p));
  const auto g1 = Clock::now();
  r.phases.add("gather", g0, g1);
  report::RecordBatch gathered;
  gathered.phases = r.phases.records(r.rw.rank(), r.rw.epoch(), r.phases.size() - 1);
  parts = r.rw.comm()->gather(report::serialize_records(gathered));
  for (const std::string& p : parts) report::append_records(r.rep, report::deserialize_records(p));
}

// The run's `energy` attribute: "measured" when every rank measured, "measured on K of N ranks"
// when some did, else the first rank's reason ("off", "absent: ...").
std::string energy_status(const report::RunReport& rep) {
  std::set<int32_t> measured;
  if (rep.energy)
    for (const report::PowerSample& x : rep.energy->samples) measured.insert(x.rank);
  if (!measured.empty() && measured.size() >= rep.ranks.size()) return "measured";
  if (!measured.empty())
    return "measured on " + std::to_string(measured.size()) + " of " +
           std::to_string(rep.ranks.size()) + " ranks (see /ranks energy)";
  return rep.ranks.empty() ? std::string("absent") : rep.ranks.front().energy;
}

void fill_attributes(RankRun& r) {
  auto& x = r.rep.attrs.extra;
  int64_t steps = 0, preempt = 0, evict = 0, computed = 0;
  std::string failed;
  for (const auto& k : r.rep.ranks) {
    steps += k.engine_steps;
    preempt += k.engine_preemptions;
    evict += k.engine_evictions;
    computed += k.engine_computed_tokens;
  }
  x["engine_steps"] = std::to_string(steps);
  x["engine_preemptions"] = std::to_string(preempt);
  x["engine_evictions"] = std::to_string(evict);
  x["engine_computed_tokens"] = std::to_string(computed);
  int32_t total = 0;
  for (const auto& wf : r.expanded.workflows) total += static_cast<int32_t>(wf.steps.size());
  x["steps_total"] = std::to_string(total);
  x["world_launcher"] = r.rw.world().launcher;
  x["energy"] = energy_status(r.rep);
}

// The run's status for the report and the exit code: 0, 1 (a rank failed), 2 (steps failed),
// 128+signal (stopped).
int conclude(RankRun& r, std::string* status) {
  int failed_steps = 0, interrupted = 0, failed_ranks = 0;
  for (const auto& s : r.rep.steps) failed_steps += !s.error.empty();
  for (const auto& k : r.rep.ranks) {
    failed_ranks += k.status == "failed" || k.status == "lost";
    interrupted += k.status == "interrupted";
  }
  if (failed_ranks > 0) {
    *status = "failed";
    return 1;
  }
  if (interrupted > 0) {
    const int sig = r.rw.stop_signal();
    *status = sig == SIGINT    ? "interrupted (SIGINT)"
              : sig == SIGUSR1 ? "interrupted (SIGUSR1)"
              : sig == SIGTERM ? "interrupted (SIGTERM)"
                               : "interrupted (stopped by another rank)";
    return sig == SIGINT ? 128 + SIGINT : 128 + SIGTERM;
  }
  *status =
      failed_steps ? "complete with " + std::to_string(failed_steps) + " failed steps" : "complete";
  return failed_steps ? 2 : 0;
}

// Rank 0: the gathered records, the resumed ones, attributes; written atomically.
int write_report(RankRun& r) {
  // This run's steps only: resumed workflows ran in another run, on another clock.
  if (r.args.seed_log)
    for (const report::SeedLine& line : report::seed_closing_lines(r.rep)) emit(line);
  report::RecordBatch resumed = std::move(r.resume.records);
  if (!r.args.keep_outputs) resumed.outputs.clear();
  report::append_records(r.rep, std::move(resumed));
  fill_attributes(r);
  std::string status;
  const int code = conclude(r, &status);
  r.rep.attrs.extra["status"] = status;
  const auto write_start = Clock::now();
  report::write_report_hdf5(r.rep, r.job.output, r.args.keep_outputs);
  const double write_s = seconds_between(write_start, Clock::now());
  const report::Summary summary = report::summarize(r.rep);
  std::printf("%s", report::format_summary_table(summary, r.rep.attrs).c_str());
  std::printf("[report] %s (%zu steps, written in %.1f ms)\n", r.job.output.c_str(),
              r.rep.steps.size(), write_s * 1e3);
  std::fflush(stdout);
  for (const auto& k : r.rep.ranks)
    if (k.status == "failed" && r.rw.size() > 1)
      std::fprintf(stderr, "flowrank: rank %d on %s (%s) failed: %s\n", k.rank, k.host.c_str(),
                   k.device.empty() ? "no device" : k.device.c_str(), k.error.c_str());
  if (code == 2)
    std::fprintf(stderr,
                 "flowrank: %s; the report has every step, each failed one with its error\n",
                 status.c_str());
  if (code >= 128)
    std::fprintf(stderr, "flowrank: %s after %zu of %s steps; partial report written to %s\n",
                 status.c_str(), r.rep.steps.size(), r.rep.attrs.extra["steps_total"].c_str(),
                 r.job.output.c_str());
  return code;
}

// A rank was lost: no gather. Rank 0 writes a report from every journal (its own is complete,
// the others hold what their ranks finished) and ends the job; the others leave their journals
// synced and wait to be ended (or end at once when rank 0 is the one lost).
[[noreturn]] void end_after_lost_rank(RankRun& r) {
  fill_rank_record(r);
  r.me.status = "aborted";
  r.me.error = "stopped when a rank was lost";
  report::RecordBatch last;
  last.ranks = {r.me};
  last.phases = r.phases.records(r.rw.rank(), r.rw.epoch(), r.phases.size() - 1);
  add_energy(r, last);
  r.journal->append(last);
  r.journal->sync();
  const auto lost = r.rw.lost_rank();
  if (!r.rw.root()) {
    if (lost && *lost == 0) std::_Exit(1);
    for (;;) pause();  // rank 0 ends the job (MPI_Abort), or the lost-rank deadline does
  }
  const auto dir = r.journal->path().parent_path();
  try {
    report::RunReport rep = recover_report(dir, nullptr);
    for (auto& k : rep.ranks) {
      if (k.status != "lost" || (lost && k.rank == *lost)) continue;
      k.status = "aborted";
      k.error = "stopped when rank " + std::to_string(lost.value_or(-1)) + " was lost";
    }
    rep.plan = r.rep.plan;
    rep.attrs.extra = r.rep.attrs.extra;
    rep.attrs.extra["status"] = "failed: rank " + std::to_string(lost.value_or(-1)) + " lost";
    rep.attrs.extra["energy"] = energy_status(rep);
    report::write_report_hdf5(rep, r.job.output, false);
    std::fprintf(stderr, "flowrank: partial report (%zu steps) written to %s; journals in %s\n",
                 rep.steps.size(), r.job.output.c_str(), dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowrank: no partial report (%s); `flowrank report --recover %s`\n",
                 e.what(), dir.c_str());
  }
  r.rw.end_job(1);
}

int run_rank(RankRun& r) {
  expand_and_share(r);
  r.identity = Sha256()
                   .update_field(r.job.job_sha256)
                   .update_field(r.flow_key)
                   .update_field(engine_options_for(r.job).model)
                   .finish_hex();
  make_plan(r);
  open_journals(r);
  try {
    preload(r);
    run_shard(r);
  } catch (...) {
    if (!r.rw.comm()) throw;  // one process: the error is the whole story
    r.rank_error = std::current_exception();
  }
  if (r.rw.abort) end_after_lost_rank(r);
  gather(r);
  if (!r.rw.root()) {
    // Until rank 0 has written the report: a launcher that ends the job when one rank exits
    // non-zero (srun --kill-on-bad-exit, mpirun) must not cut the report short.
    if (r.rw.comm()) r.rw.comm()->barrier();
    r.rw.finished();
    if (r.rank_error) return 1;
    if (r.result.interrupted) return r.rw.stop_signal() == SIGINT ? 128 + SIGINT : 128 + SIGTERM;
    return 0;
  }
  const int code = write_report(r);
  if (r.rw.comm()) r.rw.comm()->barrier();
  r.rw.finished();
  if (!r.rw.comm() && r.rank_error) std::rethrow_exception(r.rank_error);
  return code;
}

}  // namespace

int run_command(const RunArgs& args) {
  const Clock::time_point start = Clock::now();
  try {
    const flow::JobSpec job = load_job_spec(args);
    PowerSampling power = start_power_sampler(args, job, dist::detect_world());
    const auto t0 = Clock::now();
    RankWorld rw(start);
    rw.connect(job.job_sha256);
    const auto t1 = Clock::now();
    RankRun r(args, rw);
    r.job = job;
    r.power = std::move(power);
    r.phases.add("world_init", t0, t1);
    if (rw.root()) {
      r.rep.attrs.flowrank_version = FLOWRANK_VERSION;
      r.rep.attrs.started_at = utc_now_iso();
      r.rep.attrs.world_size = rw.size();
      r.rep.attrs.job_name = job.name;
      r.rep.attrs.job_sha256 = job.job_sha256;
      r.rep.attrs.model = engine_options_for(job).model;
    }
    return run_rank(r);
  } catch (const QuietExit& q) {
    return q.code;
  }
}

}  // namespace flowrank::cli
