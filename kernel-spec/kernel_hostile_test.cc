// Hostile and malformed kernel documents: each must be refused with the right field and a
// message that says what was wrong.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernel-spec/kernel_spec.h"

namespace gsk::spec {
namespace {

using nlohmann::json;

// A valid document with `overrides` applied (keys set to null stay, as null).
std::string With(const json& overrides) {
  json doc = {{"name", "k"}, {"pythonVersion", "3.11"}};
  doc.update(overrides);
  return doc.dump();
}

std::string WithRequested(const json& lines) { return With({{"requestedDependencies", lines}}); }

std::string Without(const char* key) {
  json doc = {{"name", "k"}, {"pythonVersion", "3.11"}};
  doc.erase(key);
  return doc.dump();
}

json ManyEntries(std::size_t n, bool as_object) {
  json out = as_object ? json::object() : json::array();
  for (std::size_t i = 0; i < n; ++i) {
    if (as_object) {
      out["V" + std::to_string(i)] = "x";
    } else {
      out.push_back("pkg" + std::to_string(i));
    }
  }
  return out;
}

json ManyUnknownFields(std::size_t n) {
  json out = json::object();
  for (std::size_t i = 0; i < n; ++i) out["u" + std::to_string(100 + i)] = i;
  return out;
}

struct Hostile {
  std::string document;
  std::string field;
  std::string fragment;
};

// name
std::vector<Hostile> NameCases() {
  const std::string kBadName = "is not a valid kernel name";
  return {
      {With({{"name", "../x"}}), "name", kBadName + " (it contains \"/\")"},
      {With({{"name", "a/b"}}), "name", "it contains \"/\""},
      {With({{"name", "a\\b"}}), "name", "it contains \"\\\\\""},
      {With({{"name", ".hidden"}}), "name", "it starts with \".\""},
      {With({{"name", "-x"}}), "name", "it starts with \"-\""},
      {With({{"name", "."}}), "name", kBadName},
      {With({{"name", "a..b"}}), "name", "it contains \"..\""},
      {With({{"name", ""}}), "name", "it is empty"},
      {With({{"name", std::string(64, 'a')}}), "name", "it has 64 characters"},
      {With({{"name", "caf\xc3\xa9"}}), "name", kBadName},
      {With({{"name", std::string("a\0b", 3)}}), "name", "it contains \"\\x00\""},
      {With({{"name", nullptr}}), "name", "name: is null; give the kernel a name"},
      {Without("name"), "name", "name: missing"},
      {With({{"name", 42}}), "name", "expected a string, got the number 42"},
  };
}

// pythonVersion
std::vector<Hostile> PythonCases() {
  return {
      {With({{"pythonVersion", 3.11}}), "pythonVersion", "send it as a string such as \"3.11\""},
      {With({{"pythonVersion", "3"}}), "pythonVersion", "is not a Python version"},
      {With({{"pythonVersion", "python3.11"}}), "pythonVersion", "(without \"python\")"},
      {With({{"pythonVersion", "3.7"}}), "pythonVersion", "too old; the worker needs Python 3.8"},
      {With({{"pythonVersion", "4.0"}}), "pythonVersion", "only Python 3 is supported"},
      {With({{"pythonVersion", ""}}), "pythonVersion", "is not a Python version"},
      {With({{"pythonVersion", "3.08"}}), "pythonVersion", "is not a Python version"},
      {With({{"pythonVersion", "3.100"}}), "pythonVersion", "is not a Python version"},
      {With({{"pythonVersion", " 3.11"}}), "pythonVersion", "is not a Python version"},
      {Without("pythonVersion"), "pythonVersion", "missing"},
  };
}

// requestedDependencies: options, URLs, paths, syntax
std::vector<Hostile> RequirementCases() {
  return {
      {WithRequested({"--index-url http://x"}), "requestedDependencies[0]",
       "\"--index-url http://x\" is a pip option; options are not allowed in requirements "
       "(configure [packages] index settings)"},
      {WithRequested({"numpy", "-r other.txt"}), "requestedDependencies[1]", "is a pip option"},
      {WithRequested({"-e ."}), "requestedDependencies[0]", "is a pip option"},
      {WithRequested({"--extra-index-url http://x"}), "requestedDependencies[0]", "pip option"},
      {WithRequested({"--trusted-host evil"}), "requestedDependencies[0]", "is a pip option"},
      {WithRequested({"pkg @ https://evil/x.whl"}), "requestedDependencies[0]", "direct URL"},
      {WithRequested({"/tmp/x.whl"}), "requestedDependencies[0]", "is a local path"},
      {WithRequested({"./pkg"}), "requestedDependencies[0]", "is a local path"},
      {WithRequested({"git+https://x/y"}), "requestedDependencies[0]", "is a direct URL"},
      {WithRequested({"numpy=="}), "requestedDependencies[0]", "needs a version after it"},
      {WithRequested({"numpy=1.0"}), "requestedDependencies[0]", "use \"==\" for an exact"},
      {WithRequested({"numpy>=1.0;"}), "requestedDependencies[0]", "nothing follows \";\""},
      {WithRequested({"numpy; python_version >"}), "requestedDependencies[0]", "marker"},
      {WithRequested({"numpy~=1"}), "requestedDependencies[0]", "at least two version parts"},
      {WithRequested({"numpy==1.*.2"}), "requestedDependencies[0]", "may only end a version"},
      {WithRequested({"foo[bar"}), "requestedDependencies[0]", "extras list is not closed"},
      {WithRequested({"foo bar"}), "requestedDependencies[0]", "one requirement per line"},
      {WithRequested({"numpy\x07"}), "requestedDependencies[0]", "control character"},
      {WithRequested({std::string(4097, 'a')}), "requestedDependencies[0]", "at most 4096"},
      {WithRequested("numpy\n\n--index-url http://x"), "requestedDependencies[2]", "pip option"},
      {WithRequested({1}), "requestedDependencies[0]", "expected a requirement string"},
      {WithRequested({{"a", 1}}), "requestedDependencies", "expected an array"},
      {WithRequested(true), "requestedDependencies", "expected an array"},
      {WithRequested({"a\nb"}), "requestedDependencies[0]", "contains a line break"},
      {WithRequested(ManyEntries(2001, false)), "requestedDependencies", "at most 2000"},
  };
}

// duplicates and conflicts
std::vector<Hostile> ConflictCases() {
  return {
      {WithRequested({"numpy==1.0", "NumPy==2.0"}), "requestedDependencies[1]",
       "conflicting pins: \"NumPy==2.0\" and \"numpy==1.0\" (requestedDependencies[0])"},
      {WithRequested({"numpy>=1.0", "numpy<2"}), "requestedDependencies[1]",
       "lists \"numpy\" twice (also requestedDependencies[0]); combine them into one line such "
       "as \"numpy<2,>=1.0\""},
      {WithRequested({"numpy==1.0", "numpy==1.0.0"}), "requestedDependencies[1]", "twice"},
      {With({{"frozenDependencies", "numpy==1.0\nnumpy==1.1"}}), "frozenDependencies[1]",
       "conflicting pins"},
      {With({{"frozenDependencies", "joblib==1.3.2\n\n# c\nnumpy>=1.0"}}), "frozenDependencies[3]",
       "\"numpy>=1.0\" is not an exact pin"},
      {With({{"frozenDependencies", "numpy"}}), "frozenDependencies[0]", "not an exact pin"},
      {With({{"frozenDependencies", "numpy==1.*"}}), "frozenDependencies[0]", "not an exact pin"},
      {With({{"frozenDependencies", "numpy==1.0\n--index-url http://evil"}}),
       "frozenDependencies[1]", "is a pip option"},
      {With({{"frozenDependencies", 5}}), "frozenDependencies", "expected an array"},
      {With(
           {{"requestedDependencies", {"numpy==1.26.0"}}, {"frozenDependencies", "numpy==1.26.4"}}),
       "requestedDependencies[0]",
       "\"numpy==1.26.0\" conflicts with frozenDependencies[0] \"numpy==1.26.4\""},
  };
}

// type, version, workers
std::vector<Hostile> ScalarCases() {
  return {
      {With({{"type", "process"}}), "type", "types are upper case: use \"PROCESS\""},
      {With({{"type", "DOCKER"}}), "type", "use \"PROCESS\""},
      {With({{"type", 1}}), "type", "expected a string"},
      {With({{"version", true}}), "version", "expected an integer, got a boolean"},
      {With({{"version", "abc"}}), "version", "\"abc\" is not a version"},
      {With({{"version", std::string(300, '1')}}), "version", "longer than 256"},
      {With({{"workers", -1}}), "workers", "-1 is out of range; use a whole number from 0 to 64"},
      {With({{"workers", 1000}}), "workers", "1000 is out of range"},
      {With({{"workers", 18446744073709551615ull}}), "workers", "out of range"},
      {With({{"workers", "2"}}), "workers", "without quotes"},
      {With({{"workers", 1.5}}), "workers", "expected an integer"},
  };
}

// env
std::vector<Hostile> EnvCases() {
  return {
      {With({{"env", {{"1BAD", "x"}}}}), "env", "\"1BAD\" is not a valid environment variable"},
      {With({{"env", {{"A-B", "x"}}}}), "env", "is not a valid environment variable name"},
      {With({{"env", {{"", "x"}}}}), "env", "is not a valid environment variable name"},
      {With({{"env", {{"FOO", 1}}}}), "env.FOO", "expected a string, got the number 1"},
      {With({{"env", {{"GSK_TOKEN", "x"}}}}), "env.GSK_TOKEN", "reserved for the supervisor"},
      {With({{"env", {{"GISKARD_SUPERVISOR_X", "x"}}}}), "env.GISKARD_SUPERVISOR_X", "reserved"},
      {With({{"env", "FOO=1"}}), "env", "expected an object"},
      {With({{"env", ManyEntries(129, true)}}), "env", "at most 128"},
      {With({{"env", {{"FOO", std::string(40000, 'x')}}}}), "env.FOO", "at most 32768"},
      {With({{"env", {{"FOO", std::string("a\0b", 3)}}}}), "env.FOO", "NUL"},
      // preloadModels
      {With({{"preloadModels", "iris.pkl"}}), "preloadModels", "expected an array of model paths"},
      {With({{"preloadModels", {1}}}), "preloadModels[0]", "expected a model path (a string)"},
      {With({{"preloadModels", {"a.pkl", ""}}}), "preloadModels[1]", "1 to 4096 bytes"},
      {With({{"preloadModels", {"a.pkl", "a.pkl"}}}), "preloadModels[1]", "listed twice"},
      {With({{"preloadModels", json(std::vector<std::string>(17, "a"))}}), "preloadModels",
       "at most 16"},
      {With({{"type", "UNMANAGED"}, {"preloadModels", {"a.pkl"}}}), "preloadModels",
       "cannot preload models"},
  };
}

// the document as a whole
std::vector<Hostile> DocumentCases() {
  return {
      {With(ManyUnknownFields(65)), "u164", "more than 64 unknown fields"},
      {R"({"name":"k","pythonVersion":"3.11","name":"../x"})", "name", "appears more than once"},
      {"{\"name\":\"k\",\"x\":" + std::string(100, '[') + std::string(100, ']') + "}", "",
       "nests deeper than 64 levels"},
      {std::string(100000, '['), "", "nests deeper than 64 levels"},
      {"[]", "", "must be a JSON object"},
      {"\"name\"", "", "must be a JSON object"},
      {"null", "", "must be a JSON object"},
      {"not json at all", "", "invalid JSON: "},
      {"", "", "invalid JSON: "},
      {"{\"name\":\"k\"", "", "invalid JSON: "},
      {"{} x", "", "invalid JSON: "},
      {"{\"name\":\"\xff\"}", "", "invalid JSON: "},
  };
}

std::vector<Hostile> Cases() {
  std::vector<Hostile> all;
  for (const auto& group : {NameCases(), PythonCases(), RequirementCases(), ConflictCases(),
                            ScalarCases(), EnvCases(), DocumentCases()}) {
    all.insert(all.end(), group.begin(), group.end());
  }
  return all;
}

TEST(KernelHostileTest, RefusesEachWithTheFieldAndAReason) {
  const std::vector<Hostile> cases = Cases();
  ASSERT_GE(cases.size(), 40u);
  for (const Hostile& c : cases) {
    SCOPED_TRACE(c.document.substr(0, 200));
    auto spec = ParseKernelDocument(c.document, ParseOptions{});
    ASSERT_FALSE(spec.ok());
    const Status& status = spec.status();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    ASSERT_FALSE(status.details().empty());
    EXPECT_EQ(status.details()[0], Status::Detail("field", c.field));
    EXPECT_NE(status.message().find(c.fragment), std::string::npos) << status.message();
    if (!c.field.empty()) {
      EXPECT_TRUE(status.message().starts_with(c.field + ": ")) << status.message();
      EXPECT_FALSE(IsInvalidJson(status));
    } else {
      EXPECT_TRUE(IsInvalidJson(status));
    }
    // Messages end up in JSON error bodies: they must serialize.
    EXPECT_NO_THROW((void)json(status.message()).dump());
  }
}

TEST(KernelHostileTest, JsonSyntaxErrorsStartWithInvalidJson) {
  auto spec = ParseKernelDocument("{\"name\": nope}", ParseOptions{});
  ASSERT_FALSE(spec.ok());
  EXPECT_TRUE(spec.status().message().starts_with("invalid JSON: parse error at line 1"))
      << spec.status().message();
  EXPECT_TRUE(IsInvalidJson(spec.status()));
}

TEST(KernelHostileTest, AcceptsTheLimitsThemselves) {
  EXPECT_TRUE(ParseKernelDocument(WithRequested(ManyEntries(2000, false)), ParseOptions{}).ok());
  EXPECT_TRUE(ParseKernelDocument(With({{"env", ManyEntries(128, true)}}), ParseOptions{}).ok());
  EXPECT_TRUE(ParseKernelDocument(With(ManyUnknownFields(64)), ParseOptions{}).ok());
  EXPECT_TRUE(ParseKernelDocument(With({{"workers", 64}}), ParseOptions{}).ok());
  EXPECT_TRUE(ParseKernelDocument("{\"name\":\"k\",\"pythonVersion\":\"3.11\",\"x\":" +
                                      std::string(63, '[') + std::string(63, ']') + "}",
                                  ParseOptions{})
                  .ok());
}

}  // namespace
}  // namespace gsk::spec
