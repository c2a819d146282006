#include "supervisor/cli/kernel_document.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

namespace gsk::cli {
namespace {

using nlohmann::json;

FileReader FakeFiles(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& path) -> Result<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return InvalidArgument(path + ": No such file or directory");
    return it->second;
  };
}

TEST(RequirementsTextTest, SkipsBlanksAndComments) {
  EXPECT_EQ(ParseRequirementsText("numpy<2\n\n# a comment\r\n  pandas==2.2.0  # why\r\n"
                                  "pkg @ https://h/x#egg=pkg\n   \n"),
            (std::vector<std::string>{"numpy<2", "pandas==2.2.0", "pkg @ https://h/x#egg=pkg"}));
}

TEST(RequirementsTextTest, JoinsContinuationLinesAndPassesOptionsThrough) {
  EXPECT_EQ(ParseRequirementsText("scikit-learn\\\n  ==1.3.2\n-r other.txt\n--index-url x"),
            (std::vector<std::string>{"scikit-learn  ==1.3.2", "-r other.txt", "--index-url x"}));
}

TEST(RequirementsTextTest, EmptyText) {
  EXPECT_TRUE(ParseRequirementsText("").empty());
  EXPECT_TRUE(ParseRequirementsText("\n\n# only comments\n").empty());
}

TEST(KernelDocumentTest, BuildsTheHubDocumentFromFlags) {
  CreateFlags flags;
  flags.name = "fraud";
  flags.python = "3.11";
  flags.requirement_files = {"req.txt"};
  flags.requirements = {"scikit-learn==1.3.2"};
  flags.frozen_file = "frozen.txt";
  flags.workers = 2;
  flags.env = {"A=1", "B=x=y"};
  auto doc = BuildKernelDocument(
      flags, FakeFiles({{"req.txt", "numpy<2\n# c\n"}, {"frozen.txt", "a==1\n\nb==2\n"}}));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(*doc, json::parse(R"({
    "name": "fraud", "pythonVersion": "3.11",
    "requestedDependencies": ["numpy<2", "scikit-learn==1.3.2"],
    "frozenDependencies": "a==1\nb==2", "type": "PROCESS", "workers": 2,
    "env": {"A": "1", "B": "x=y"}})"));
}

TEST(KernelDocumentTest, MinimalDocument) {
  CreateFlags flags;
  flags.name = "k";
  flags.python = "3.12";
  flags.type = "UNMANAGED";
  auto doc = BuildKernelDocument(flags, FakeFiles({}));
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(*doc, json::parse(R"({"name": "k", "pythonVersion": "3.12",
                                  "requestedDependencies": [], "type": "UNMANAGED"})"));
}

TEST(KernelDocumentTest, UsageErrors) {
  CreateFlags good;
  good.name = "k";
  good.python = "3.11";
  auto error_of = [](const CreateFlags& f) {
    auto doc = BuildKernelDocument(f, FakeFiles({}));
    EXPECT_FALSE(doc.ok());
    EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
    return doc.status().message();
  };
  CreateFlags f = good;
  f.name.clear();
  EXPECT_NE(error_of(f).find("NAME"), std::string::npos);
  f = good;
  f.python.clear();
  EXPECT_NE(error_of(f).find("--python"), std::string::npos);
  f = good;
  f.requirement_files = {"missing.txt"};
  EXPECT_EQ(error_of(f), "cannot read requirements file: missing.txt: No such file or directory");
  f = good;
  f.env = {"NOEQUALS"};
  EXPECT_NE(error_of(f).find("KEY=VALUE"), std::string::npos);
  f.env = {"A=1", "A=2"};
  EXPECT_NE(error_of(f).find("twice"), std::string::npos);
  f = good;
  f.workers = -1;
  EXPECT_NE(error_of(f).find("--workers"), std::string::npos);
}

TEST(KernelDocumentTest, NameOverride) {
  std::string text = R"({"name":"old","pythonVersion":"3.11","extra":[1]})";
  auto same = ApplyNameOverride(text, "");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, text);
  auto renamed = ApplyNameOverride(text, "new");
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(json::parse(*renamed),
            json::parse(R"({"name":"new","pythonVersion":"3.11","extra":[1]})"));
  EXPECT_FALSE(ApplyNameOverride("not json", "x").ok());
  EXPECT_FALSE(ApplyNameOverride("[1]", "x").ok());
  EXPECT_TRUE(ApplyNameOverride("not json", "").ok());  // the server judges it
}

TEST(KernelDocumentTest, ReadTextFileReportsTheOsError) {
  auto r = ReadTextFile("/nonexistent/req.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "/nonexistent/req.txt: No such file or directory");
  r = ReadTextFile("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "/: Is a directory");
}

}  // namespace
}  // namespace gsk::cli
