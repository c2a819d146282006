// The JSON Schema in kernel.schema.json must describe the fields the parser knows.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "kernel-spec/kernel_spec.h"

namespace gsk::spec {
namespace {

using nlohmann::json;

json LoadSchema() {
  std::ifstream in(GSK_KERNEL_SCHEMA_PATH);
  EXPECT_TRUE(in.good()) << GSK_KERNEL_SCHEMA_PATH;
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

TEST(KernelSchemaTest, IsADraft2020Schema) {
  json schema = LoadSchema();
  ASSERT_TRUE(schema.is_object()) << "kernel.schema.json is not valid JSON";
  EXPECT_EQ(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(schema["type"], "object");
  EXPECT_EQ(schema["required"], json::array({"name", "pythonVersion"}));
  EXPECT_EQ(schema["additionalProperties"], true);  // unknown fields are kept
}

TEST(KernelSchemaTest, ListsTheFieldsTheParserKnows) {
  json schema = LoadSchema();
  ASSERT_TRUE(schema.is_object());
  std::set<std::string> in_schema;
  for (const auto& [key, value] : schema["properties"].items()) in_schema.insert(key);
  std::set<std::string> in_parser;
  for (std::string_view f : KernelDocumentFields()) in_parser.insert(std::string(f));
  for (std::string_view f : ReadOnlyKernelFields()) in_parser.insert(std::string(f));
  EXPECT_EQ(in_schema, in_parser);
  for (std::string_view f : ReadOnlyKernelFields()) {
    EXPECT_EQ(schema["properties"][std::string(f)].value("readOnly", false), true) << f;
  }
  for (std::string_view f : KernelDocumentFields()) {
    EXPECT_FALSE(schema["properties"][std::string(f)].contains("readOnly")) << f;
  }
}

TEST(KernelSchemaTest, StatesTheParsersLimits) {
  json schema = LoadSchema();
  ASSERT_TRUE(schema.is_object());
  const json& props = schema["properties"];
  EXPECT_EQ(props["name"]["maxLength"], kMaxKernelNameLength);
  EXPECT_EQ(props["env"]["maxProperties"], kMaxEnvEntries);
  EXPECT_EQ(props["env"]["additionalProperties"]["maxLength"], kMaxEnvValueBytes);
  EXPECT_EQ(props["requestedDependencies"]["oneOf"][0]["maxItems"], kMaxRequirementsPerField);
  EXPECT_EQ(props["requestedDependencies"]["oneOf"][0]["items"]["maxLength"],
            kMaxRequirementLineLength);
  EXPECT_EQ(schema["maxProperties"],
            KernelDocumentFields().size() + ReadOnlyKernelFields().size() + kMaxUnknownFields);
}

}  // namespace
}  // namespace gsk::spec
