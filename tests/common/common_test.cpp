#include <gtest/gtest.h>

#include <filesystem>

#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"
#include "flowrank/common/utf8.hpp"

namespace fs = std::filesystem;
using namespace flowrank;

TEST(Hash, Sha256KnownVectors) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Hash, Crc32KnownVector) {
  // The standard CRC-32 check value: CRC-32("123456789") = 0xCBF43926.
  EXPECT_EQ(crc32_hex("123456789"), "cbf43926");
  EXPECT_EQ(crc32_hex(""), "00000000");
}

TEST(Hash, FieldsAreLengthPrefixed) {
  Sha256 a, b;
  a.update_field("ab").update_field("c");
  b.update_field("a").update_field("bc");
  EXPECT_NE(a.finish_hex(), b.finish_hex());
}

TEST(Utf8, FindsInvalidBytes) {
  EXPECT_FALSE(find_invalid_utf8("plain ascii, caf\xc3\xa9, \xf0\x9f\x98\x80").has_value());
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("a\xc0\xaf"), 1u);      // overlong '/'
  EXPECT_EQ(find_invalid_utf8("a\xed\xa0\x80"), 1u);  // surrogate
  EXPECT_EQ(find_invalid_utf8("abc\xe2\x82"), 3u);    // truncated at the end
}

TEST(Utf8, CompletePrefixHoldsBackPartialSequence) {
  EXPECT_EQ(complete_utf8_prefix("ab\xe2\x82"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xe2\x82\xac"), 5u);
  EXPECT_EQ(complete_utf8_prefix("\xf0\x9f\x98"), 0u);
}

// One U+FFFD per maximal subpart of an ill-formed sequence (Unicode 3.9, Table 3-7): a cut-short
// sequence is one, a byte that no sequence may start with or continue is one each.
TEST(Utf8, ReplaceInvalidByMaximalSubparts) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(utf8_replace_invalid("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(utf8_replace_invalid("ab\xe2\x82"
                                 "cd\xff"),
            "ab" + r + "cd" + r);
  EXPECT_EQ(utf8_replace_invalid("\xe0\x80x"), r + r + "x");           // E0 needs A0..BF next
  EXPECT_EQ(utf8_replace_invalid("\xed\xa0\x80"), r + r + r);          // surrogate
  EXPECT_EQ(utf8_replace_invalid("\xf4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(utf8_replace_invalid("\xf0\x9f\x98"), r);                  // cut short at the end
  EXPECT_EQ(utf8_replace_invalid("\xc0\xaf"), r + r);                  // overlong
}

TEST(Utf8, PrefixBytesCountCodePoints) {
  const std::string s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";  // a é € 😀 z
  EXPECT_EQ(utf8_prefix_bytes(s, 0), 0u);
  EXPECT_EQ(utf8_prefix_bytes(s, 2), 3u);
  EXPECT_EQ(utf8_prefix_bytes(s, 4), 10u);
  EXPECT_EQ(utf8_prefix_bytes(s, 5), s.size());
  EXPECT_EQ(utf8_prefix_bytes(s, 99), s.size());
}

TEST(Files, AtomicWriteReplacesAndLeavesNoTemp) {
  fs::path dir = fs::temp_directory_path() / "flowrank_common_test";
  fs::remove_all(dir);
  write_file_atomic(dir / "sub" / "f.txt", "one");
  write_file_atomic(dir / "sub" / "f.txt", "two");
  EXPECT_EQ(read_file(dir / "sub" / "f.txt"), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "sub"), fs::directory_iterator{}), 1);
}

TEST(Files, FailedFillLeavesOldFile) {
  fs::path dir = fs::temp_directory_path() / "flowrank_common_test2";
  fs::remove_all(dir);
  write_file_atomic(dir / "f", "keep");
  EXPECT_THROW(write_file_atomic_with(dir / "f",
                                      [](const fs::path& tmp) {
                                        write_file_atomic(tmp, "partial");
                                        throw RunError("boom");
                                      }),
               RunError);
  EXPECT_EQ(read_file(dir / "f"), "keep");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
}

TEST(Files, MissingFileIsOneLineInputError) {
  try {
    read_file("/nonexistent/flowrank/x.toml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/flowrank/x.toml: cannot read"),
              std::string::npos);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}
