#include "flowrank/flow/job.hpp"

#include <gtest/gtest.h>

#include "flow_test_support.hpp"
#include "flowrank/common/hash.hpp"

namespace flowrank::flow {
namespace {
using namespace testing;

// A job directory with the three inputs a job must point at; `write_job` adds the TOML.
class JobFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write(dir / "jobs/flows/f.json", "{}");
    write(dir / "tasks/s.json", "{}");
    write(dir / "fx/a.txt", "a");
  }
  fs::path write_job(const std::string& body, const std::string& name = "jobs/j.toml") {
    write(dir / name, body);
    return dir / name;
  }
  static std::string base() {
    return "name = \"j1\"\nflow = \"flows/f.json\"\nfixtures = \"../fx\"\n"
           "suite = \"../tasks/s.json\"\nworkflows = 3\n";
  }
  TempDir dir;
};

TEST_F(JobFileTest, DefaultsAndPathsRelativeToJobFile) {
  const fs::path p = write_job(base());
  const JobSpec job = load_job(p);
  EXPECT_EQ(job.name, "j1");
  EXPECT_EQ(job.flow, (dir.path() / "jobs/flows/f.json").lexically_normal());
  EXPECT_EQ(job.fixtures, (dir.path() / "fx").lexically_normal());
  EXPECT_EQ(job.suite, (dir.path() / "tasks/s.json").lexically_normal());
  EXPECT_EQ(job.workflows, 3);
  EXPECT_EQ(job.layout, PromptLayout::kSeed);
  EXPECT_FALSE(job.chat);
  EXPECT_EQ(job.device, "auto");
  EXPECT_EQ(job.model, "");
  EXPECT_EQ(job.output, fs::path("reports/j1.h5"));  // relative to cwd, not to the job
  EXPECT_TRUE(job.fixture_include.empty());
  EXPECT_EQ(job.fixture_rules, FixtureRules::kHarness);  // the seed layout's default
  EXPECT_EQ(job.fixture_order, FixtureOrder::kSorted);
  EXPECT_EQ(job.engine.block_size, 16);
  EXPECT_EQ(job.engine.max_batch_tokens, 0);  // 0: the engine backend chooses
  EXPECT_EQ(job.engine.max_seqs, 0);
  EXPECT_TRUE(job.engine.prefix_cache);
  EXPECT_FALSE(job.sampling.temperature.has_value());
  EXPECT_TRUE(job.steps.empty());
  EXPECT_EQ(job.job_sha256, sha256_hex(slurp(p)));
}

TEST_F(JobFileTest, RelativeJobPathStaysRelative) {
  write_job(base());
  const fs::path old = fs::current_path();
  fs::current_path(dir.path());
  JobSpec job;
  try {
    job = load_job("jobs/j.toml");
  } catch (...) {
    fs::current_path(old);
    throw;
  }
  fs::current_path(old);
  EXPECT_EQ(job.flow, fs::path("jobs/flows/f.json"));
  EXPECT_EQ(job.fixtures, fs::path("fx"));
  EXPECT_EQ(job.suite, fs::path("tasks/s.json"));
}

TEST_F(JobFileTest, EveryKey) {
  const fs::path p =
      write_job(base() +
                "fixture_include = [\"*.txt\", \"src/**/*.py\"]\n"
                "layout = \"context-first\"\nchat = true\n"
                "model = \"../models/m.gguf\"\ndevice = \"cpu\"\n"
                "output = \"out/r.h5\"\n"
                "[sampling]\ntemperature = 0.7\ntop_p = 0.9\nmax_tokens = 1024\n"
                "seed = 20261128\ntop_k = 40\nstop = [\"<END>\"]\nignore_eos = true\n"
                "[steps.planner]\nmax_tokens = 128\n"
                "[steps.verifier]\ntemperature = 0\n"
                "[engine]\nblock_size = 32\nkv_blocks = 100\nmax_batch_tokens = 4096\n"
                "max_seqs = 8\nprefix_cache = false\nthreads = 2\n");
  const JobSpec job = load_job(p);
  EXPECT_EQ(job.fixture_include, (std::vector<std::string>{"*.txt", "src/**/*.py"}));
  EXPECT_EQ(job.layout, PromptLayout::kContextFirst);
  EXPECT_EQ(job.fixture_rules, FixtureRules::kAll);  // context-first's default
  EXPECT_TRUE(job.chat);
  EXPECT_EQ(job.model, (dir.path() / "models/m.gguf").lexically_normal().string());
  EXPECT_EQ(job.device, "cpu");
  EXPECT_EQ(job.output, fs::path("out/r.h5"));
  EXPECT_FLOAT_EQ(*job.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(*job.sampling.top_p, 0.9f);
  EXPECT_EQ(*job.sampling.max_tokens, 1024);
  EXPECT_EQ(*job.sampling.seed, 20261128u);
  EXPECT_EQ(*job.sampling.top_k, 40);
  EXPECT_EQ(*job.sampling.stop, std::vector<std::string>{"<END>"});
  EXPECT_TRUE(*job.sampling.ignore_eos);
  ASSERT_EQ(job.steps.size(), 2u);
  EXPECT_EQ(*job.steps.at("planner").max_tokens, 128);
  EXPECT_FALSE(job.steps.at("planner").temperature.has_value());
  EXPECT_FLOAT_EQ(*job.steps.at("verifier").temperature, 0.0f);  // integer accepted as number
  EXPECT_EQ(job.engine.block_size, 32);
  EXPECT_EQ(job.engine.kv_blocks, 100);
  EXPECT_EQ(job.engine.max_batch_tokens, 4096);
  EXPECT_EQ(job.engine.max_seqs, 8);
  EXPECT_FALSE(job.engine.prefix_cache);
  EXPECT_EQ(job.engine.threads, 2);
}

TEST_F(JobFileTest, FixtureRulesOrderAndChainedLayout) {
  struct Case {
    std::string keys;
    PromptLayout layout;
    FixtureRules rules;
    FixtureOrder order;
  };
  const std::vector<Case> cases = {
      {"layout = \"seed-chained\"\n", PromptLayout::kSeedChained, FixtureRules::kHarness,
       FixtureOrder::kSorted},
      {"fixture_rules = \"all\"\nfixture_order = \"walk\"\n", PromptLayout::kSeed,
       FixtureRules::kAll, FixtureOrder::kWalk},
      // The default follows the layout wherever the layout key sits.
      {"fixture_order = \"sorted\"\nlayout = \"context-first\"\n", PromptLayout::kContextFirst,
       FixtureRules::kAll, FixtureOrder::kSorted},
      {"layout = \"context-first\"\nfixture_rules = \"harness\"\n", PromptLayout::kContextFirst,
       FixtureRules::kHarness, FixtureOrder::kSorted},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.keys);
    const JobSpec job = load_job(write_job(base() + c.keys));
    EXPECT_EQ(job.layout, c.layout);
    EXPECT_EQ(job.fixture_rules, c.rules);
    EXPECT_EQ(job.fixture_order, c.order);
  }
  EXPECT_STREQ(layout_name(PromptLayout::kSeedChained), "seed-chained");
}

TEST_F(JobFileTest, DummyModelIsNotAPath) {
  const JobSpec job = load_job(write_job(base() + "model = \"dummy:llama3-1b\"\n"));
  EXPECT_EQ(job.model, "dummy:llama3-1b");
}

// Each bad input: the message names the file (and the line where TOML gives one) and the key.
struct BadJob {
  const char* label;
  std::string extra;  // appended to a valid job, or a whole body when `whole`
  bool whole;
  std::vector<std::string> needles;
};

TEST_F(JobFileTest, BadInputs) {
  const std::vector<BadJob> cases = {
      {"bad toml", "name = \"j1\"\nworkflows = = 3\n", true, {"j.toml:2:"}},
      {"unknown top-level", "colour = \"red\"\n", false, {"j.toml:6", "unknown key 'colour'"}},
      {"unknown in sampling",
       "[sampling]\ntemprature = 0.5\n",
       false,
       {"j.toml:7", "unknown key 'sampling.temprature'"}},
      {"unknown in steps",
       "[steps.planner]\nmax_tokns = 5\n",
       false,
       {"j.toml:7", "unknown key 'steps.planner.max_tokns'"}},
      {"unknown in engine", "[engine]\nblocks = 5\n", false, {"unknown key 'engine.blocks'"}},
      {"workflows zero",
       "name = \"j1\"\nflow = \"flows/f.json\"\nfixtures = \"../fx\"\n"
       "suite = \"../tasks/s.json\"\nworkflows = 0\n",
       true,
       {"j.toml:5", "workflows", "got 0"}},
      {"workflows string",
       "name = \"j1\"\nflow = \"flows/f.json\"\nfixtures = \"../fx\"\n"
       "suite = \"../tasks/s.json\"\nworkflows = \"3\"\n",
       true,
       {"j.toml:5", "workflows", "must be an integer, got a string"}},
      {"bad layout", "layout = \"sideways\"\n", false, {"layout", "sideways"}},
      {"bad device", "device = \"tpu\"\n", false, {"device", "tpu"}},
      {"bad rules",
       "fixture_rules = \"some\"\n",
       false,
       {"fixture_rules", "\"harness\" or \"all\""}},
      {"bad order", "fixture_order = 1\n", false, {"fixture_order", "must be a string"}},
      {"bad order value", "fixture_order = \"random\"\n", false, {"fixture_order", "\"walk\""}},
      {"top_p range", "[sampling]\ntop_p = 1.5\n", false, {"sampling.top_p", "(0, 1]"}},
      {"top_p zero", "[steps.x]\ntop_p = 0\n", false, {"steps.x.top_p"}},
      {"temperature range", "[sampling]\ntemperature = -0.1\n", false, {"sampling.temperature"}},
      {"max_tokens range", "[sampling]\nmax_tokens = 0\n", false, {"sampling.max_tokens"}},
      {"seed negative", "[sampling]\nseed = -1\n", false, {"sampling.seed", ">= 0"}},
      {"stop type", "[sampling]\nstop = \"<END>\"\n", false, {"sampling.stop", "array of strings"}},
      {"chat type", "chat = 1\n", false, {"chat", "true or false"}},
      {"sampling not a table", "sampling = 3\n", false, {"sampling", "must be a table"}},
      {"engine range", "[engine]\nmax_seqs = 0\n", false, {"engine.max_seqs"}},
      {"bad name",
       "name = \"a b\"\nflow = \"flows/f.json\"\nfixtures = \"../fx\"\n"
       "suite = \"../tasks/s.json\"\nworkflows = 1\n",
       true,
       {"name", "[A-Za-z0-9._-]+"}},
      {"missing workflows",
       "name = \"j1\"\nflow = \"flows/f.json\"\nfixtures = \"../fx\"\n"
       "suite = \"../tasks/s.json\"\n",
       true,
       {"missing required key 'workflows'"}},
      {"flow file missing",
       "name = \"j1\"\nflow = \"flows/nope.json\"\nfixtures = \"../fx\"\n"
       "suite = \"../tasks/s.json\"\nworkflows = 1\n",
       true,
       {"flow", "nope.json"}},
      {"fixtures not a dir",
       "name = \"j1\"\nflow = \"flows/f.json\"\nfixtures = \"../fx/a.txt\"\n"
       "suite = \"../tasks/s.json\"\nworkflows = 1\n",
       true,
       {"fixtures", "not a directory"}},
  };
  for (const BadJob& c : cases) {
    SCOPED_TRACE(c.label);
    const fs::path p = write_job(c.whole ? c.extra : base() + c.extra);
    std::vector<std::string> needles = c.needles;
    needles.push_back(p.string());
    try {
      load_job(p);
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << n << " in " << msg;
    }
  }
}

TEST_F(JobFileTest, MissingJobFile) {
  const fs::path p = dir / "jobs/absent.toml";
  expect_input_error([&] { load_job(p); }, {p.string(), "cannot read"});
}

TEST_F(JobFileTest, Overrides) {
  JobSpec job = load_job(write_job(base()));
  apply_overrides(job, JobOverrides{fs::path("x/y.h5"), "cuda", "dummy:olmo3-7b", 2});
  EXPECT_EQ(job.output, fs::path("x/y.h5"));
  EXPECT_EQ(job.device, "cuda");
  EXPECT_EQ(job.model, "dummy:olmo3-7b");
  EXPECT_EQ(job.workflows, 2);
  apply_overrides(job, JobOverrides{});  // nothing set: nothing changes
  EXPECT_EQ(job.device, "cuda");

  expect_input_error(
      [&] {
        apply_overrides(job, JobOverrides{{}, "gpu", {}, {}});
      },
      {"--device", "gpu"});
  expect_input_error(
      [&] {
        apply_overrides(job, JobOverrides{{}, {}, {}, 0});
      },
      {"--workflows", "got 0"});
  expect_input_error([&] { apply_overrides(job, JobOverrides{{}, {}, "", {}}); }, {"--model"});
  EXPECT_EQ(job.workflows, 2);  // a rejected override leaves the job as it was
}

TEST(SamplingLayers, ApplyOnlySetKeys) {
  StepSampling s;
  s.max_tokens = 100;
  s.temperature = 0.5f;
  SamplingOverride layer;
  layer.temperature = 0.9f;
  layer.stop = std::vector<std::string>{"x"};
  apply_sampling(layer, s);
  EXPECT_EQ(s.max_tokens, 100);
  EXPECT_FLOAT_EQ(s.temperature, 0.9f);
  EXPECT_EQ(s.stop, std::vector<std::string>{"x"});
  EXPECT_FLOAT_EQ(s.top_p, 1.0f);
}

}  // namespace
}  // namespace flowrank::flow
