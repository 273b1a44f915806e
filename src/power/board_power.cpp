#include "flowrank/power/board_power.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <string_view>

namespace flowrank::power {
namespace {

// The few NVML entry points used, declared from NVML's documented C API (nvml.h): every call
// returns nvmlReturn_t, 0 = NVML_SUCCESS; a device is an opaque pointer.
using NvmlReturn = int;
using NvmlDevice = struct NvmlDeviceOpaque*;

class Nvml {
 public:
  ~Nvml() {
    if (initialised_) shutdown_();
    if (handle_) ::dlclose(handle_);
  }

  // Loads the library and initialises NVML; on failure returns why.
  std::string open(const std::string& library) {
    handle_ = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) return "cannot load " + library + " (no NVIDIA driver?)";
    const bool found = find(init_, "nvmlInit_v2") && find(shutdown_, "nvmlShutdown") &&
                       find(error_string_, "nvmlErrorString") &&
                       find(by_index_, "nvmlDeviceGetHandleByIndex_v2") &&
                       find(by_uuid_, "nvmlDeviceGetHandleByUUID") &&
                       find(name_, "nvmlDeviceGetName") && find(power_, "nvmlDeviceGetPowerUsage");
    if (!found) return library + " lacks an NVML function this build needs";
    find(energy_, "nvmlDeviceGetTotalEnergyConsumption");  // optional: pre-Volta drivers
    if (NvmlReturn rc = init_(); rc != 0) return "nvmlInit: " + error(rc);
    initialised_ = true;
    return {};
  }

  // The device named by CUDA_VISIBLE_DEVICES' entry `gpu`, else index `gpu`; on failure, why.
  std::string select_device(int32_t gpu, std::string* label) {
    std::string entry = std::to_string(gpu);
    if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
      std::string_view rest(v);
      for (int32_t i = 0; i < gpu && !rest.empty(); ++i)
        rest = rest.find(',') == std::string_view::npos ? std::string_view()
                                                        : rest.substr(rest.find(',') + 1);
      entry = std::string(rest.substr(0, rest.find(',')));
      if (entry.empty())
        return gpu == 0 ? "CUDA_VISIBLE_DEVICES hides every GPU"
                        : "CUDA_VISIBLE_DEVICES has no GPU " + std::to_string(gpu);
    }
    NvmlReturn rc;
    if (entry.rfind("GPU-", 0) == 0 || entry.rfind("MIG-", 0) == 0) {
      rc = by_uuid_(entry.c_str(), &device_);
    } else if (entry.find_first_not_of("0123456789") == std::string::npos) {
      rc = by_index_(static_cast<unsigned>(std::strtoul(entry.c_str(), nullptr, 10)), &device_);
      entry = "GPU " + entry;
    } else {
      return "CUDA_VISIBLE_DEVICES entry \"" + entry + "\" is neither an index nor a GPU UUID";
    }
    if (rc != 0) return "no NVML device for " + entry + ": " + error(rc);
    char name[96] = {};
    *label =
        (name_(device_, name, sizeof name) == 0 ? std::string(name) : "GPU") + " (" + entry + ")";
    return {};
  }

  // One reading; false (with `why`) when the power cannot be read.
  bool read(Reading& r, std::string* why) {
    unsigned milliwatts = 0;
    r.t = Clock::now();
    if (NvmlReturn rc = power_(device_, &milliwatts); rc != 0) {
      *why = "nvmlDeviceGetPowerUsage: " + error(rc);
      return false;
    }
    r.watts = milliwatts / 1000.0;
    unsigned long long millijoules = 0;
    if (energy_ && energy_(device_, &millijoules) == 0)
      r.counter_j = static_cast<double>(millijoules) / 1000.0;
    else
      energy_ = nullptr;  // unsupported on this GPU: stop asking
    return true;
  }

  bool has_counter() const { return energy_ != nullptr; }

 private:
  template <class F>
  bool find(F& fn, const char* symbol) {
    fn = reinterpret_cast<F>(::dlsym(handle_, symbol));
    return fn != nullptr;
  }
  std::string error(NvmlReturn rc) const {
    const char* text = error_string_ ? error_string_(rc) : nullptr;
    return text ? text : "NVML error " + std::to_string(rc);
  }

  void* handle_ = nullptr;
  bool initialised_ = false;
  NvmlDevice device_ = nullptr;
  NvmlReturn (*init_)() = nullptr;
  NvmlReturn (*shutdown_)() = nullptr;
  const char* (*error_string_)(NvmlReturn) = nullptr;
  NvmlReturn (*by_index_)(unsigned, NvmlDevice*) = nullptr;
  NvmlReturn (*by_uuid_)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*name_)(NvmlDevice, char*, unsigned) = nullptr;
  NvmlReturn (*power_)(NvmlDevice, unsigned*) = nullptr;
  NvmlReturn (*energy_)(NvmlDevice, unsigned long long*) = nullptr;
};

}  // namespace

BoardPowerSampler::BoardPowerSampler(Options options)
    : options_(std::move(options)), thread_([this] { run(); }) {}

BoardPowerSampler::~BoardPowerSampler() {
  if (thread_.joinable()) stop();
}

bool BoardPowerSampler::wait_interval() {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
  return !stopping_;
}

void BoardPowerSampler::run() {
  Nvml nvml;
  Trace trace;
  std::string label;
  if (std::string why = nvml.open(options_.library); !why.empty()) {
    trace.unavailable = why;
  } else if (std::string no_device = nvml.select_device(options_.gpu, &label); !no_device.empty()) {
    trace.unavailable = no_device;
  } else {
    // One reading at once, one per interval, and a last one when stopped: the trace spans the
    // whole time the sampler ran.
    Reading r;
    for (bool more = true; nvml.read(r, &trace.unavailable);) {
      trace.readings.push_back(r);
      if (!more) break;
      more = wait_interval();
    }
    if (!trace.readings.empty()) {
      trace.unavailable.clear();  // a late failure keeps what was read
      trace.source = "nvml: " + label + ", every " + std::to_string(options_.interval.count()) +
                     " ms" + (nvml.has_counter() ? ", energy counter" : ", power readings");
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  trace_ = std::move(trace);
}

Trace BoardPowerSampler::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  return std::move(trace_);
}

}  // namespace flowrank::power
