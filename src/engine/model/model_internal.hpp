#pragma once
// Shared between model.cpp and model_info.cpp.
#include <cstdint>
#include <string>
#include <vector>

#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/model.hpp"

namespace flowrank::engine {

// Reads and checks the architecture numbers (InputError naming the key on any problem).
ModelConfig config_from_gguf(const GgufFile& f);

struct DummyTensor {
  std::string name;
  std::vector<int64_t> dims;  // always F16
};
std::vector<DummyTensor> dummy_tensor_list(const ModelConfig& c);

}  // namespace flowrank::engine
