#pragma once
// Block geometry of the tensor types we read, plus the names of ggml types we do not support (so
// that an error can say "Q5_K is not supported" rather than "unknown type 13").
#include <cstdint>

#include "flowrank/engine/model.hpp"

namespace flowrank::engine {

struct QuantTraits {
  TensorType type;
  const char* name;
  uint32_t block_elements;
  uint32_t block_bytes;
};

// nullptr when `type_id` is not one of our supported types.
const QuantTraits* find_quant_traits(uint32_t type_id);
// IEEE binary16 conversions (exact widening; narrowing rounds to nearest even).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// Name of any ggml type id (supported or not); nullptr for ids ggml never defined.
const char* ggml_type_name(uint32_t type_id);

}  // namespace flowrank::engine
