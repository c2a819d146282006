// JsonEnvelope: the top level of a JSON object, found without building its values: each
// member's key and the exact bytes of its value. The whole text is validated as it is scanned
// (RFC 8259 syntax, UTF-8, nesting depth, no duplicate keys at the top), so that a value that
// passes can be copied into another document unchanged. This is how the relay forwards a model
// call's rows and a worker's predictions without decoding and re-encoding them. Pure functions
// and value types; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace gsk::protocol {

enum class JsonKind { kObject, kArray, kString, kNumber, kTrue, kFalse, kNull };

struct JsonMember {
  std::string key;         // decoded
  std::string_view value;  // the value's bytes in the scanned text (a view into it)
  JsonKind kind = JsonKind::kNull;
};

class JsonEnvelope {
 public:
  // kInvalidArgument saying where and what for anything that is not one JSON object (with
  // optional surrounding whitespace) nesting at most `max_depth` deep, or that repeats a key at
  // its top level. The envelope holds views into `text`: keep the text alive.
  static Result<JsonEnvelope> Scan(std::string_view text, int max_depth = 64);

  const std::vector<JsonMember>& members() const { return members_; }
  // The member named `key`, or nullptr.
  const JsonMember* Find(std::string_view key) const;

 private:
  std::vector<JsonMember> members_;
};

// The text of a JSON string value, quotes included (as JsonMember::value holds it), decoded.
// kInvalidArgument if it is not one.
Result<std::string> DecodeJsonString(std::string_view json);

// `text` as a JSON string value, quotes included.
std::string EncodeJsonString(std::string_view text);

}  // namespace gsk::protocol
