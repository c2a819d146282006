// Table: a plain-text table for terminals, with a header row and per-column alignment, columns
// separated by two spaces and padded by their display width (UTF-8 aware, one cell per code
// point). A value type; not synchronized.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gsk::cli {

enum class Align { kLeft, kRight };

class Table {
 public:
  struct Column {
    std::string header;
    Align align = Align::kLeft;
  };

  explicit Table(std::vector<Column> columns);

  // A row with fewer cells than columns is padded with empty cells; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  std::size_t row_count() const { return rows_.size(); }

  // Header line, then one line per row, each ending in '\n'. No trailing spaces on any line.
  std::string Render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// The number of terminal cells `text` takes, counting one per UTF-8 code point.
std::size_t DisplayWidth(std::string_view text);

}  // namespace gsk::cli
