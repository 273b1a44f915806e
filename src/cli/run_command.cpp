// `flowrank run JOB`: world -> flow expansion (cached) -> engine preload -> executor -> report.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <numeric>

#include "cli_common.hpp"
#include "commands.hpp"
#include "flowrank/common/clock.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/dist/world.hpp"
#include "flowrank/flow/expand.hpp"
#include "flowrank/flow/flow_cache.hpp"
#include "flowrank/power/board_power.hpp"
#include "flowrank/report/energy.hpp"
#include "flowrank/report/hdf5_report.hpp"
#include "flowrank/report/seed_log.hpp"
#include "flowrank/report/summary.hpp"
#include "flowrank/run/executor.hpp"
#include "flowrank/run/progress.hpp"

namespace flowrank::cli {
namespace {

std::atomic<bool> g_stop{false};
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  g_signal = sig;
  g_stop.store(true);
  // A second Ctrl-C kills at once.
  std::signal(sig, SIG_DFL);
}

std::string utc_now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Records phases relative to the run's epoch.
class PhaseClock {
 public:
  PhaseClock(Clock::time_point epoch, int32_t rank, std::vector<report::PhaseRecord>& out)
      : epoch_(epoch), rank_(rank), out_(out) {}
  template <class F>
  auto time(const char* phase, F&& f) {
    const auto start = Clock::now();
    struct Record {
      PhaseClock* self;
      const char* phase;
      Clock::time_point start;
      ~Record() {
        self->out_.push_back({self->rank_, phase, seconds_between(self->epoch_, start),
                              seconds_between(start, Clock::now())});
      }
    } record{this, phase, start};
    return f();
  }

 private:
  Clock::time_point epoch_;
  int32_t rank_;
  std::vector<report::PhaseRecord>& out_;
};

// Prints one of the seed harness's lines live, on the stream the harness used.
void emit(const report::SeedLine& line) {
  std::FILE* f = line.to_stdout ? stdout : stderr;
  std::fputs(line.text.c_str(), f);
  std::fflush(f);
}

// Board power is sampled unless energy is off or the job runs on the CPU; NVML loads on the
// sampler's own thread while the run goes on.
std::unique_ptr<power::BoardPowerSampler> start_power_sampler(const RunArgs& args,
                                                              const flow::JobSpec& job) {
  if (args.energy == "off" || (args.energy == "auto" && job.device == "cpu")) return nullptr;
  power::BoardPowerSampler::Options options;
  if (const char* lib = std::getenv("FLOWRANK_NVML_LIBRARY"); lib && *lib) options.library = lib;
  return std::make_unique<power::BoardPowerSampler>(options);
}

// The energy figures of the run, or why there are none (the `energy` extra attribute).
void finish_energy(power::BoardPowerSampler* sampler, const RunArgs& args, Clock::time_point epoch,
                   const engine::EngineInfo& info, report::RunReport& rep) {
  std::string& status = rep.attrs.extra["energy"];
  if (!sampler) {
    status = args.energy == "off" ? "off" : "absent: the job runs on the CPU";
    return;
  }
  power::Trace trace = sampler->stop();
  if (args.energy == "auto" && info.backend != "cuda") {
    status = "absent: the engine ran on the CPU";
  } else if (trace.readings.empty()) {
    status = "absent: " + trace.unavailable;
  } else {
    std::vector<report::PowerSample> samples;
    for (const power::Reading& r : trace.readings)
      samples.push_back({seconds_between(epoch, r.t), r.watts, r.counter_j});
    rep.energy = report::attribute_energy(trace.source, std::move(samples), rep.phases, rep.steps);
    status = "measured";
  }
  if (args.energy == "on" && !rep.energy)
    std::fprintf(stderr, "flowrank: warning: no energy figures: %s\n", status.c_str());
}

}  // namespace

int run_command(const RunArgs& args) {
  const Clock::time_point epoch = Clock::now();
  report::RunReport rep;
  rep.attrs.flowrank_version = FLOWRANK_VERSION;
  rep.attrs.started_at = utc_now_iso();
  PhaseClock phases(epoch, 0, rep.phases);

  const dist::World world = phases.time("world_init", [] { return dist::detect_world(); });
  rep.attrs.world_size = world.size;
  if (world.size > 1)
    throw RunError("world size " + std::to_string(world.size) + " (launcher " + world.launcher +
                   "): multi-rank runs need the MPI layer, which this build does not include; "
                   "run one process");

  flow::JobSpec job = flow::load_job(args.job);
  flow::JobOverrides ov;
  if (args.out) ov.out = *args.out;
  ov.device = args.device;
  ov.model = args.model;
  ov.workflows = args.workflows;
  flow::apply_overrides(job, ov);
  rep.attrs.job_name = job.name;
  rep.attrs.job_sha256 = job.job_sha256;
  const std::unique_ptr<power::BoardPowerSampler> sampler = start_power_sampler(args, job);

  std::optional<flow::FlowCache> cache;
  if (!args.no_cache) cache.emplace(flow::default_cache_dir());
  flow::ExpansionResult expansion =
      phases.time("flow_expand", [&] { return flow::expand_job(job, cache ? &*cache : nullptr); });
  print_expansion_warnings(job, expansion);
  std::printf("[flow] %s  key=%.16s  %s  %.1f ms  workflows=%zu  fixture=%llu bytes in %u files\n",
              job.name.c_str(), expansion.key.c_str(),
              args.no_cache ? "uncached" : (expansion.hit ? "hit" : "miss"),
              expansion.seconds * 1e3, expansion.job.workflows.size(),
              static_cast<unsigned long long>(expansion.job.fixture_bytes),
              expansion.job.fixture_files);
  auto& extra = rep.attrs.extra;
  extra["flow_cache"] = args.no_cache ? "off" : (expansion.hit ? "hit" : "miss");
  extra["flow_cache_key"] = expansion.key;
  extra["fixture_bytes"] = std::to_string(expansion.job.fixture_bytes);
  extra["fixture_files"] = std::to_string(expansion.job.fixture_files);
  extra["fixture_rules"] = flow::fixture_rules_name(job.fixture_rules);
  extra["fixture_order"] = flow::fixture_order_name(job.fixture_order);
  extra["layout"] = flow::layout_name(expansion.job.layout);
  extra["workflows"] = std::to_string(expansion.job.workflows.size());
  if (args.seed_log) {
    for (std::size_t i = 0; i < expansion.job.workflows.size(); ++i)
      emit(report::seed_input_line(extra["fixture_bytes"], extra["fixture_files"]));
    emit(report::seed_expansion_line(rep.phases.back().duration_s * 1e3, extra["flow_cache"]));
  }

  engine::EngineOptions eopts = engine_options_for(job);
  if (args.no_prefix_cache) eopts.prefix_cache = false;
  rep.attrs.model = eopts.model;
  if (args.seed_log) emit(report::seed_engine_init_start_line());
  std::unique_ptr<engine::Engine> eng = phases.time("engine_preload", [&] {
    auto e = engine::make_engine(eopts);
    e->preload();
    return e;
  });
  if (args.seed_log) emit(report::seed_engine_init_line(rep.phases.back().duration_s * 1e3));
  const engine::EngineInfo info = eng->info();
  rep.attrs.device = info.device;
  extra["backend"] = info.backend;
  extra["kv_blocks"] = std::to_string(info.kv_blocks);
  extra["block_size"] = std::to_string(info.block_size);
  extra["prefix_cache"] = eopts.prefix_cache ? "on" : "off";
  std::printf("[engine] %s on %s: %d KV blocks x %d tokens, context %d (preload %.2f s)\n",
              info.model_name.c_str(), info.device.c_str(), info.kv_blocks, info.block_size,
              info.context_length, rep.phases.back().duration_s);
  std::fflush(stdout);

  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::vector<int32_t> shard(expansion.job.workflows.size());
  std::iota(shard.begin(), shard.end(), 0);

  // With --seed-log the harness's lines are the progress report, unless asked otherwise.
  const std::string progress = args.seed_log && args.progress == "auto" ? "off" : args.progress;
  const bool terminal = progress == "live" || (progress == "auto" && isatty(fileno(stderr)));
  run::ProgressDisplay display(stderr, terminal);
  run::ExecutorOptions xopts;
  xopts.epoch = epoch;
  xopts.rank = world.rank;
  xopts.keep_outputs = args.keep_outputs;
  xopts.stop = &g_stop;
  if (progress != "off")
    xopts.on_progress = [&](const run::ProgressSnapshot& p) { display.update(p); };
  if (args.seed_log) {
    xopts.on_step = [](const report::StepRecord& s) { emit(report::seed_target_line(s)); };
    xopts.on_workflow = [](const report::WorkflowRecord& w) {
      emit(report::seed_workflow_line(w));
    };
  }
  run::ExecutionResult result =
      phases.time("run", [&] { return run::execute(expansion.job, shard, *eng, xopts); });
  display.finish();

  rep.steps = std::move(result.steps);
  rep.workflows = std::move(result.workflows);
  rep.outputs = std::move(result.outputs);
  if (args.seed_log)
    for (const report::SeedLine& line : report::seed_closing_lines(rep)) emit(line);
  std::string status = "complete";
  if (result.interrupted)
    status = g_signal == SIGINT ? "interrupted (SIGINT)" : "interrupted (SIGTERM)";
  if (result.error) status = "failed";
  extra["status"] = status;
  extra["steps_total"] = std::to_string(result.steps_total);
  const engine::EngineStats stats = eng->stats();
  extra["engine_steps"] = std::to_string(stats.steps);
  extra["engine_preemptions"] = std::to_string(stats.preemptions);
  extra["engine_evictions"] = std::to_string(stats.evictions);
  extra["engine_computed_tokens"] = std::to_string(stats.computed_tokens);
  finish_energy(sampler.get(), args, epoch, info, rep);

  // Whatever happened in the run, what finished is written before the error is reported.
  const auto write_start = Clock::now();
  report::write_report_hdf5(rep, job.output, args.keep_outputs);
  const double write_s = seconds_between(write_start, Clock::now());

  const report::Summary summary = report::summarize(rep);
  std::printf("%s", report::format_summary_table(summary, rep.attrs).c_str());
  std::printf("[report] %s (%zu of %d steps, written in %.1f ms)\n", job.output.c_str(),
              rep.steps.size(), result.steps_total, write_s * 1e3);

  if (result.error) std::rethrow_exception(result.error);
  if (result.interrupted) {
    std::fprintf(stderr, "flowrank: %s after %zu of %d steps; partial report written to %s\n",
                 status.c_str(), rep.steps.size(), result.steps_total, job.output.c_str());
    return 128 + (g_signal ? static_cast<int>(g_signal) : SIGTERM);
  }
  return 0;
}

}  // namespace flowrank::cli
