// Preload kernels against engine/model: dequantize_bf16 against dequantize() rounded to bf16, and
// fill_dummy_bf16 against fill_dummy_f16 widened and rounded to bf16. Both bit for bit.
#include <cuda_fp16.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "flowrank/engine/model.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

using namespace testing;  // cuda_test_support.hpp

// A random finite f16 (normal, subnormal or zero; never inf or NaN).
uint16_t finite_half(std::mt19937& rng) {
  const auto sign = static_cast<uint16_t>((rng() & 1) << 15);
  const auto exponent = static_cast<uint16_t>((rng() % 31) << 10);
  return static_cast<uint16_t>(sign | exponent | (rng() & 0x3FF));
}

void put_u16(std::vector<unsigned char>& bytes, std::size_t at, uint16_t v) {
  std::memcpy(bytes.data() + at, &v, 2);
}

// Byte offsets of the f16 scales within a block of each quantized type.
std::vector<std::size_t> scale_offsets(TensorType t) {
  switch (t) {
    case TensorType::kQ4_1:
    case TensorType::kQ4_K:
      return {0, 2};  // d, then m / dmin
    case TensorType::kQ6_K:
      return {208};
    default:
      return {0};  // Q8_0, Q4_0: d
  }
}

// n elements of type t as random bytes whose float fields (values or block scales) are finite.
std::vector<unsigned char> random_tensor(TensorType t, int64_t n, std::mt19937& rng) {
  std::vector<unsigned char> bytes(tensor_bytes(t, n));
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  const auto nb = static_cast<std::size_t>(n / block_elements(t));
  if (t == TensorType::kF32) {
    std::normal_distribution<float> dist(0.0f, 3.0f);
    for (std::size_t i = 0; i < nb; ++i) {
      const float v = dist(rng);
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    }
  } else if (t == TensorType::kF16 || t == TensorType::kBF16) {
    for (std::size_t i = 0; i < nb; ++i) {
      uint16_t v = finite_half(rng);  // as bf16: any pattern whose exponent is not all ones
      if (t == TensorType::kBF16 && ((v >> 7) & 0xFF) == 0xFF) v = static_cast<uint16_t>(v & ~0x80);
      put_u16(bytes, 2 * i, v);
    }
  } else {
    const std::size_t block_bytes = tensor_bytes(t, block_elements(t));
    for (std::size_t i = 0; i < nb; ++i)
      for (std::size_t at : scale_offsets(t))
        put_u16(bytes, block_bytes * i + at, finite_half(rng));
  }
  return bytes;
}

// bf16(dequantize()) on the host.
std::vector<bf16> expected_bf16(TensorType t, const void* data, int64_t n) {
  std::vector<float> f(static_cast<std::size_t>(n));
  dequantize(t, data, f.data(), n);
  return testing::to_bf16(f);
}

std::vector<bf16> device_bf16(TensorType t, const std::vector<unsigned char>& bytes, int64_t n) {
  DeviceBuffer<unsigned char> src(bytes);
  DeviceBuffer<bf16> dst(static_cast<std::size_t>(n));
  dst.poison();
  dequantize_bf16(t, src.get(), dst.get(), n, nullptr);
  return dst.download();
}

class DequantizeBf16 : public CudaTest {};

// Exact: the same f32 operations in the same order, then round-to-nearest-even on both sides.
TEST_F(DequantizeBf16, EveryTypeMatchesTheCpuBitForBit) {
  std::mt19937 rng(17);
  for (TensorType t :
       {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0, TensorType::kQ4_0,
        TensorType::kQ4_1, TensorType::kQ4_K, TensorType::kQ6_K}) {
    for (int64_t blocks : {1, 37, 4099}) {
      const int64_t n = blocks * block_elements(t);
      const std::vector<unsigned char> bytes = random_tensor(t, n, rng);
      EXPECT_TRUE(all_equal(device_bf16(t, bytes, n), expected_bf16(t, bytes.data(), n)))
          << tensor_type_name(t) << ", " << n << " elements";
    }
  }
}

// The bundled SmolLM2's own tensors (the types a real file mixes), where the file is present.
TEST_F(DequantizeBf16, BundledModelTensors) {
  const std::string path =
      std::string(FLOWRANK_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  const ModelWeights w = load_model(path);
  const LayerWeights& l = w.layers[0];
  for (const Tensor* t : {&w.tok_embd, &w.output_norm, &l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo,
                          &l.w_gate, &l.w_up, &l.w_down}) {
    const auto* p = static_cast<const unsigned char*>(t->data);
    const std::vector<unsigned char> bytes(p, p + t->nbytes);
    EXPECT_TRUE(all_equal(device_bf16(t->type, bytes, t->elements()),
                          expected_bf16(t->type, t->data, t->elements())))
        << t->name << " (" << tensor_type_name(t->type) << ")";
  }
}

TEST_F(DequantizeBf16, RefusesPartialBlocks) {
  DeviceBuffer<unsigned char> src(64);
  DeviceBuffer<bf16> dst(64);
  EXPECT_THROW(dequantize_bf16(TensorType::kQ8_0, src.get(), dst.get(), 33, nullptr), RunError);
}

class FillDummyBf16 : public CudaTest {};

// Exact: the same bits drawn from the same f16 table, widened (exact) and rounded alike.
TEST_F(FillDummyBf16, MatchesTheHostGenerator) {
  const std::vector<uint16_t>& table = dummy_normal_f16_table();
  DeviceBuffer<uint16_t> d_table(table);
  for (bool ones : {false, true}) {
    for (uint64_t key : {uint64_t{0}, uint64_t{0x1234567890ABCDEF}, ~uint64_t{0}}) {
      for (int64_t n : {1, 3, 4, 4097, 1 << 20}) {
        Tensor t;
        t.dummy = true;
        t.dummy_ones = ones;
        t.dummy_key = key;
        std::vector<uint16_t> f16(static_cast<std::size_t>(n));
        fill_dummy_f16(t, f16.data(), 0, n);
        std::vector<bf16> want(f16.size());
        for (std::size_t i = 0; i < f16.size(); ++i)
          want[i] = __float2bfloat16_rn(__half2float(__ushort_as_half(f16[i])));
        DeviceBuffer<bf16> dst(static_cast<std::size_t>(n));
        dst.poison();
        fill_dummy_bf16(dst.get(), n, key, ones, d_table.get(), nullptr);
        EXPECT_TRUE(all_equal(dst.download(), want))
            << "ones " << ones << " key " << key << " n " << n;
      }
    }
  }
}

}  // namespace
}  // namespace flowrank::engine::cuda
