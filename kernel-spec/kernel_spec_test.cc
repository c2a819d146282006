#include "kernel-spec/kernel_spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gsk::spec {
namespace {

using nlohmann::json;

const ParseOptions kOptions;

constexpr char kHubDocument[] = R"({
  "name": "my-kernel",
  "pythonVersion": "3.11",
  "requestedDependencies": ["giskard[llm]>=2.14", "scikit-learn==1.3.2"],
  "frozenDependencies": "joblib==1.3.2\nnumpy==1.26.4",
  "type": "PROCESS",
  "version": "2.14.0"
})";

KernelSpec MustParse(std::string_view text, const ParseOptions& options = kOptions) {
  auto spec = ParseKernelDocument(text, options);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString() << "\n" << text;
  return spec.ok() ? std::move(spec).value() : KernelSpec{};
}

KernelSpec MustParseJson(const json& doc) { return MustParse(doc.dump()); }

std::vector<std::string> CanonicalLines(const std::vector<Requirement>& reqs) {
  std::vector<std::string> out;
  for (const Requirement& r : reqs) out.push_back(r.Canonical());
  return out;
}

TEST(KernelSpecTest, ParsesTheHubsDocument) {
  KernelSpec spec = MustParse(kHubDocument);
  EXPECT_EQ(spec.name, "my-kernel");
  EXPECT_EQ(spec.python_version, "3.11");
  EXPECT_EQ(CanonicalLines(spec.requested),
            (std::vector<std::string>{"giskard[llm]>=2.14", "scikit-learn==1.3.2"}));
  EXPECT_EQ(CanonicalLines(spec.frozen),
            (std::vector<std::string>{"joblib==1.3.2", "numpy==1.26.4"}));
  EXPECT_EQ(spec.type, KernelType::kProcess);
  EXPECT_EQ(spec.version, "2.14.0");
  EXPECT_EQ(spec.workers, 1);
  EXPECT_TRUE(spec.env.empty());
  EXPECT_EQ(spec.unknown_fields_json, "{}");
  EXPECT_EQ(&spec.EffectiveRequirements(), &spec.frozen);
  // Requested packages missing from the frozen list are reported: the build uses frozen only.
  ASSERT_EQ(spec.warnings.size(), 2u);
  EXPECT_EQ(spec.warnings[0],
            "requestedDependencies[0]: \"giskard[llm]>=2.14\" is not in frozenDependencies; "
            "the environment is built from frozenDependencies only");
}

TEST(KernelSpecTest, ToJsonHasTheRestShape) {
  KernelSpec spec = MustParse(kHubDocument);
  spec.env = {{"OPENAI_API_KEY", "sk-1234567890abcdef"}, {"SHORT", "abc"}};
  json expected = json::parse(R"({
    "name": "my-kernel", "pythonVersion": "3.11",
    "requestedDependencies": ["giskard[llm]>=2.14", "scikit-learn==1.3.2"],
    "frozenDependencies": "joblib==1.3.2\nnumpy==1.26.4",
    "type": "PROCESS", "version": "2.14.0", "workers": 1,
    "env": {"OPENAI_API_KEY": "sk-****", "SHORT": "****"}, "forkServer": true,
    "preloadModels": []})");
  EXPECT_EQ(ToJson(spec, /*redact_env=*/true), expected);
  EXPECT_EQ(ToJson(spec, false)["env"]["OPENAI_API_KEY"], "sk-1234567890abcdef");
  spec.version.clear();
  EXPECT_TRUE(ToJson(spec, true)["version"].is_null());
}

TEST(KernelSpecTest, AppliesDefaultsToAMinimalDocument) {
  KernelSpec spec = MustParse(R"({"name":"k","pythonVersion":"3.11.4"})");
  EXPECT_EQ(spec.python_version, "3.11");
  EXPECT_TRUE(spec.requested.empty());
  EXPECT_TRUE(spec.frozen.empty());
  EXPECT_EQ(spec.type, KernelType::kProcess);
  EXPECT_EQ(spec.workers, 1);
  EXPECT_EQ(spec.version, "");
  EXPECT_TRUE(spec.warnings.empty());
  EXPECT_EQ(&spec.EffectiveRequirements(), &spec.requested);

  KernelSpec unmanaged = MustParse(R"({"name":"k","pythonVersion":"3.8","type":"UNMANAGED",
      "requestedDependencies":null,"frozenDependencies":null,"version":null,"workers":null,
      "env":null})");
  EXPECT_EQ(unmanaged.type, KernelType::kUnmanaged);
  EXPECT_EQ(unmanaged.workers, 0);
  EXPECT_EQ(ToJson(unmanaged, true)["type"], "UNMANAGED");
}

TEST(KernelSpecTest, AcceptsBothListShapes) {
  KernelSpec spec = MustParse(R"({"name":"k","pythonVersion":"3.12",
      "requestedDependencies":"NumPy>=1.0\n\n# comment\r\npandas  # why\r\n",
      "frozenDependencies":["numpy==1.26.4", "", "pandas==2.2.0", "# c"]})");
  EXPECT_EQ(CanonicalLines(spec.requested), (std::vector<std::string>{"numpy>=1.0", "pandas"}));
  EXPECT_EQ(CanonicalLines(spec.frozen),
            (std::vector<std::string>{"numpy==1.26.4", "pandas==2.2.0"}));
  EXPECT_EQ(spec.requested[0].original, "NumPy>=1.0");
}

TEST(KernelSpecTest, AllowsTheSamePackageUnderDifferentMarkers) {
  KernelSpec spec = MustParse(R"({"name":"k","pythonVersion":"3.11","frozenDependencies":
      "numpy==1.24.4 ; python_version < '3.9'\nnumpy==1.26.4 ; python_version >= '3.9'",
      "requestedDependencies":["torch==2.1.0", "numpy==1.26.4 ; python_version >= '3.9'"]})");
  EXPECT_EQ(spec.frozen.size(), 2u);
  KernelSpec local = MustParse(R"({"name":"k","pythonVersion":"3.11",
      "requestedDependencies":["torch==2.1"], "frozenDependencies":"torch==2.1.0+cu118"})");
  EXPECT_TRUE(local.warnings.empty());
}

TEST(KernelSpecTest, VersionIsAnIntegerOrAVersionNumberAndKeepsItsType) {
  KernelSpec number = MustParse(R"({"name":"k","pythonVersion":"3.11","version":2})");
  EXPECT_EQ(number.version, "2");
  EXPECT_TRUE(number.version_is_integer);
  EXPECT_EQ(ToJson(number, true)["version"], 2);
  KernelSpec text = MustParse(R"({"name":"k","pythonVersion":"3.11","version":"2.14.0"})");
  EXPECT_EQ(ToJson(text, true)["version"], "2.14.0");
  EXPECT_TRUE(text.warnings.empty());
  for (const char* bad : {R"("abc")", "2.5", R"("")", R"("1..2")", R"(".1")", "-3", "[1]"}) {
    auto r = ParseKernelDocument(
        std::string(R"({"name":"k","pythonVersion":"3.11","version":)") + bad + "}", {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(IsInvalidJson(r.status())) << bad;  // a 422, not a 400
    EXPECT_NE(r.status().message().find("version"), std::string::npos) << bad;
  }
}

TEST(KernelSpecTest, KeepsUnknownFieldsAndIgnoresReadOnlyOnes) {
  KernelSpec spec = MustParse(R"({"name":"k","pythonVersion":"3.11","foo":{"a":[1,2]},
      "status":"ready","envHash":"abc","lastError":null,"generation":3,"createdAt":"x",
      "updatedAt":"y","warnings":["w"],"id":7})");
  EXPECT_EQ(spec.unknown_fields_json, R"({"foo":{"a":[1,2]}})");
  ASSERT_EQ(spec.warnings.size(), 1u);
  EXPECT_EQ(spec.warnings[0],
            "unknown field \"foo\" kept as is; it does not affect the environment");
  json out = ToJson(spec, true);
  EXPECT_EQ(out["foo"], json::parse(R"({"a":[1,2]})"));
  EXPECT_FALSE(out.contains("status"));

  spec.unknown_fields_json = R"({"name":"evil","bar":1})";  // as if read back from a store
  out = ToJson(spec, true);
  EXPECT_EQ(out["name"], "k");
  EXPECT_EQ(out["bar"], 1);
  spec.unknown_fields_json = "not json";
  EXPECT_EQ(ToJson(spec, true)["name"], "k");
}

TEST(KernelSpecTest, RoundTripsThroughToJson) {
  const std::string text = R"({"name":"Round.Trip_1","pythonVersion":"3.10",
      "requestedDependencies":["Giskard[LLM] >= 2.14 ; python_version >= '3.9'", "numpy<2,>=1.24",
                               "pandas~=2.1", "torch==2.1.0+CU118"],
      "frozenDependencies":["numpy==1.26.4", "Joblib==1.3.2", "torch==2.1.0+cu118",
                            "pandas==2.1.4", "giskard==2.14.0"],
      "type":"PROCESS","version":"2.14.0","workers":3,"env":{"A":"1","TOKEN":"secret-value-123"},
      "preloadModels":["iris.pkl","team/big-model"],"custom":{"x":[1,"two",null]}})";
  KernelSpec first = MustParse(text);
  json once = ToJson(first, /*redact_env=*/false);
  KernelSpec second = MustParse(once.dump());
  EXPECT_EQ(ToJson(second, false), once);
  EXPECT_EQ(second.name, first.name);
  EXPECT_EQ(second.python_version, first.python_version);
  EXPECT_EQ(CanonicalLines(second.requested), CanonicalLines(first.requested));
  EXPECT_EQ(CanonicalLines(second.frozen), CanonicalLines(first.frozen));
  EXPECT_EQ(second.type, first.type);
  EXPECT_EQ(second.version, first.version);
  EXPECT_EQ(second.workers, first.workers);
  EXPECT_EQ(second.env, first.env);
  EXPECT_EQ(second.preload_models, (std::vector<std::string>{"iris.pkl", "team/big-model"}));
  EXPECT_EQ(second.unknown_fields_json, first.unknown_fields_json);
  EXPECT_EQ(second.warnings, first.warnings);
  EXPECT_EQ(EnvHash(second, "idx"), EnvHash(first, "idx"));
  // A document read back with its read-only fields can be posted again.
  once["status"] = "ready";
  once["envHash"] = EnvHash(first, "idx");
  once["generation"] = 2;
  EXPECT_EQ(ToJson(MustParse(once.dump()), false), ToJson(first, false));
}

json HashBase() {
  return json::parse(R"({"name":"a","pythonVersion":"3.11",
      "requestedDependencies":["numpy>=1.0","pandas"],
      "frozenDependencies":"numpy==1.26.4\npandas==2.2.0\nscikit_learn==1.3.2"})");
}

TEST(KernelSpecTest, HashIgnoresWhatDoesNotChangeTheEnvironment) {
  const std::string base = EnvHash(MustParseJson(HashBase()), "https://pypi.org/simple");
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base.find_first_not_of("0123456789abcdef"), std::string::npos);
  std::vector<json> same;
  for (int i = 0; i < 6; ++i) same.push_back(HashBase());
  same[0]["name"] = "another-name";
  same[1]["frozenDependencies"] = "Scikit-Learn == 1.3.2\nPANDAS==2.2.0\n  numpy==1.26.4  ";
  same[2]["frozenDependencies"] =
      json::array({"pandas==2.2.0", "scikit-learn==1.3.2", "numpy==1.26.4", "# comment", ""});
  same[3]["workers"] = 5;
  same[3]["version"] = "9.9";
  same[3]["preloadModels"] = {"iris.pkl"};
  same[4]["env"] = {{"X", "y"}};
  same[4]["type"] = "UNMANAGED";
  same[5]["requestedDependencies"] = json::array();  // frozen wins when present
  same[5]["extra"] = 1;
  for (const json& doc : same) {
    EXPECT_EQ(EnvHash(MustParseJson(doc), "https://pypi.org/simple"), base) << doc.dump();
  }
}

TEST(KernelSpecTest, HashChangesWithPythonRequirementsAndIndex) {
  KernelSpec spec = MustParseJson(HashBase());
  const std::string base = EnvHash(spec, "https://pypi.org/simple");
  std::vector<json> different(3, HashBase());
  different[0]["pythonVersion"] = "3.12";
  different[1]["frozenDependencies"] = "numpy==1.26.3\npandas==2.2.0\nscikit-learn==1.3.2";
  different[2]["frozenDependencies"] = "numpy==1.26.4\npandas==2.2.0";
  for (const json& doc : different) {
    EXPECT_NE(EnvHash(MustParseJson(doc), "https://pypi.org/simple"), base) << doc.dump();
  }
  EXPECT_NE(EnvHash(spec, "https://mirror.example/simple"), base);
  EXPECT_NE(EnvHash(spec, ""), base);
  KernelSpec requested_only = MustParse(R"({"name":"a","pythonVersion":"3.11",
      "requestedDependencies":["pandas", "numpy>=1.0"]})");
  KernelSpec requested_other = MustParse(R"({"name":"a","pythonVersion":"3.11",
      "requestedDependencies":["pandas", "numpy>=1.1"]})");
  EXPECT_NE(EnvHash(requested_only, "i"), EnvHash(requested_other, "i"));
}

TEST(KernelSpecTest, CanonicalEnvTextListsOnlyWhatMatters) {
  KernelSpec spec = MustParseJson(HashBase());
  EXPECT_EQ(CanonicalEnvText(spec, "pypi"),
            "giskard-supervisor env 1\npython 3.11\nindex 4 pypi\n"
            "requirement numpy==1.26.4\nrequirement pandas==2.2.0\n"
            "requirement scikit-learn==1.3.2\n");
}

TEST(KernelSpecTest, OptionsWidenWhatRequirementsMayBe) {
  ParseOptions open;
  open.allow_pip_options = true;
  open.max_workers = 200;
  KernelSpec spec = MustParse(R"({"name":"k","pythonVersion":"3.11","workers":150,
      "requestedDependencies":["--index-url https://mirror/simple", "numpy"]})",
                              open);
  EXPECT_EQ(CanonicalLines(spec.requested),
            (std::vector<std::string>{"--index-url https://mirror/simple", "numpy"}));
  EXPECT_EQ(spec.workers, 150);
}

TEST(KernelSpecTest, ParseKernelJsonTakesAParsedDocument) {
  auto spec = ParseKernelJson(json::parse(kHubDocument), kOptions);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->name, "my-kernel");
  auto array = ParseKernelJson(json::array(), kOptions);
  ASSERT_FALSE(array.ok());
  EXPECT_TRUE(IsInvalidJson(array.status()));
  json bad_utf8 = {{"name", "k"}, {"pythonVersion", "3.11"}, {"x", "\xff"}};
  auto invalid = ParseKernelJson(bad_utf8, kOptions);
  ASSERT_FALSE(invalid.ok());
  EXPECT_TRUE(IsInvalidJson(invalid.status()));
}

TEST(KernelSpecTest, ValidatesNamesOnTheirOwn) {
  EXPECT_TRUE(ValidateKernelName("fraud-model_2.1").ok());
  EXPECT_TRUE(ValidateKernelName(std::string(63, 'a')).ok());
  Status bad = ValidateKernelName("..");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.details(), (std::vector<Status::Detail>{{"field", "name"}}));
  EXPECT_FALSE(IsInvalidJson(bad));
  EXPECT_EQ(KernelTypeName(KernelType::kProcess), "PROCESS");
  EXPECT_EQ(KernelTypeName(KernelType::kUnmanaged), "UNMANAGED");
}

}  // namespace
}  // namespace gsk::spec
