// Dequantization of ggml block formats. Each formula follows ggml's dequantize_row_* reference
// (same float operations in the same order), so results match ggml and the gguf Python package
// bit for bit. Layouts, per block:
//   Q8_0  (32):  f16 d, int8 q[32]                     x = q * d
//   Q4_0  (32):  f16 d, u8 qs[16]                      x[j] = (lo(qs[j]) - 8) * d, x[j+16] = hi
//   Q4_1  (32):  f16 d, f16 m, u8 qs[16]               x = q * d + m
//   Q4_K (256):  f16 d, f16 dmin, u8 scales[12], u8 qs[128]: 8 sub-blocks of 32 with 6-bit
//                scale/min pairs; x = (d * sc) * q - (dmin * m)
//   Q6_K (256):  u8 ql[128], u8 qh[64], int8 scales[16], f16 d: 6-bit q = low 4 | high 2 << 4,
//                x = (d * scale) * (q - 32)
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

#include "flowrank/engine/model.hpp"
#include "flowrank/engine/quant_blocks.hpp"
#include "quant_types.hpp"

namespace flowrank::engine {

namespace {

constexpr QuantTraits kTraits[] = {
    {TensorType::kF32, "F32", 1, 4},       {TensorType::kF16, "F16", 1, 2},
    {TensorType::kQ4_0, "Q4_0", 32, 18},   {TensorType::kQ4_1, "Q4_1", 32, 20},
    {TensorType::kQ8_0, "Q8_0", 32, 34},   {TensorType::kQ4_K, "Q4_K", 256, 144},
    {TensorType::kQ6_K, "Q6_K", 256, 210}, {TensorType::kBF16, "BF16", 1, 2},
};

const QuantTraits& traits_of(TensorType t) {
  const QuantTraits* q = find_quant_traits(static_cast<uint32_t>(t));
  if (q == nullptr) {
    throw std::invalid_argument("unsupported tensor type " +
                                std::to_string(static_cast<uint32_t>(t)));
  }
  return *q;
}

uint16_t load_u16(const unsigned char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

float load_half(const unsigned char* p) {
  return half_to_float(load_u16(p));
}

void dequant_q8_0(const unsigned char* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 34, y += 32) {
    const float d = load_half(b);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
  }
}

void dequant_q4_0(const unsigned char* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 18, y += 32) {
    const float d = load_half(b);
    const unsigned char* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const unsigned char* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 20, y += 32) {
    const float d = load_half(b);
    const float m = load_half(b + 2);
    const unsigned char* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q4_k(const unsigned char* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 144) {
    const float d = load_half(b);
    const float dmin = load_half(b + 2);
    const unsigned char* scales = b + 4;
    const unsigned char* q = b + 16;
    // Each 32-byte chunk of qs feeds two sub-blocks: low nibbles then high nibbles.
    for (int chunk = 0; chunk < 4; ++chunk, q += 32) {
      int sc = 0, m = 0;
      q4k_scale_min(2 * chunk, scales, sc, m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      q4k_scale_min(2 * chunk + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequant_q6_k(const unsigned char* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 210) {
    const unsigned char* ql = b;
    const unsigned char* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = load_half(b + 208);
    // Two halves of 128 values; in each, ql[0..63] and qh[0..31] serve four runs of 32.
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) return std::bit_cast<float>(sign);
    // Subnormal: mant * 2^-24 is exact in f32.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0));
  }
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);  // rounds to inf
  if (ax < 0x38800000u) {               // below the smallest normal half: subnormal or zero
    if (ax < 0x33000000u) return sign;  // below half the smallest subnormal
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7FFFFF) | 0x800000;
    const uint32_t shift = 126 - e;  // 14..24: value = m * 2^(e-150), half unit 2^-24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = ax - 0x38000000u;  // rebias exponent 127 -> 15 (in place)
  const uint32_t rem = r & 0x1FFF;
  uint32_t q = r >> 13;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) ++q;  // carries into the exponent correctly
  return static_cast<uint16_t>(sign | q);
}

const QuantTraits* find_quant_traits(uint32_t type_id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == type_id) return &t;
  }
  return nullptr;
}

const char* ggml_type_name(uint32_t id) {
  static constexpr const char* kNames[] = {
      "F32",   "F16",        "Q4_0",       "Q4_1",       "Q4_2",     "Q4_3",     "Q5_0",
      "Q5_1",  "Q8_0",       "Q8_1",       "Q2_K",       "Q3_K",     "Q4_K",     "Q5_K",
      "Q6_K",  "Q8_K",       "IQ2_XXS",    "IQ2_XS",     "IQ3_XXS",  "IQ1_S",    "IQ4_NL",
      "IQ3_S", "IQ2_S",      "IQ4_XS",     "I8",         "I16",      "I32",      "I64",
      "F64",   "IQ1_M",      "BF16",       "Q4_0_4_4",   "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",
      "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
  if (id >= sizeof(kNames) / sizeof(kNames[0])) return nullptr;
  return kNames[id];
}

const char* tensor_type_name(TensorType t) {
  const QuantTraits* q = find_quant_traits(static_cast<uint32_t>(t));
  return q ? q->name : "?";
}

int64_t block_elements(TensorType t) {
  return traits_of(t).block_elements;
}

std::size_t tensor_bytes(TensorType t, int64_t n) {
  const QuantTraits& q = traits_of(t);
  if (n < 0 || n % q.block_elements != 0) {
    throw std::invalid_argument(std::string("tensor_bytes: ") + std::to_string(n) +
                                " elements is not a whole number of " + q.name + " blocks");
  }
  return static_cast<std::size_t>(n / q.block_elements) * q.block_bytes;
}

void dequantize(TensorType t, const void* data, float* out, int64_t n) {
  const QuantTraits& q = traits_of(t);
  if (n < 0 || n % q.block_elements != 0) {
    throw std::invalid_argument(std::string("dequantize: ") + std::to_string(n) +
                                " elements is not a whole number of " + q.name + " blocks");
  }
  const auto* b = static_cast<const unsigned char*>(data);
  const int64_t nb = n / q.block_elements;
  switch (t) {
    case TensorType::kF32:
      std::memcpy(out, data, static_cast<std::size_t>(n) * 4);
      return;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) out[i] = load_half(b + 2 * i);
      return;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        out[i] = std::bit_cast<float>(static_cast<uint32_t>(load_u16(b + 2 * i)) << 16);
      }
      return;
    case TensorType::kQ8_0:
      dequant_q8_0(b, out, nb);
      return;
    case TensorType::kQ4_0:
      dequant_q4_0(b, out, nb);
      return;
    case TensorType::kQ4_1:
      dequant_q4_1(b, out, nb);
      return;
    case TensorType::kQ4_K:
      dequant_q4_k(b, out, nb);
      return;
    case TensorType::kQ6_K:
      dequant_q6_k(b, out, nb);
      return;
  }
}

int64_t Tensor::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return dims.empty() ? 0 : n;
}

}  // namespace flowrank::engine
