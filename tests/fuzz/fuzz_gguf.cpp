// libFuzzer target for the GGUF reader and the model checks built on it. Any outcome but a clean
// parse or an InputError (a crash, a sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "flowrank/common/error.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/model.hpp"

using namespace flowrank::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<const GgufFile> f;
  try {
    f = parse_gguf_buffer(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const flowrank::InputError&) {
    return 0;
  }
  // Every tensor's bytes lie inside the input: dequantize them all (inputs are small).
  std::vector<float> out;
  for (const auto& t : f->tensors()) {
    int64_t n = 1;
    for (int64_t d : t.dims) n *= d;
    if (n > (int64_t{1} << 22)) continue;  // a big tensor still needs as many input bytes
    out.resize(static_cast<std::size_t>(n));
    dequantize(t.type, t.data, out.data(), n);
  }
  for (const auto& [key, value] : f->metadata()) {
    try {
      (void)f->find_int(key);
    } catch (const flowrank::InputError&) {
    }
  }
  try {
    load_model(f);
  } catch (const flowrank::InputError&) {
  }
  return 0;
}
