// A stand-in for libnvidia-ml.so.1 with the entry points the sampler uses, so that the sampler's
// loading, device choice and readings are tested on machines without a GPU. Power is a constant
// 150.5 W, and the energy counter agrees: 5000 mJ when the library loads, then 150.5 mJ per
// millisecond of the steady clock.
#include <chrono>
#include <cstring>

extern "C" {

struct nvmlDevice_st {
  int index;
};
static nvmlDevice_st g_device{0};
static const auto g_loaded = std::chrono::steady_clock::now();

int nvmlInit_v2() {
  return 0;
}
int nvmlShutdown() {
  return 0;
}
const char* nvmlErrorString(int) {
  return "fake NVML error";
}
int nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_st** device) {
  if (index != 3) return 2;  // NVML_ERROR_INVALID_ARGUMENT: only "GPU 3" exists
  *device = &g_device;
  return 0;
}
int nvmlDeviceGetHandleByUUID(const char*, nvmlDevice_st**) {
  return 6;
}  // NOT_FOUND
int nvmlDeviceGetName(nvmlDevice_st*, char* name, unsigned length) {
  std::strncpy(name, "Fake GPU", length);
  return 0;
}
int nvmlDeviceGetPowerUsage(nvmlDevice_st*, unsigned* milliwatts) {
  *milliwatts = 150500;
  return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_st*, unsigned long long* millijoules) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - g_loaded)
                      .count();
  *millijoules = 5000 + static_cast<unsigned long long>(us) * 1505 / 10000;
  return 0;
}
}
