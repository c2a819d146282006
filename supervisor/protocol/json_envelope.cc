#include "supervisor/protocol/json_envelope.h"

#include <cstdint>

namespace gsk::protocol {
namespace {

// A validating scanner over the text: each Skip* consumes one JSON element and reports the
// first error with its byte offset.
class Scanner {
 public:
  Scanner(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  Status ScanTop(std::vector<JsonMember>* members);

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) {
      ++pos_;
    }
  }
  Status Error(const std::string& what) const {
    return InvalidArgument("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }
  Status SkipValue(int depth, JsonKind* kind);
  Status SkipObject(int depth);
  Status SkipArray(int depth);
  Status SkipString(std::string* decoded);
  Status SkipNumber();
  Status SkipLiteral(std::string_view word);
  Status SkipUtf8();

  std::string_view text_;
  int max_depth_;
  size_t pos_ = 0;
};

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status Scanner::ScanTop(std::vector<JsonMember>* members) {
  SkipSpace();
  if (AtEnd() || Peek() != '{') return Error("the document must be a JSON object");
  ++pos_;
  SkipSpace();
  if (!AtEnd() && Peek() == '}') {
    ++pos_;
  } else {
    while (true) {
      SkipSpace();
      if (AtEnd() || Peek() != '"') return Error("expected a member name in double quotes");
      JsonMember member;
      GSK_RETURN_IF_ERROR(SkipString(&member.key));
      for (const JsonMember& seen : *members) {
        if (seen.key == member.key) return Error("the member \"" + member.key + "\" appears twice");
      }
      SkipSpace();
      if (AtEnd() || Peek() != ':') return Error("expected ':' after a member name");
      ++pos_;
      SkipSpace();
      size_t start = pos_;
      GSK_RETURN_IF_ERROR(SkipValue(1, &member.kind));
      member.value = text_.substr(start, pos_ - start);
      members->push_back(std::move(member));
      SkipSpace();
      if (AtEnd()) return Error("the object is not closed");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != '}') return Error("expected ',' or '}'");
      ++pos_;
      break;
    }
  }
  SkipSpace();
  if (!AtEnd()) return Error("unexpected text after the object");
  return Status::Ok();
}

Status Scanner::SkipValue(int depth, JsonKind* kind) {
  if (AtEnd()) return Error("expected a value");
  switch (Peek()) {
    case '{': *kind = JsonKind::kObject; return SkipObject(depth + 1);
    case '[': *kind = JsonKind::kArray; return SkipArray(depth + 1);
    case '"': *kind = JsonKind::kString; return SkipString(nullptr);
    case 't': *kind = JsonKind::kTrue; return SkipLiteral("true");
    case 'f': *kind = JsonKind::kFalse; return SkipLiteral("false");
    case 'n': *kind = JsonKind::kNull; return SkipLiteral("null");
    default: *kind = JsonKind::kNumber; return SkipNumber();
  }
}

Status Scanner::SkipObject(int depth) {
  if (depth > max_depth_) return Error("nested deeper than " + std::to_string(max_depth_));
  ++pos_;  // '{'
  SkipSpace();
  if (!AtEnd() && Peek() == '}') {
    ++pos_;
    return Status::Ok();
  }
  JsonKind kind;
  while (true) {
    SkipSpace();
    if (AtEnd() || Peek() != '"') return Error("expected a member name in double quotes");
    GSK_RETURN_IF_ERROR(SkipString(nullptr));
    SkipSpace();
    if (AtEnd() || Peek() != ':') return Error("expected ':' after a member name");
    ++pos_;
    SkipSpace();
    GSK_RETURN_IF_ERROR(SkipValue(depth, &kind));
    SkipSpace();
    if (AtEnd()) return Error("an object is not closed");
    if (Peek() == '}') {
      ++pos_;
      return Status::Ok();
    }
    if (Peek() != ',') return Error("expected ',' or '}'");
    ++pos_;
  }
}

Status Scanner::SkipArray(int depth) {
  if (depth > max_depth_) return Error("nested deeper than " + std::to_string(max_depth_));
  ++pos_;  // '['
  SkipSpace();
  if (!AtEnd() && Peek() == ']') {
    ++pos_;
    return Status::Ok();
  }
  JsonKind kind;
  while (true) {
    SkipSpace();
    GSK_RETURN_IF_ERROR(SkipValue(depth, &kind));
    SkipSpace();
    if (AtEnd()) return Error("an array is not closed");
    if (Peek() == ']') {
      ++pos_;
      return Status::Ok();
    }
    if (Peek() != ',') return Error("expected ',' or ']'");
    ++pos_;
  }
}

// One UTF-8 sequence starting at a byte >= 0x80: no overlong forms, no surrogates, <= U+10FFFF.
Status Scanner::SkipUtf8() {
  auto byte = [this](size_t i) { return static_cast<unsigned char>(text_[pos_ + i]); };
  unsigned char b0 = byte(0);
  size_t n = 0;
  uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    cp = b0 & 0x0Fu;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    cp = b0 & 0x07u;
  } else {
    return Error("invalid UTF-8");
  }
  if (pos_ + n > text_.size()) return Error("truncated UTF-8");
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return Error("invalid UTF-8");
    cp = (cp << 6) | (byte(i) & 0x3Fu);
  }
  bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return Error("invalid UTF-8");
  pos_ += n;
  return Status::Ok();
}

Status Scanner::SkipString(std::string* decoded) {
  ++pos_;  // '"'
  while (true) {
    size_t run = pos_;
    // The common case: plain ASCII up to the closing quote or an escape.
    while (!AtEnd()) {
      auto c = static_cast<unsigned char>(Peek());
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++pos_;
    }
    if (decoded != nullptr) decoded->append(text_.substr(run, pos_ - run));
    if (AtEnd()) return Error("a string is not closed");
    auto c = static_cast<unsigned char>(Peek());
    if (c == '"') {
      ++pos_;
      return Status::Ok();
    }
    if (c < 0x20) return Error("a control character in a string (escape it)");
    if (c >= 0x80) {
      size_t start = pos_;
      GSK_RETURN_IF_ERROR(SkipUtf8());
      if (decoded != nullptr) decoded->append(text_.substr(start, pos_ - start));
      continue;
    }
    // A backslash escape.
    if (pos_ + 1 >= text_.size()) return Error("a string is not closed");
    char e = text_[pos_ + 1];
    pos_ += 2;
    static constexpr std::string_view kSimple = "\"\\/bfnrt";
    static constexpr std::string_view kMeaning = "\"\\/\b\f\n\r\t";
    if (size_t i = kSimple.find(e); i != std::string_view::npos) {
      if (decoded != nullptr) decoded->push_back(kMeaning[i]);
      continue;
    }
    if (e != 'u') return Error("an invalid escape in a string");
    if (pos_ + 4 > text_.size()) return Error("a truncated \\u escape");
    uint32_t cp = 0;
    for (size_t i = 0; i < 4; ++i) {
      int v = HexValue(text_[pos_ + i]);
      if (v < 0) return Error("an invalid \\u escape");
      cp = cp * 16 + static_cast<uint32_t>(v);
    }
    pos_ += 4;
    if (decoded != nullptr) {
      // A surrogate pair is one character; a lone surrogate becomes U+FFFD.
      if (cp >= 0xD800 && cp <= 0xDBFF && pos_ + 6 <= text_.size() && text_[pos_] == '\\' &&
          text_[pos_ + 1] == 'u') {
        uint32_t low = 0;
        bool ok = true;
        for (size_t i = 0; i < 4; ++i) {
          int v = HexValue(text_[pos_ + 2 + i]);
          ok = ok && v >= 0;
          low = low * 16 + static_cast<uint32_t>(v < 0 ? 0 : v);
        }
        if (ok && low >= 0xDC00 && low <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          pos_ += 6;
        }
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
      AppendUtf8(cp, decoded);
    }
  }
}

Status Scanner::SkipNumber() {
  size_t start = pos_;
  auto digit = [this] { return !AtEnd() && Peek() >= '0' && Peek() <= '9'; };
  if (!AtEnd() && Peek() == '-') ++pos_;
  if (!digit()) return Error("expected a value");
  if (Peek() == '0') {
    ++pos_;
  } else {
    while (digit()) ++pos_;
  }
  if (!AtEnd() && Peek() == '.') {
    ++pos_;
    if (!digit()) return Error("a number needs digits after '.'");
    while (digit()) ++pos_;
  }
  if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
    ++pos_;
    if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
    if (!digit()) return Error("a number needs digits in its exponent");
    while (digit()) ++pos_;
  }
  if (pos_ == start) return Error("expected a value");
  return Status::Ok();
}

Status Scanner::SkipLiteral(std::string_view word) {
  if (text_.substr(pos_, word.size()) != word) return Error("expected a value");
  pos_ += word.size();
  return Status::Ok();
}

}  // namespace

Result<JsonEnvelope> JsonEnvelope::Scan(std::string_view text, int max_depth) {
  JsonEnvelope envelope;
  Scanner scanner(text, max_depth);
  GSK_RETURN_IF_ERROR(scanner.ScanTop(&envelope.members_));
  return envelope;
}

const JsonMember* JsonEnvelope::Find(std::string_view key) const {
  for (const JsonMember& m : members_) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

Result<std::string> DecodeJsonString(std::string_view json) {
  // Scanned as the only member name of an object, with the same rules as every other string.
  std::string as_key = "{" + std::string(json) + ":0}";
  Result<JsonEnvelope> envelope = JsonEnvelope::Scan(as_key);
  if (!envelope.ok() || envelope->members().size() != 1) {
    return InvalidArgument("not a JSON string");
  }
  return envelope->members().front().key;
}

std::string EncodeJsonString(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace gsk::protocol
