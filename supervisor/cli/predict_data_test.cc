#include "supervisor/cli/predict_data.h"

#include <gtest/gtest.h>

namespace gsk::cli {
namespace {

using nlohmann::json;

TEST(PredictDataTest, CsvBecomesColumnsAndTypedRows) {
  auto data = ReadPredictData("sepal length,name,flag\r\n5.1,\"a, b\",\n-3,\"say \"\"hi\"\"\",7\n\n");
  ASSERT_TRUE(data.ok()) << data.status().message();
  EXPECT_EQ((*data)["columns"], json({"sepal length", "name", "flag"}));
  EXPECT_EQ((*data)["rows"], json::parse(R"([[5.1,"a, b",null],[-3,"say \"hi\"",7]])"));
}

TEST(PredictDataTest, CsvErrorsNameTheLine) {
  auto ragged = ReadPredictData("a,b\n1,2\n3\n");
  ASSERT_FALSE(ragged.ok());
  EXPECT_NE(ragged.status().message().find("line 3 has 1 fields"), std::string::npos);
  EXPECT_FALSE(ReadPredictData("a\n\"open").ok());
  EXPECT_FALSE(ReadPredictData("  \n").ok());
}

TEST(PredictDataTest, JsonIsRowsRecordsOrAnObjectWithThem) {
  EXPECT_EQ((*ReadPredictData(R"([[1,2],[3,4]])"))["rows"], json::parse("[[1,2],[3,4]]"));
  EXPECT_EQ((*ReadPredictData(R"([{"a":1}])"))["records"], json::parse(R"([{"a":1}])"));
  auto object = ReadPredictData(R"({"columns":["a"],"rows":[[1]],"model":"ignored"})");
  ASSERT_TRUE(object.ok());
  EXPECT_FALSE(object->contains("model"));
  EXPECT_EQ((*object)["columns"], json({"a"}));
  EXPECT_FALSE(ReadPredictData(R"({"x":1})").ok());
  EXPECT_FALSE(ReadPredictData(R"([1,2])").ok());
  EXPECT_FALSE(ReadPredictData(R"({"rows":)").ok());
}

TEST(PredictDataTest, PredictionsRenderAsATableWithAProbabilityColumnPerClass) {
  json answer = json::parse(R"({"predictions":["setosa","virginica"],
      "probabilities":[[0.9,0.1],[0.25,0.75]],"classes":["setosa","virginica"]})");
  EXPECT_EQ(RenderPredictions(answer),
            "#  prediction  p(setosa)  p(virginica)\n"
            "0  setosa            0.9           0.1\n"
            "1  virginica        0.25          0.75\n");
  EXPECT_EQ(RenderPredictions(json::parse(R"({"predictions":[1.5]})")),
            "#  prediction\n0  1.5\n");
}

}  // namespace
}  // namespace gsk::cli
