#include "supervisor/cli/predict_data.h"

#include <charconv>
#include <cstdio>
#include <vector>

#include "supervisor/cli/table.h"

namespace gsk::cli {
namespace {

using nlohmann::json;

// One CSV record from `text` at `pos` (RFC 4180: quoted fields may hold commas, quotes as "",
// and newlines). Returns false at the end of the text.
Result<bool> NextRecord(std::string_view text, size_t* pos, int line,
                        std::vector<std::pair<std::string, bool>>* fields) {
  fields->clear();
  if (*pos >= text.size()) return false;
  std::string field;
  bool quoted = false;
  bool in_quotes = false;
  while (*pos < text.size()) {
    char c = text[(*pos)++];
    if (in_quotes) {
      if (c != '"') {
        field.push_back(c);
      } else if (*pos < text.size() && text[*pos] == '"') {
        field.push_back('"');
        ++*pos;
      } else {
        in_quotes = false;
      }
      continue;
    }
    if (c == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
    } else if (c == ',') {
      fields->emplace_back(std::move(field), quoted);
      field.clear();
      quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && *pos < text.size() && text[*pos] == '\n') ++*pos;
      break;
    } else {
      field.push_back(c);
    }
  }
  if (in_quotes) {
    return InvalidArgument("line " + std::to_string(line) + ": a quoted field is not closed");
  }
  fields->emplace_back(std::move(field), quoted);
  return true;
}

json CsvValue(const std::string& text, bool quoted) {
  if (quoted) return text;
  if (text.empty()) return nullptr;
  int64_t i = 0;
  auto [ip, iec] = std::from_chars(text.data(), text.data() + text.size(), i);
  if (iec == std::errc() && ip == text.data() + text.size()) return i;
  double d = 0;
  auto [dp, dec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (dec == std::errc() && dp == text.data() + text.size()) return d;
  return text;
}

Result<json> ReadCsv(std::string_view text) {
  size_t pos = 0;
  std::vector<std::pair<std::string, bool>> fields;
  GSK_ASSIGN_OR_RETURN(bool any, NextRecord(text, &pos, 1, &fields));
  if (!any) return InvalidArgument("the CSV data is empty; its first line names the columns");
  json columns = json::array();
  for (auto& [name, quoted] : fields) columns.push_back(name);
  json rows = json::array();
  for (int line = 2;; ++line) {
    GSK_ASSIGN_OR_RETURN(bool more, NextRecord(text, &pos, line, &fields));
    if (!more) break;
    if (fields.size() == 1 && fields[0].first.empty() && !fields[0].second) continue;  // blank
    if (fields.size() != columns.size()) {
      return InvalidArgument("line " + std::to_string(line) + " has " +
                             std::to_string(fields.size()) + " fields; the header has " +
                             std::to_string(columns.size()));
    }
    json row = json::array();
    for (auto& [value, quoted] : fields) row.push_back(CsvValue(value, quoted));
    rows.push_back(std::move(row));
  }
  return json{{"columns", std::move(columns)}, {"rows", std::move(rows)}};
}

std::string Cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v.get<double>());
    return buf;
  }
  return v.dump();
}

}  // namespace

Result<json> ReadPredictData(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return InvalidArgument("the data is empty");
  if (text[first] != '{' && text[first] != '[') return ReadCsv(text);
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return InvalidArgument("the data starts like JSON but is not valid JSON");
  }
  if (doc.is_object()) {
    if (!doc.contains("rows") && !doc.contains("records")) {
      return InvalidArgument("the JSON object has neither \"rows\" (with \"columns\") nor "
                             "\"records\"");
    }
    json out = json::object();
    for (const char* key : {"columns", "rows", "records"}) {
      if (doc.contains(key)) out[key] = doc[key];
    }
    return out;
  }
  if (doc.empty() || doc[0].is_object()) return json{{"records", doc}};
  if (doc[0].is_array()) return json{{"rows", doc}};
  return InvalidArgument("the JSON array must hold objects (records) or arrays (rows)");
}

std::string RenderPredictions(const json& answer) {
  const json& predictions = answer.value("predictions", json::array());
  const json& probabilities = answer.value("probabilities", json::array());
  const json& classes = answer.value("classes", json::array());
  std::vector<Table::Column> columns = {{"#", Align::kRight}, {"prediction", Align::kLeft}};
  for (const json& c : classes) columns.push_back({"p(" + Cell(c) + ")", Align::kRight});
  Table table(std::move(columns));
  for (size_t i = 0; i < predictions.size(); ++i) {
    std::vector<std::string> cells = {std::to_string(i), Cell(predictions[i])};
    if (i < probabilities.size() && probabilities[i].is_array()) {
      for (const json& p : probabilities[i]) cells.push_back(Cell(p));
    }
    table.AddRow(std::move(cells));
  }
  return table.Render();
}

}  // namespace gsk::cli
