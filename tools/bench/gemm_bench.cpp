// tools/bench/run --gemm: the CPU projection kernels on SmolLM2's shapes, one thread, per kernel
// set; GFLOP per CPU-second (process CPU time, which a shared machine inflates less than wall
// time). tools/bench/run prints OpenBLAS's sgemm (numpy's, dynamic-arch) on the same shapes.
//   flowrank_bench_gemm [TYPE]   TYPE: a GGUF type name (default Q4_1)
#include <time.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "flowrank/engine/cpu/cpu_kernels.hpp"

using namespace flowrank::engine;

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Rows of random quants whose f16 scales are all 2^-7 (finite, no denormals).
std::vector<unsigned char> weights(TensorType type, int64_t n, int64_t k) {
  std::vector<unsigned char> w(tensor_bytes(type, n * k));
  std::mt19937 rng(1);
  for (auto& b : w) b = static_cast<unsigned char>(rng() & 0x77);  // positive f16/f32 too
  const std::size_t block = tensor_bytes(type, block_elements(type));
  if (type == TensorType::kQ4_0 || type == TensorType::kQ4_1 || type == TensorType::kQ8_0) {
    for (std::size_t i = 0; i < w.size(); i += block) {
      w[i] = 0x00;
      w[i + 1] = 0x20;
      if (type == TensorType::kQ4_1) w[i + 2] = 0x00, w[i + 3] = 0x20;
    }
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "Q4_1";
  TensorType type = TensorType::kQ4_1;
  for (TensorType t : {TensorType::kF32, TensorType::kF16, TensorType::kQ8_0, TensorType::kQ4_0,
                       TensorType::kQ4_1})
    if (name == tensor_type_name(t)) type = t;
  struct Shape {
    const char* what;
    int64_t m, n, k;
  };
  const Shape shapes[] = {{"gate+up, prefill 512", 512, 3072, 576},
                          {"down, prefill 512", 512, 576, 1536},
                          {"gate+up, decode 16", 16, 3072, 576},
                          {"gate+up, decode 1", 1, 3072, 576}};
  cpu::ThreadPool pool(1);
  std::printf("| shape | m | n | k | kernels | %s GFLOP/cpu-s |\n|---|---:|---:|---:|---|---:|\n",
              tensor_type_name(type));
  for (const Shape& s : shapes) {
    const auto w = weights(type, s.n, s.k);
    const cpu::WeightRows rows{type, w.data(), s.n, s.k};
    std::vector<float> x(static_cast<std::size_t>(s.m * s.k), 0.5f);
    std::vector<float> y(static_cast<std::size_t>(s.m * s.n));
    for (cpu::Isa isa : {cpu::Isa::kAvx512, cpu::Isa::kAvx2}) {
      if (cpu::set_kernel_isa(isa) != isa) continue;
      const double flops = 2.0 * static_cast<double>(s.m * s.n * s.k);
      const int reps = static_cast<int>(std::max(1.0, 4e9 / flops));
      cpu::matmul(x.data(), s.m, s.k, {&rows, 1}, y.data(), s.n, pool);
      const double t0 = cpu_seconds();
      for (int i = 0; i < reps; ++i)
        cpu::matmul(x.data(), s.m, s.k, {&rows, 1}, y.data(), s.n, pool);
      const double t = cpu_seconds() - t0;
      std::printf("| %s | %lld | %lld | %lld | %s | %.1f |\n", s.what, static_cast<long long>(s.m),
                  static_cast<long long>(s.n), static_cast<long long>(s.k), cpu::isa_name(isa),
                  flops * reps / t / 1e9);
    }
  }
  return 0;
}
