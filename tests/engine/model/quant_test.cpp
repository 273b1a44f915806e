// Dequantization against blocks worked out by hand from the format definitions, and against the
// gguf Python package's reference dequantizer (tests/data/quant,
// tools/golden/make_quant_golden.py).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "flowrank/engine/model.hpp"

namespace flowrank::engine {
namespace {

using Bytes = std::vector<unsigned char>;

void put_half(Bytes& b, std::size_t at, uint16_t h) {
  b[at] = static_cast<unsigned char>(h & 0xFF);
  b[at + 1] = static_cast<unsigned char>(h >> 8);
}

std::vector<float> run(TensorType t, const Bytes& b, int64_t n) {
  std::vector<float> out(static_cast<std::size_t>(n), -12345.0f);
  dequantize(t, b.data(), out.data(), n);
  return out;
}

TEST(Quant, TypeTable) {
  EXPECT_STREQ(tensor_type_name(TensorType::kQ4_K), "Q4_K");
  EXPECT_STREQ(tensor_type_name(TensorType::kBF16), "BF16");
  EXPECT_EQ(block_elements(TensorType::kF32), 1);
  EXPECT_EQ(block_elements(TensorType::kQ8_0), 32);
  EXPECT_EQ(block_elements(TensorType::kQ6_K), 256);
  EXPECT_EQ(tensor_bytes(TensorType::kF16, 10), 20u);
  EXPECT_EQ(tensor_bytes(TensorType::kQ4_0, 64), 36u);
  EXPECT_EQ(tensor_bytes(TensorType::kQ4_1, 32), 20u);
  EXPECT_EQ(tensor_bytes(TensorType::kQ8_0, 96), 102u);
  EXPECT_EQ(tensor_bytes(TensorType::kQ4_K, 512), 288u);
  EXPECT_EQ(tensor_bytes(TensorType::kQ6_K, 256), 210u);
  EXPECT_THROW(tensor_bytes(TensorType::kQ4_0, 33), std::invalid_argument);
  std::vector<float> out(32);
  Bytes b(34);
  EXPECT_THROW(dequantize(TensorType::kQ8_0, b.data(), out.data(), 31), std::invalid_argument);
}

TEST(Quant, F16HandValues) {
  const std::vector<uint16_t> h = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0x0400, 0x3555};
  Bytes b(h.size() * 2);
  for (std::size_t i = 0; i < h.size(); ++i) put_half(b, 2 * i, h[i]);
  const auto y = run(TensorType::kF16, b, static_cast<int64_t>(h.size()));
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 65504.0f);
  EXPECT_EQ(y[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(std::bit_cast<uint32_t>(y[4]), 0x80000000u);  // negative zero
  EXPECT_TRUE(std::isinf(y[5]) && y[5] > 0);
  EXPECT_EQ(y[6], std::ldexp(1.0f, -14));
  EXPECT_EQ(y[7], 0.333251953125f);
}

TEST(Quant, BF16AndF32HandValues) {
  Bytes b(6);
  put_half(b, 0, 0x3F80);
  put_half(b, 2, 0xC040);
  put_half(b, 4, 0x4049);
  const auto y = run(TensorType::kBF16, b, 3);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -3.0f);
  EXPECT_EQ(y[2], 3.140625f);
  const float f[2] = {1.5f, -7.25f};
  Bytes fb(8);
  std::memcpy(fb.data(), f, 8);
  const auto z = run(TensorType::kF32, fb, 2);
  EXPECT_EQ(z[0], 1.5f);
  EXPECT_EQ(z[1], -7.25f);
}

TEST(Quant, Q8_0HandBlock) {
  Bytes b(34, 0);
  put_half(b, 0, 0x3800);  // d = 0.5
  const int8_t q[6] = {-128, -1, 0, 1, 2, 127};
  for (int i = 0; i < 6; ++i) b[2 + i] = static_cast<unsigned char>(q[i]);
  b[2 + 31] = static_cast<unsigned char>(int8_t{-7});
  const auto y = run(TensorType::kQ8_0, b, 32);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[1], -0.5f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 0.5f);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], 63.5f);
  EXPECT_EQ(y[6], 0.0f);
  EXPECT_EQ(y[31], -3.5f);
}

TEST(Quant, Q4_0HandBlock) {
  Bytes b(18, 0x88);       // nibble 8 = zero
  put_half(b, 0, 0x4000);  // d = 2
  b[2 + 0] = 0x0F;         // x[0] = (15-8)*2, x[16] = (0-8)*2
  b[2 + 1] = 0x83;         // x[1] = (3-8)*2,  x[17] = 0
  b[2 + 15] = 0xA1;        // x[15] = (1-8)*2, x[31] = (10-8)*2
  const auto y = run(TensorType::kQ4_0, b, 32);
  EXPECT_EQ(y[0], 14.0f);
  EXPECT_EQ(y[16], -16.0f);
  EXPECT_EQ(y[1], -10.0f);
  EXPECT_EQ(y[17], 0.0f);
  EXPECT_EQ(y[15], -14.0f);
  EXPECT_EQ(y[31], 4.0f);
  EXPECT_EQ(y[5], 0.0f);
  EXPECT_EQ(y[20], 0.0f);
}

TEST(Quant, Q4_1HandBlock) {
  Bytes b(20, 0x00);
  put_half(b, 0, 0x3400);  // d = 0.25
  put_half(b, 2, 0xBC00);  // m = -1
  b[4 + 0] = 0xF0;         // x[0] = 0*0.25-1, x[16] = 15*0.25-1
  b[4 + 5] = 0x21;         // x[5] = 1*0.25-1, x[21] = 2*0.25-1
  const auto y = run(TensorType::kQ4_1, b, 32);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[16], 2.75f);
  EXPECT_EQ(y[5], -0.75f);
  EXPECT_EQ(y[21], -0.5f);
  EXPECT_EQ(y[1], -1.0f);
  EXPECT_EQ(y[31], -1.0f);
}

// Q4_K: 8 sub-blocks of 32 with 6-bit (scale, min); sub-block s reads the low (s even) or high
// (s odd) nibbles of qs[32*(s/2) ..]; x = d*scale*q - dmin*min.
TEST(Quant, Q4_KHandBlock) {
  const int sc[8] = {1, 2, 3, 4, 5, 6, 7, 63};
  const int mn[8] = {0, 1, 2, 3, 10, 20, 33, 63};
  Bytes b(144, 0);
  put_half(b, 0, 0x3C00);  // d = 1
  put_half(b, 2, 0x3800);  // dmin = 0.5
  unsigned char* s = b.data() + 4;
  for (int j = 0; j < 4; ++j) {
    // bytes 0-3: scale j (6 bits) + top 2 bits of scale j+4; bytes 4-7: the same for mins;
    // bytes 8-11: low 4 bits of scale j+4 | low 4 bits of min j+4 << 4.
    s[j] = static_cast<unsigned char>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<unsigned char>(mn[j] | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<unsigned char>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  for (int k = 0; k < 128; ++k) b[16 + k] = static_cast<unsigned char>((k * 7) & 0xFF);
  const auto y = run(TensorType::kQ4_K, b, 256);
  // Worked by hand: element 0 -> byte 0 = 0x00, low nibble 0, sub-block 0: 1*1*0 - 0.5*0.
  EXPECT_EQ(y[0], 0.0f);
  // element 33 -> sub-block 1 (high nibbles of bytes 0..31), byte 1 = 7 -> q 0: 0 - 0.5*1.
  EXPECT_EQ(y[33], -0.5f);
  // element 130 -> sub-block 4, low nibble of byte 66 = 462&255 = 0xCE -> 14: 5*14 - 0.5*10.
  EXPECT_EQ(y[130], 65.0f);
  // element 225 -> sub-block 7, high nibble of byte 97 = 679&255 = 0xA7 -> 10: 63*10 - 0.5*63.
  EXPECT_EQ(y[225], 598.5f);
  // element 40 -> sub-block 1, high nibble of byte 8 = 56 = 0x38 -> 3: 2*3 - 0.5*1.
  EXPECT_EQ(y[40], 5.5f);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, byte = 32 * (sub / 2) + e % 32;
    const int v = (byte * 7) & 0xFF;
    const int q = sub % 2 == 0 ? (v & 0xF) : (v >> 4);
    EXPECT_EQ(y[e], 1.0f * sc[sub] * q - 0.5f * mn[sub]) << "element " << e;
  }
}

// Q6_K: ql[128], qh[64], int8 scales[16], f16 d. Element e: half h = e/128, run r = (e%128)/32,
// lane l = e%32; low 4 bits from ql[64h + 32(r%2) + l] (low nibble for r < 2, high otherwise),
// high 2 bits from qh[32h + l] >> 2r; scale index 8h + 2r + l/16; x = d*scale*(q - 32).
TEST(Quant, Q6_KHandBlock) {
  Bytes b(210, 0);
  for (int k = 0; k < 128; ++k) b[k] = static_cast<unsigned char>((k * 13) & 0xFF);
  for (int k = 0; k < 64; ++k) b[128 + k] = static_cast<unsigned char>((k * 29) & 0xFF);
  for (int i = 0; i < 16; ++i) b[192 + i] = static_cast<unsigned char>(static_cast<int8_t>(i - 8));
  put_half(b, 208, 0x3800);  // d = 0.5
  const auto y = run(TensorType::kQ6_K, b, 256);
  // e=0: ql[0]=0 -> 0, qh[0]=0 -> 0, q=-32, scale[0]=-8: 0.5*-8*-32.
  EXPECT_EQ(y[0], 128.0f);
  // e=1: ql[1]=13 -> 13, qh[1]=29 -> bits 01, q=29-32=-3, scale -8.
  EXPECT_EQ(y[1], 12.0f);
  // e=37: run 1, ql[37]=0xE1 -> 1, qh[5]=145 >> 2 & 3 = 0, q=-31, scale[2]=-6.
  EXPECT_EQ(y[37], 93.0f);
  // e=100: run 3, ql[32+4]=212=0xD4 high nibble 13, qh[4]=116 >> 6 = 1, q=29-32, scale[6]=-2.
  EXPECT_EQ(y[100], 3.0f);
  // e=130: half 1, ql[66]=90 -> 10, qh[34]=218 & 3 = 2, q=42-32, scale[8]=0.
  EXPECT_EQ(y[130], 0.0f);
  // e=255: half 1, run 3, lane 31: ql[64+32+31]=115=0x73 high 7, qh[63]=35 >> 6 = 0, q=-25,
  // scale[8+6+1]=7.
  EXPECT_EQ(y[255], -87.5f);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class QuantGolden : public ::testing::TestWithParam<std::pair<const char*, TensorType>> {};

TEST_P(QuantGolden, MatchesGgufPythonBitForBit) {
  const auto [name, type] = GetParam();
  const std::string dir = std::string(FLOWRANK_SOURCE_DIR) + "/tests/data/quant/";
  const std::string blocks = read_all(dir + name + ".blocks");
  const std::string want = read_all(dir + name + ".f32");
  ASSERT_FALSE(blocks.empty()) << dir << name;
  const int64_t n = static_cast<int64_t>(want.size() / 4);
  ASSERT_EQ(tensor_bytes(type, n), blocks.size());
  std::vector<float> got(static_cast<std::size_t>(n));
  dequantize(type, blocks.data(), got.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t w;
    std::memcpy(&w, want.data() + 4 * i, 4);
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), w)
        << name << " element " << i << ": got " << got[i] << ", want " << std::bit_cast<float>(w);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, QuantGolden,
    ::testing::Values(std::pair{"F16", TensorType::kF16}, std::pair{"BF16", TensorType::kBF16},
                      std::pair{"Q8_0", TensorType::kQ8_0}, std::pair{"Q4_0", TensorType::kQ4_0},
                      std::pair{"Q4_1", TensorType::kQ4_1}, std::pair{"Q4_K", TensorType::kQ4_K},
                      std::pair{"Q6_K", TensorType::kQ6_K}),
    [](const auto& p) { return std::string(p.param.first); });

}  // namespace
}  // namespace flowrank::engine
