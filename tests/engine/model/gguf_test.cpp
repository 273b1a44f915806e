// GGUF reader: value types, alignment, and every kind of malformed file giving a one-line
// InputError that names the file and the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "flowrank/common/error.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/model.hpp"
#include "gguf_builder.hpp"

namespace flowrank::engine {
namespace {

using testing::GgufBuilder;
namespace fs = std::filesystem;

// Parses `bytes` and returns the InputError message ("" if none was thrown).
std::string parse_error(const std::string& bytes, const std::string& name = "bad.gguf") {
  try {
    parse_gguf_buffer(bytes, name);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void expect_one_line_error(const std::string& msg, const std::string& name,
                           const std::string& problem) {
  EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(problem), std::string::npos) << "missing \"" << problem << "\" in: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

std::string small_file() {
  std::vector<float> a(64, 1.5f), b(32 * 2, -2.0f);
  return GgufBuilder()
      .str("general.architecture", "llama")
      .u32("some.u32", 7)
      .tensor("a.weight", 0, {64}, testing::f32_bytes(a))
      .tensor("blk.0.attn_q.weight", 0, {32, 2}, testing::f32_bytes(b))
      .build();
}

TEST(Gguf, ReadsEveryValueType) {
  std::string nested;  // array of 2 arrays of u32: [[1, 2], [3]]
  GgufBuilder::put_u32(nested, 9);
  GgufBuilder::put_u32(nested, 9);
  GgufBuilder::put_u64(nested, 2);
  GgufBuilder::put_u32(nested, 4);
  GgufBuilder::put_u64(nested, 2);
  GgufBuilder::put_u32(nested, 1);
  GgufBuilder::put_u32(nested, 2);
  GgufBuilder::put_u32(nested, 4);
  GgufBuilder::put_u64(nested, 1);
  GgufBuilder::put_u32(nested, 3);
  std::string u8v, i16v, i64v, f64arr;
  u8v += '\x08';  // type u8
  GgufBuilder::put_u32(i16v, 3);
  i16v.append("\xfe\xff", 2);  // -2
  GgufBuilder::put_u32(i64v, 11);
  GgufBuilder::put_u64(i64v, static_cast<uint64_t>(-5));
  GgufBuilder::put_u32(f64arr, 9);
  GgufBuilder::put_u32(f64arr, 12);
  GgufBuilder::put_u64(f64arr, 2);
  const double dv[2] = {0.25, -1e300};
  f64arr.append(reinterpret_cast<const char*>(dv), 16);
  std::string u8raw;
  GgufBuilder::put_u32(u8raw, 0);
  u8raw += '\xff';
  const std::string bytes = GgufBuilder()
                                .raw("k.u8", u8raw)
                                .raw("k.i16", i16v)
                                .u32("k.u32", 4000000000u)
                                .i32("k.i32", -7)
                                .u64("k.u64", uint64_t{1} << 40)
                                .raw("k.i64", i64v)
                                .f32("k.f32", 0.5f)
                                .f64("k.f64", 1e-6)
                                .boolean("k.bool", true)
                                .str("k.str", "héllo")
                                .str_array("k.strs", {"a", "", "ccc"})
                                .bool_array("k.bools", {true, false, true})
                                .raw("k.f64s", f64arr)
                                .raw("k.nested", nested)
                                .build();
  const auto f = parse_gguf_buffer(bytes, "mem.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_int("k.u8"), 255);
  EXPECT_EQ(f->get_int("k.i16"), -2);
  EXPECT_EQ(f->get_int("k.u32"), 4000000000);
  EXPECT_EQ(f->get_int("k.i32"), -7);
  EXPECT_EQ(f->get_int("k.u64"), int64_t{1} << 40);
  EXPECT_EQ(f->get_int("k.i64"), -5);
  EXPECT_EQ(f->get_float("k.f32"), 0.5);
  EXPECT_EQ(f->get_float("k.f64"), 1e-6);
  EXPECT_EQ(f->get_float("k.u32"), 4e9);  // integers read as floats
  EXPECT_TRUE(f->get_bool("k.bool"));
  EXPECT_EQ(f->get_string("k.str"), "héllo");
  EXPECT_EQ(f->get_array("k.strs").strings, (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->get_array("k.bools").ints, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f->get_array("k.f64s").floats, (std::vector<double>{0.25, -1e300}));
  const GgufArray& n = f->get_array("k.nested");
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n.arrays[0].ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(n.arrays[1].ints, (std::vector<int64_t>{3}));
  EXPECT_FALSE(f->find_int("k.absent").has_value());
  EXPECT_FALSE(f->has("k.absent"));
  EXPECT_TRUE(f->tensors().empty());
}

TEST(Gguf, TypedGetterErrorsNameKey) {
  const auto f =
      parse_gguf_buffer(GgufBuilder().str("k.str", "x").u32("k.u32", 1).build(), "m.gguf");
  try {
    f->get_int("k.str");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "m.gguf: metadata k.str: expected integer, found string");
  }
  try {
    f->get_string("k.missing");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "m.gguf: metadata k.missing: missing");
  }
  EXPECT_THROW(f->get_array("k.u32"), InputError);
  EXPECT_THROW(f->find_bool("k.u32"), InputError);
}

TEST(Gguf, TensorInfosAndData) {
  const auto f = parse_gguf_buffer(small_file(), "s.gguf");
  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo* t = f->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(t->type, TensorType::kF32);
  EXPECT_EQ(t->nbytes, 256u);
  EXPECT_EQ(t->offset, 256u);  // after a.weight's 256 bytes
  EXPECT_EQ(static_cast<const float*>(t->data)[63], -2.0f);
  EXPECT_EQ(static_cast<const float*>(f->find_tensor("a.weight")->data)[0], 1.5f);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
}

TEST(Gguf, AcceptsVersion2AndCustomAlignment) {
  std::vector<float> a(8, 3.0f);
  const std::string v2 = GgufBuilder().tensor("t", 0, {8}, testing::f32_bytes(a)).build(2);
  EXPECT_EQ(parse_gguf_buffer(v2, "v2.gguf")->version(), 2u);
  const std::string al = GgufBuilder()
                             .u32("general.alignment", 64)
                             .tensor("t1", 0, {3}, testing::f32_bytes({1, 2, 3}))
                             .tensor("t2", 0, {8}, testing::f32_bytes(a))
                             .build(3, 64);
  const auto f = parse_gguf_buffer(al, "al.gguf");
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("t2")->offset, 64u);
  EXPECT_EQ(static_cast<const float*>(f->find_tensor("t2")->data)[7], 3.0f);
}

TEST(Gguf, MissingFile) {
  const std::string p = (fs::path(::testing::TempDir()) / "flowrank-no-such-model.gguf").string();
  try {
    GgufFile::open(p);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), p + ": no such file");
  }
}

TEST(Gguf, OpensFileFromDisk) {
  const fs::path p = fs::path(::testing::TempDir()) / "flowrank-model-small.gguf";
  testing::write_bytes(p, small_file());
  const auto f = GgufFile::open(p);
  EXPECT_EQ(f->path(), p);
  EXPECT_EQ(f->tensors().size(), 2u);
  // Truncated on disk too: the error names the path.
  testing::write_bytes(p, small_file().substr(0, 10));
  try {
    GgufFile::open(p);
    FAIL();
  } catch (const InputError& e) {
    expect_one_line_error(e.what(), p.string(), "truncated");
  }
  fs::remove(p);
}

TEST(Gguf, TruncatedAtEveryRegion) {
  const std::string full = small_file();
  ASSERT_NO_THROW(parse_gguf_buffer(full, "ok.gguf"));
  // Cuts inside: magic, version, counts, first key, a value, tensor infos, padding, data.
  for (std::size_t cut : {std::size_t{1}, std::size_t{3}, std::size_t{6}, std::size_t{10},
                          std::size_t{20}, std::size_t{30}, std::size_t{60}, std::size_t{100},
                          std::size_t{130}, full.size() - 300, full.size() - 1}) {
    SCOPED_TRACE(cut);
    const std::string msg = parse_error(full.substr(0, cut), "cut.gguf");
    ASSERT_FALSE(msg.empty());
    EXPECT_EQ(msg.rfind("cut.gguf: ", 0), 0u) << msg;
    EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                msg.find("run past the end") != std::string::npos)
        << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  expect_one_line_error(parse_error(""), "bad.gguf", "truncated: empty file");
}

TEST(Gguf, BadMagic) {
  std::string b = small_file();
  b[3] = 'X';
  expect_one_line_error(parse_error(b), "bad.gguf", "not a GGUF file (bad magic)");
}

TEST(Gguf, WrongVersion) {
  for (uint32_t v : {1u, 4u}) {
    std::string b = small_file();
    std::memcpy(b.data() + 4, &v, 4);
    expect_one_line_error(parse_error(b), "bad.gguf",
                          "unsupported GGUF version " + std::to_string(v) + ", expected 2 or 3");
  }
  std::string b = small_file();
  const uint32_t be3 = 0x03000000;
  std::memcpy(b.data() + 4, &be3, 4);
  expect_one_line_error(parse_error(b), "bad.gguf", "big-endian");
}

TEST(Gguf, HugeStringLength) {
  std::string b = "GGUF";
  GgufBuilder::put_u32(b, 3);
  GgufBuilder::put_u64(b, 0);
  GgufBuilder::put_u64(b, 1);
  GgufBuilder::put_u64(b, uint64_t{1} << 60);  // key length
  b += std::string(40, 'k');
  expect_one_line_error(parse_error(b), "bad.gguf",
                        "metadata key #0: string length 1152921504606846976 exceeds the 40 bytes");
  // The same inside a string value.
  std::string v;
  GgufBuilder::put_u32(v, 8);
  GgufBuilder::put_u64(v, std::numeric_limits<uint64_t>::max());
  expect_one_line_error(parse_error(GgufBuilder().raw("k", v).build()), "bad.gguf",
                        "metadata k: string length 18446744073709551615 exceeds");
}

TEST(Gguf, HugeCounts) {
  std::string b = "GGUF";
  GgufBuilder::put_u32(b, 3);
  GgufBuilder::put_u64(b, uint64_t{1} << 60);
  GgufBuilder::put_u64(b, 0);
  b += std::string(64, '\0');
  expect_one_line_error(parse_error(b), "bad.gguf",
                        "tensor count 1152921504606846976 needs more than the 64 bytes left");
  std::string c = "GGUF";
  GgufBuilder::put_u32(c, 3);
  GgufBuilder::put_u64(c, 0);
  GgufBuilder::put_u64(c, ~uint64_t{0});
  expect_one_line_error(parse_error(c), "bad.gguf", "metadata count 18446744073709551615");
  std::string arr;  // array of 2^62 u32
  GgufBuilder::put_u32(arr, 9);
  GgufBuilder::put_u32(arr, 4);
  GgufBuilder::put_u64(arr, uint64_t{1} << 62);
  expect_one_line_error(parse_error(GgufBuilder().raw("big", arr).build()), "bad.gguf",
                        "metadata big: array count 4611686018427387904 of u32 exceeds");
}

TEST(Gguf, ArraysNestedTooDeep) {
  std::string v;
  GgufBuilder::put_u32(v, 9);
  GgufBuilder::put_u32(v, 9);  // array of arrays
  GgufBuilder::put_u64(v, 1);
  GgufBuilder::put_u32(v, 9);  // of arrays: one level too deep
  GgufBuilder::put_u64(v, 1);
  GgufBuilder::put_u32(v, 4);
  GgufBuilder::put_u64(v, 0);
  expect_one_line_error(parse_error(GgufBuilder().raw("deep", v).build()), "bad.gguf",
                        "metadata deep: arrays nested deeper than one level");
}

TEST(Gguf, BadValueTypeAndDuplicates) {
  std::string v;
  GgufBuilder::put_u32(v, 13);
  expect_one_line_error(parse_error(GgufBuilder().raw("k", v).build()), "bad.gguf",
                        "metadata k: unknown value type 13");
  expect_one_line_error(parse_error(GgufBuilder().u32("k", 1).u32("k", 2).build()), "bad.gguf",
                        "metadata k: duplicate key");
  std::vector<float> a(8, 0.0f);
  const std::string dup = GgufBuilder()
                              .tensor("t", 0, {8}, testing::f32_bytes(a))
                              .tensor("t", 0, {8}, testing::f32_bytes(a))
                              .build();
  expect_one_line_error(parse_error(dup), "bad.gguf", "tensor t: duplicate tensor name");
}

TEST(Gguf, BadAlignment) {
  expect_one_line_error(parse_error(GgufBuilder().u32("general.alignment", 24).build()), "bad.gguf",
                        "metadata general.alignment: expected a power of two, found 24");
  expect_one_line_error(parse_error(GgufBuilder().str("general.alignment", "x").build()),
                        "bad.gguf", "expected a power of two, found string");
}

// Rewrites the first tensor info's fields in a builder image (name "t" of one dimension).
std::string one_tensor_file(uint32_t type, uint64_t dim, uint64_t offset, std::size_t data_bytes) {
  std::string b = "GGUF";
  GgufBuilder::put_u32(b, 3);
  GgufBuilder::put_u64(b, 1);
  GgufBuilder::put_u64(b, 0);
  GgufBuilder::put_str(b, "blk.0.attn_q.weight");
  GgufBuilder::put_u32(b, 1);
  GgufBuilder::put_u64(b, dim);
  GgufBuilder::put_u32(b, type);
  GgufBuilder::put_u64(b, offset);
  b.resize((b.size() + 31) / 32 * 32, '\0');
  b += std::string(data_bytes, '\0');
  return b;
}

TEST(Gguf, TensorDataPastEnd) {
  EXPECT_EQ(parse_error(one_tensor_file(0, 16, 0, 64)), "");
  expect_one_line_error(parse_error(one_tensor_file(0, 16, 0, 60)), "bad.gguf",
                        "tensor blk.0.attn_q.weight: 64 bytes of data at offset 0 run past the end "
                        "of the file (the data section holds 60 bytes)");
  expect_one_line_error(
      parse_error(one_tensor_file(0, 16, 32, 64)), "bad.gguf",
      "tensor blk.0.attn_q.weight: 64 bytes of data at offset 32 run past the end");
  expect_one_line_error(parse_error(one_tensor_file(0, 16, uint64_t{1} << 63, 64)), "bad.gguf",
                        "run past the end");
  expect_one_line_error(parse_error(one_tensor_file(0, 16, 8, 64)), "bad.gguf",
                        "tensor blk.0.attn_q.weight: data offset 8 is not aligned to 32");
  expect_one_line_error(
      parse_error(one_tensor_file(0, uint64_t{1} << 62, 0, 64)), "bad.gguf",
      "tensor blk.0.attn_q.weight: dimension 0 of 4611686018427387904 is out of range");
  expect_one_line_error(parse_error(one_tensor_file(0, 0, 0, 64)), "bad.gguf",
                        "dimension 0 of 0 is out of range");
}

TEST(Gguf, UnknownAndUnsupportedTensorTypes) {
  expect_one_line_error(parse_error(one_tensor_file(99, 32, 0, 64)), "bad.gguf",
                        "tensor blk.0.attn_q.weight: unknown tensor type id 99");
  expect_one_line_error(parse_error(one_tensor_file(13, 256, 0, 176)), "bad.gguf",
                        "tensor blk.0.attn_q.weight: type Q5_K (id 13) is not supported");
  expect_one_line_error(parse_error(one_tensor_file(8, 48, 0, 64)), "bad.gguf",
                        "tensor blk.0.attn_q.weight: row length 48 is not a multiple of Q8_0's "
                        "block of 32");
}

}  // namespace
}  // namespace flowrank::engine
