// Inputs the fuzzer (tests/fuzz/fuzz_gguf.cpp) found or that were written to probe the reader's
// edges: each must end in an InputError naming the input, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "flowrank/common/error.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/model.hpp"

namespace flowrank::engine {
namespace {

namespace fs = std::filesystem;

TEST(GgufCrashers, EachIsAnInputError) {
  const fs::path dir = fs::path(FLOWRANK_SOURCE_DIR) / "tests/data/gguf-crashers";
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().filename() == "README.md") continue;
    ++count;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const std::string name = entry.path().filename().string();
    try {
      load_model(parse_gguf_buffer(bytes, name));
      ADD_FAILURE() << name << ": loaded without error";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_GT(count, 0) << "no inputs in " << dir;
}

}  // namespace
}  // namespace flowrank::engine
