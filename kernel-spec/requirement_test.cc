#include "kernel-spec/requirement.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace gsk::spec {
namespace {

const ParseOptions kStrict;

std::string CanonicalOf(std::string_view line, const ParseOptions& options = kStrict) {
  auto r = ParseRequirement(line, options);
  return r.ok() ? r->Canonical() : "<error> " + r.status().message();
}

TEST(CanonicalizeNameTest, FollowsPep503) {
  EXPECT_EQ(CanonicalizeName("Scikit_Learn"), "scikit-learn");
  EXPECT_EQ(CanonicalizeName("zope.interface"), "zope-interface");
  EXPECT_EQ(CanonicalizeName("a-_.-b"), "a-b");
  EXPECT_EQ(CanonicalizeName("NumPy"), "numpy");
}

TEST(RequirementTest, NormalizesValidLines) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"numpy", "numpy"},
      {"  NumPy  ", "numpy"},
      {"numpy>=1.0,<2", "numpy<2,>=1.0"},
      {"numpy >= 1.0 , < 2", "numpy<2,>=1.0"},
      {"numpy (>=1.0, <2)", "numpy<2,>=1.0"},
      {"numpy>=1.0,>=1.0", "numpy>=1.0"},
      {"giskard[llm]>=2.14", "giskard[llm]>=2.14"},
      {"Giskard[LLM, Dev,llm] >=2.14", "giskard[dev,llm]>=2.14"},
      {"pkg[]", "pkg"},
      {"scikit_learn==1.3.2", "scikit-learn==1.3.2"},
      {"pkg==1.0-alpha1", "pkg==1.0a1"},
      {"pkg==1.0.0.POST2", "pkg==1.0.0.post2"},
      {"pkg==v1.0", "pkg==1.0"},
      {"pkg==1.4.*", "pkg==1.4.*"},
      {"pkg!=01.4.*", "pkg!=1.4.*"},
      {"pkg~=1.4.5", "pkg~=1.4.5"},
      {"pkg===1.0-weird", "pkg===1.0-weird"},
      {"torch==2.1.0+CU118", "torch==2.1.0+cu118"},
      {"pkg==1!2.0", "pkg==1!2.0"},
      {"numpy  # the array library", "numpy"},
      {"numpy; python_version<'3.9'", "numpy ; python_version < \"3.9\""},
      {"numpy ;python_version  <  \"3.9\"  and os_name=='nt'",
       "numpy ; python_version < \"3.9\" and os_name == \"nt\""},
      {"pkg; (python_version >= '3.8' or os_name == 'nt') and sys_platform != 'win32'",
       "pkg ; (python_version >= \"3.8\" or os_name == \"nt\") and sys_platform != \"win32\""},
      {"pkg; ((python_version >= '3.8'))", "pkg ; python_version >= \"3.8\""},
      {"pkg; (python_version >= '3.8' and os_name == 'nt')",
       "pkg ; python_version >= \"3.8\" and os_name == \"nt\""},
      {"pkg; 'linux' in sys_platform", "pkg ; \"linux\" in sys_platform"},
      {"pkg; platform_machine not  in 'arm64 aarch64'",
       "pkg ; platform_machine not in \"arm64 aarch64\""},
      {"pkg; os.name == 'posix'", "pkg ; os_name == \"posix\""},
      {"pkg; python_version == '3.*'", "pkg ; python_version == \"3.*\""},
      {"pkg; '3.8' <= python_full_version", "pkg ; \"3.8\" <= python_full_version"},
      {"pkg; platform_release >= 'anything goes'", "pkg ; platform_release >= \"anything goes\""},
      {"pkg; platform_version == 'say \"hi\"'", "pkg ; platform_version == 'say \"hi\"'"},
      {"pkg>=1.0; extra == 'test'", "pkg>=1.0 ; extra == \"test\""},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(CanonicalOf(in), out) << in;
}

TEST(RequirementTest, KeepsTheFields) {
  auto r = ParseRequirement("Giskard[LLM]>=2.14,<3 ; python_version >= '3.9'  # comment", kStrict);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "giskard");
  EXPECT_EQ(r->extras, std::vector<std::string>{"llm"});
  EXPECT_EQ(r->specifier, "<3,>=2.14");
  EXPECT_EQ(r->marker, "python_version >= \"3.9\"");
  EXPECT_EQ(r->original, "Giskard[LLM]>=2.14,<3 ; python_version >= '3.9'");
  EXPECT_EQ(r->PinnedVersion(), "");
}

TEST(RequirementTest, PinnedVersionOnlyForASingleExactPin) {
  EXPECT_EQ(ParseRequirement("numpy==1.26.4", kStrict)->PinnedVersion(), "1.26.4");
  EXPECT_EQ(ParseRequirement("numpy==1.26.4 ; os_name=='nt'", kStrict)->PinnedVersion(), "1.26.4");
  EXPECT_EQ(ParseRequirement("numpy==1.26.*", kStrict)->PinnedVersion(), "");
  EXPECT_EQ(ParseRequirement("numpy===1.26.4", kStrict)->PinnedVersion(), "");
  EXPECT_EQ(ParseRequirement("numpy==1.26.4,!=1.0", kStrict)->PinnedVersion(), "");
  EXPECT_EQ(ParseRequirement("numpy>=1.26.4", kStrict)->PinnedVersion(), "");
}

TEST(RequirementTest, CanonicalFormParsesToItself) {
  for (std::string_view line :
       {"Giskard[LLM,dev]>=2.14,<3 ; python_version >= '3.9' or (os_name=='nt' and extra=='x')",
        "pkg!=1.4.*,~=1.4.5", "torch==2.1.0+CU118 ; platform_machine == 'x86_64'"}) {
    std::string once = CanonicalOf(line);
    EXPECT_EQ(CanonicalOf(once), once) << line;
  }
}

struct BadLine {
  std::string line;
  std::string fragment;
};

void ExpectRejected(const std::vector<BadLine>& cases) {
  for (const BadLine& c : cases) {
    auto r = ParseRequirement(c.line, kStrict);
    ASSERT_FALSE(r.ok()) << c.line << " -> " << r->Canonical();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.fragment), std::string::npos)
        << c.line << ": " << r.status().message();
  }
}

TEST(RequirementTest, RejectsOptionsUrlsAndPaths) {
  ExpectRejected({
      {"--index-url http://x", "is a pip option; options are not allowed"},
      {"-r other.txt", "is a pip option"},
      {"-e .", "is a pip option"},
      {"--extra-index-url http://x", "is a pip option"},
      {"-f http://x", "is a pip option"},
      {"--find-links=http://x", "is a pip option"},
      {"-c constraints.txt", "is a pip option"},
      {"--trusted-host evil", "is a pip option"},
      {"pkg @ https://evil/x.whl", "is a direct URL"},
      {"https://evil/x-1.0-py3-none-any.whl", "is a direct URL"},
      {"git+https://x/y", "is a direct URL"},
      {"pkg @ git+ssh://git@github.com/x/y.git", "is a direct URL"},
      {"/tmp/x.whl", "is a local path"},
      {"./pkg", "is a local path"},
      {"../pkg", "is a local path"},
      {"~/pkg", "is a local path"},
      {"file:///tmp/x.whl", "is a local path"},
      {"pkg @ file:///tmp/x.whl", "is a local path"},
      {"C:\\wheels\\x.whl", "is a local path"},
      {"dist/x-1.0.tar.gz", "is a local path"},
      {"x-1.0-py3-none-any.whl", "is a local path"},
      {".", "is a local path"},
  });
}

TEST(RequirementTest, RejectsMalformedLines) {
  ExpectRejected({
      {"numpy==", "\"==\" needs a version after it"},
      {"numpy=1.0", "use \"==\" for an exact version (numpy==1.0)"},
      {"numpy>=1.0;", "nothing follows \";\""},
      {"numpy; python_version >", "expected a marker variable"},
      {"numpy; python_version", "expected a comparison"},
      {"numpy; python_version = '3.9'", "\"=\" is not a comparison"},
      {"numpy; python_version >= 3.9", "must be quoted"},
      {"numpy; python_version >= '3.x'", "does not compare with a valid version"},
      {"numpy; python_version ~= '3'", "does not compare with a valid version"},
      {"numpy; python_version >= '3.*'", "does not compare with a valid version"},
      {"numpy; '3.x' < python_version", "does not compare with a valid version"},
      {"numpy; pyversion >= '3.9'", "is not a marker variable"},
      {"numpy; python_version >= '3.9' andd os_name == 'nt'", "unexpected"},
      {"numpy; (python_version >= '3.9'", "is not closed"},
      {"numpy; python_version >= '3.9", "quoted string is not closed"},
      {"numpy; 'a' == 'b'", "one marker variable and one quoted string"},
      {"~=1", "the package name is missing"},
      {"==1.0", "the package name is missing"},
      {"numpy~=1", "~= needs at least two version parts"},
      {"numpy==1.*.2", "may only end a version"},
      {"numpy>=1.0.*", "wildcard only works with == or !="},
      {"numpy~=1.0.*", "wildcard only works with == or !="},
      {"numpy==1.0a1.*", "wildcard must follow release numbers"},
      {"numpy>=1.0+local", "local version label"},
      {"numpy>=1.0.x", "is not a valid version"},
      {"numpy>=1.0 <2", "separated by \",\""},
      {"numpy>=1.0,", "is empty between commas"},
      {"numpy>=1.0,,<2", "is empty between commas"},
      {"numpy (>=1.0", "is not closed"},
      {"foo[bar", "extras list is not closed"},
      {"foo[bar baz]", "in the extras"},
      {"foo[-bar]", "extras are names"},
      {"foo bar", "put one requirement per line"},
      {"foo-", "is not a valid package name"},
      {"_foo", "is not a valid package name"},
      {"numpy !1.0", "must be followed by \"=\""},
      {"café", "unexpected"},
      {"ñumpy", "does not start with a package name"},
      {std::string("num\0py", 6), "contains a control character"},
      {"numpy\x1b[31m", "contains a control character"},
      {"numpy==1.0 \\", "line continuations"},
      {std::string(5000, 'a'), "at most 4096"},
      {"", "the requirement is empty"},
      {"   # only a comment", "the requirement is empty"},
      {"pkg @", "nothing follows \"@\""},
      {"numpy==1.0 --hash=sha256:abc", "unexpected"},
  });
}

TEST(RequirementTest, ErrorMessagesQuoteTheLineSafely) {
  auto r = ParseRequirement("numpy=1.0", kStrict);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "\"numpy=1.0\": \"=\" is not a version operator; use \"==\" for an exact version "
            "(numpy==1.0)");
  auto nul = ParseRequirement(std::string("a\0b", 3), kStrict);
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(nul.status().message().find("\\x00"), std::string::npos) << nul.status().message();
}

TEST(RequirementTest, OptionsAllowWhatTheyName) {
  ParseOptions open;
  open.allow_pip_options = true;
  open.allow_direct_urls = true;
  open.allow_local_paths = true;
  EXPECT_EQ(CanonicalOf("--index-url   http://x", open), "--index-url http://x");
  EXPECT_EQ(CanonicalOf("-e ./pkg", open), "-e ./pkg");
  EXPECT_EQ(CanonicalOf("Pkg[X] @ https://h/x.whl ; os_name=='nt'", open),
            "pkg[x] @ https://h/x.whl ; os_name == \"nt\"");
  EXPECT_EQ(CanonicalOf("https://h/x.whl ; os_name=='nt'", open),
            "https://h/x.whl ; os_name == \"nt\"");
  EXPECT_EQ(CanonicalOf("./pkg", open), "./pkg");
  EXPECT_EQ(CanonicalOf("pkg @ file:///tmp/x.whl", open), "pkg @ file:///tmp/x.whl");
  EXPECT_NE(CanonicalOf("pkg @ not-a-url", open).find("is not a valid URL"), std::string::npos);
  EXPECT_NE(CanonicalOf("-", open).find("neither a requirement nor a pip option"),
            std::string::npos);

  ParseOptions urls_only;
  urls_only.allow_direct_urls = true;
  EXPECT_NE(CanonicalOf("pkg @ file:///tmp/x.whl", urls_only).find("is a local path"),
            std::string::npos);
  EXPECT_NE(CanonicalOf("-r x.txt", urls_only).find("is a pip option"), std::string::npos);
}

TEST(RequirementTest, StripsCommentsOnlyAfterWhitespace) {
  EXPECT_EQ(StripRequirementComment("numpy # x"), "numpy ");
  EXPECT_EQ(StripRequirementComment("# x"), "");
  EXPECT_EQ(StripRequirementComment("pkg @ https://h/x#egg=pkg"), "pkg @ https://h/x#egg=pkg");
}

}  // namespace
}  // namespace gsk::spec
