#pragma once
// Pieces of the GGUF block formats that the CPU's dequantize (engine/model) and the GPU's
// dequantize_bf16 (engine/cuda) both decode, in one copy.
#include <cstdint>

#include "flowrank/common/host_device.hpp"

namespace flowrank::engine {

// Q4_K's 12 scale bytes hold 8 (scale, min) pairs of 6 bits: pairs 0-3 in the low 6 bits of
// bytes 0-3 / 4-7; pairs 4-7 take their low 4 bits from bytes 8-11 and their top 2 bits from the
// spare top bits of bytes 0-3 (scales) and 4-7 (mins).
FLOWRANK_HOST_DEVICE inline void q4k_scale_min(int j, const unsigned char* s, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

}  // namespace flowrank::engine
