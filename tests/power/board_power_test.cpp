// The board power sampler against a fake NVML library (tests/power/fake) and without any.
#include "flowrank/power/board_power.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

namespace flowrank::power {
namespace {

// Sets an environment variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

BoardPowerSampler::Options fake(std::chrono::milliseconds interval = std::chrono::milliseconds(1)) {
  return {FLOWRANK_FAKE_NVML, interval};
}

TEST(BoardPower, NoLibraryRecordsNothingAndSaysWhy) {
  BoardPowerSampler sampler({"libnvidia-ml-does-not-exist.so.1", std::chrono::milliseconds(5)});
  const Trace t = sampler.stop();
  EXPECT_TRUE(t.readings.empty());
  EXPECT_TRUE(t.source.empty());
  EXPECT_NE(t.unavailable.find("cannot load libnvidia-ml-does-not-exist.so.1"), std::string::npos);
}

TEST(BoardPower, ReadsTheDeviceCudaVisibleDevicesNames) {
  ScopedEnv env("CUDA_VISIBLE_DEVICES", "3,1");
  BoardPowerSampler sampler(fake());
  const Trace t = sampler.stop();
  ASSERT_GE(t.readings.size(), 2u) << t.unavailable;  // one at start, one at stop
  EXPECT_EQ(t.source, "nvml: Fake GPU (GPU 3), every 1 ms, energy counter");
  for (const Reading& r : t.readings) EXPECT_EQ(r.watts, 150.5);
  // The fake's counter runs at 150.5 W from 5 J: readings carry it in joules, in time order.
  EXPECT_GE(t.readings.front().counter_j, 5.0);
  for (std::size_t i = 1; i < t.readings.size(); ++i) {
    EXPECT_LE(t.readings[i - 1].t, t.readings[i].t);
    EXPECT_LE(t.readings[i - 1].counter_j, t.readings[i].counter_j);
  }
  const double span_s = seconds_between(t.readings.front().t, t.readings.back().t);
  EXPECT_NEAR(t.readings.back().counter_j - t.readings.front().counter_j, 150.5 * span_s, 0.01);
}

// A rank on CUDA device 1 samples the second visible GPU, or NVML index 1 without the variable.
TEST(BoardPower, ReadsTheGpuTheEngineRunsOn) {
  BoardPowerSampler::Options second = fake();
  second.gpu = 1;
  {
    ScopedEnv env("CUDA_VISIBLE_DEVICES", "1,3");
    const Trace t = BoardPowerSampler(second).stop();
    ASSERT_FALSE(t.readings.empty()) << t.unavailable;
    EXPECT_EQ(t.source, "nvml: Fake GPU (GPU 3), every 1 ms, energy counter");
  }
  {
    ScopedEnv env("CUDA_VISIBLE_DEVICES", nullptr);
    EXPECT_EQ(BoardPowerSampler(second).stop().unavailable,
              "no NVML device for GPU 1: fake NVML error");
  }
  {
    ScopedEnv env("CUDA_VISIBLE_DEVICES", "3");
    EXPECT_EQ(BoardPowerSampler(second).stop().unavailable, "CUDA_VISIBLE_DEVICES has no GPU 1");
  }
}

TEST(BoardPower, DevicesThatDoNotExist) {
  {
    ScopedEnv env("CUDA_VISIBLE_DEVICES", nullptr);  // index 0: the fake has only GPU 3
    const Trace t = BoardPowerSampler(fake()).stop();
    EXPECT_TRUE(t.readings.empty());
    EXPECT_EQ(t.unavailable, "no NVML device for GPU 0: fake NVML error");
  }
  {
    ScopedEnv env("CUDA_VISIBLE_DEVICES", "");
    EXPECT_EQ(BoardPowerSampler(fake()).stop().unavailable, "CUDA_VISIBLE_DEVICES hides every GPU");
  }
  {
    ScopedEnv env("CUDA_VISIBLE_DEVICES", "GPU-0000");
    EXPECT_EQ(BoardPowerSampler(fake()).stop().unavailable,
              "no NVML device for GPU-0000: fake NVML error");
  }
}

}  // namespace
}  // namespace flowrank::power
