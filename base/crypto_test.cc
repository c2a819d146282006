#include "base/crypto.h"

#include <gtest/gtest.h>

namespace gsk {
namespace {

TEST(CryptoTest, Sha256OfKnownInputs) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CryptoTest, HexRoundTripsAndRejectsWhatItDoesNotWrite) {
  Sha256Digest d = Sha256("giskard");
  auto back = DigestFromHex(HexEncode(d));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(DigestsEqual(*back, d));
  EXPECT_FALSE(DigestFromHex("abc").has_value());
  EXPECT_FALSE(DigestFromHex(std::string(64, 'A')).has_value());  // upper case is not ours
  EXPECT_FALSE(DigestFromHex(std::string(64, 'g')).has_value());
}

TEST(CryptoTest, SecretsCompareExactlyAndNeverMatchEmpty) {
  EXPECT_TRUE(SecretsEqual("s3cret-token", "s3cret-token"));
  EXPECT_FALSE(SecretsEqual("s3cret-token", "s3cret-tokeN"));
  EXPECT_FALSE(SecretsEqual("s3cret", "s3cret-token"));
  EXPECT_FALSE(SecretsEqual("", ""));
}

TEST(CryptoTest, RandomHexHasTheLengthAskedAndDiffers) {
  auto a = RandomHex(32);
  auto b = RandomHex(32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(CryptoTest, StreamedSha256EqualsTheWholeDigest) {
  std::string data(100'000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  Sha256Stream stream;
  for (size_t at = 0; at < data.size(); at += 7'777) {
    stream.Update(std::string_view(data).substr(at, 7'777));
  }
  EXPECT_EQ(HexEncode(stream.Finish()), Sha256Hex(data));
  Sha256Stream empty;
  EXPECT_EQ(HexEncode(empty.Finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace gsk
