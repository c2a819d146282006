// The data of `giskard-supervisor predict`: a CSV or JSON file turned into the rows of a model
// call, and the answer turned into a table. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace gsk::cli {

// {"columns": [...], "rows": [[...]]} or {"records": [...]} from `text`, which is JSON (an
// object with "rows"/"records", an array of objects, or an array of arrays) or CSV with a
// header line (RFC 4180 quoting; numbers become numbers, empty fields null). kInvalidArgument
// naming the line or element that is wrong.
Result<nlohmann::json> ReadPredictData(std::string_view text);

// One line per row: its number, the prediction, and one column per class with its
// probability when the answer has them.
std::string RenderPredictions(const nlohmann::json& answer);

}  // namespace gsk::cli
