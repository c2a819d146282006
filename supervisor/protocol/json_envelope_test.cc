#include "supervisor/protocol/json_envelope.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gsk::protocol {
namespace {

TEST(JsonEnvelopeTest, FindsTopLevelMembersAndTheirExactBytes) {
  std::string text = R"( {"model": "/m/iris.pkl", "rows": [[1, 2.5e3, -0.1], [null, true, "x\"y"]],
      "opts": {"a": {"b": []}}, "n": 42, "esc\u00e9": false} )";
  auto env = JsonEnvelope::Scan(text);
  ASSERT_TRUE(env.ok()) << env.status().message();
  ASSERT_EQ(env->members().size(), 5u);
  EXPECT_EQ(env->Find("model")->kind, JsonKind::kString);
  EXPECT_EQ(env->Find("model")->value, "\"/m/iris.pkl\"");
  EXPECT_EQ(env->Find("rows")->value, R"([[1, 2.5e3, -0.1], [null, true, "x\"y"]])");
  EXPECT_EQ(env->Find("opts")->kind, JsonKind::kObject);
  EXPECT_EQ(env->Find("n")->value, "42");
  EXPECT_EQ(env->members()[4].key, "esc\xC3\xA9");
  EXPECT_EQ(env->Find("nothing"), nullptr);
}

TEST(JsonEnvelopeTest, RefusesWhatPythonOrAnyStrictParserWouldRefuse) {
  for (const char* bad : {"", "[]", "1", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}",
                          "{\"a\":1.}", "{\"a\":.5}", "{\"a\":NaN}", "{\"a\":Infinity}",
                          "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":\"\x01\"}",
                          "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":[1,2}", "{\"a\":1} x",
                          "{\"a\":1,\"a\":2}", "{'a':1}", "{\"a\":\"\xC0\xAF\"}",
                          "{\"a\":\"\xED\xA0\x80\"}", "{\"a\":\"\xF5\x80\x80\x80\"}",
                          "{\"a\":\"\xE2\x82\"}"}) {
    EXPECT_FALSE(JsonEnvelope::Scan(bad).ok()) << bad;
  }
  std::string deep = "{\"a\":" + std::string(70, '[') + std::string(70, ']') + "}";
  EXPECT_FALSE(JsonEnvelope::Scan(deep).ok());
  EXPECT_TRUE(JsonEnvelope::Scan(deep, 100).ok());
}

TEST(JsonEnvelopeTest, AgreesWithNlohmannOnValidity) {
  for (const char* text : {R"({"a":[1,{"b":"\ud83d\ude00"}],"c":-0.0e-7})", R"({})",
                           R"({"x":"\u0000"})", R"({"y":[[[]]],"z":null})"}) {
    EXPECT_TRUE(JsonEnvelope::Scan(text).ok()) << text;
    EXPECT_TRUE(nlohmann::json::accept(text)) << text;
  }
}

TEST(JsonEnvelopeTest, StringsDecodeAndEncodeBothWays) {
  EXPECT_EQ(DecodeJsonString(R"("a\"b\\c\/\n\u00e9\ud83d\ude00")").value(),
            "a\"b\\c/\n\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_FALSE(DecodeJsonString("abc").ok());
  EXPECT_FALSE(DecodeJsonString(R"("a":1,"b")").ok());
  std::string weird = "quo\"te\\ and \x01 control";
  EXPECT_EQ(DecodeJsonString(EncodeJsonString(weird)).value(), weird);
  EXPECT_EQ(nlohmann::json::parse(EncodeJsonString(weird)).get<std::string>(), weird);
}

}  // namespace
}  // namespace gsk::protocol
