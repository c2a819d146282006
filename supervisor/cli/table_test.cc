#include "supervisor/cli/table.h"

#include <gtest/gtest.h>

namespace gsk::cli {
namespace {

TEST(TableTest, AlignsColumnsToTheWidestCell) {
  Table table({{"NAME"}, {"N", Align::kRight}, {"STATUS"}});
  table.AddRow({"a", "1", "ready"});
  table.AddRow({"long-name", "123", "pending"});
  EXPECT_EQ(table.Render(),
            "NAME         N  STATUS\n"
            "a            1  ready\n"
            "long-name  123  pending\n");
}

TEST(TableTest, HeaderOnlyWhenEmpty) {
  Table table({{"NAME"}, {"TYPE"}});
  EXPECT_EQ(table.row_count(), 0u);
  EXPECT_EQ(table.Render(), "NAME  TYPE\n");
}

TEST(TableTest, PadsShortRowsAndDropsExtraCells) {
  Table table({{"A"}, {"B"}});
  table.AddRow({"x"});
  table.AddRow({"1", "2", "3"});
  EXPECT_EQ(table.Render(), "A  B\nx\n1  2\n");
}

TEST(TableTest, CountsUtf8CodePointsNotBytes) {
  EXPECT_EQ(DisplayWidth("héllo"), 5u);
  Table table({{"NAME"}, {"X"}});
  table.AddRow({"café", "1"});
  EXPECT_EQ(table.Render(), "NAME  X\ncafé  1\n");
}

TEST(TableTest, NoTrailingSpacesOnLeftAlignedLastColumn) {
  Table table({{"A"}, {"LONG-HEADER"}});
  table.AddRow({"x", "y"});
  std::string out = table.Render();
  EXPECT_EQ(out.find(" \n"), std::string::npos) << out;
}

}  // namespace
}  // namespace gsk::cli
