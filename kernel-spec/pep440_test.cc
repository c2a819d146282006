#include "kernel-spec/pep440.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace gsk::spec {
namespace {

std::string Normalized(std::string_view text) {
  auto v = ParseVersion(text);
  return v ? v->ToString() : "<invalid>";
}

TEST(Pep440Test, NormalizesLikePackaging) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1.0", "1.0"},
      {"1.0-alpha1", "1.0a1"},
      {"1.0.0.POST2", "1.0.0.post2"},
      {"v1.2", "1.2"},
      {"V1.2", "1.2"},
      {"1.0a", "1.0a0"},
      {"1.0.beta.2", "1.0b2"},
      {"1.0c3", "1.0rc3"},
      {"1.0pre4", "1.0rc4"},
      {"1.0preview", "1.0rc0"},
      {"1.0-1", "1.0.post1"},
      {"1.0rev", "1.0.post0"},
      {"1.0r2", "1.0.post2"},
      {"1.0_post_3", "1.0.post3"},
      {"1.0dev", "1.0.dev0"},
      {"1.0-dev-7", "1.0.dev7"},
      {"1.0a1.post2.dev3", "1.0a1.post2.dev3"},
      {"0!1.0", "1.0"},
      {"2!1.0", "2!1.0"},
      {"01.002.0003", "1.2.3"},
      {"1.0+Ubuntu-1", "1.0+ubuntu.1"},
      {"1.0+abc_007", "1.0+abc.7"},
      {"2.1.0+cu118", "2.1.0+cu118"},
      {"123456789012345678901234567890.1", "123456789012345678901234567890.1"},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(Normalized(in), out) << in;
}

TEST(Pep440Test, RejectsInvalidVersions) {
  for (std::string_view bad : {"", "v", "1.", ".1", "1..0", "1.0.x", "abc", "1.0+", "1.0+a..b",
                               "1!", "1.0 ", " 1.0", "1.0-", "1.*", "1.0a1a2", "1.0+a+b", "-1"}) {
    EXPECT_FALSE(ParseVersion(bad).has_value()) << bad;
  }
}

TEST(Pep440Test, OrdersLikePep440) {
  // Each version sorts strictly before the next.
  const std::vector<std::string> ordered = {
      "1.0.dev0",  "1.0a0.dev1", "1.0a0",          "1.0a1",     "1.0b1", "1.0rc1", "1.0", "1.0+abc",
      "1.0+abc.5", "1.0+5",      "1.0.post0.dev0", "1.0.post0", "1.0.1", "1.10",   "2.0", "1!0.1"};
  for (std::size_t i = 0; i + 1 < ordered.size(); ++i) {
    auto a = ParseVersion(ordered[i]);
    auto b = ParseVersion(ordered[i + 1]);
    ASSERT_TRUE(a && b) << ordered[i] << " " << ordered[i + 1];
    EXPECT_LT(CompareVersions(*a, *b), 0) << ordered[i] << " < " << ordered[i + 1];
    EXPECT_GT(CompareVersions(*b, *a), 0) << ordered[i + 1] << " > " << ordered[i];
  }
  EXPECT_EQ(CompareVersions(*ParseVersion("1.0"), *ParseVersion("1.0.0")), 0);
}

TEST(Pep440Test, PinsIgnoreTheCandidatesLocalLabelOnly) {
  EXPECT_TRUE(MatchesPin(*ParseVersion("2.1.0"), *ParseVersion("2.1.0+cu118")));
  EXPECT_TRUE(MatchesPin(*ParseVersion("2.1"), *ParseVersion("2.1.0")));
  EXPECT_FALSE(MatchesPin(*ParseVersion("2.1.0+cpu"), *ParseVersion("2.1.0+cu118")));
  EXPECT_FALSE(MatchesPin(*ParseVersion("2.1.0"), *ParseVersion("2.1.1")));
}

}  // namespace
}  // namespace gsk::spec
