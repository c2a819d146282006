// Small text helpers shared by the kernel-spec parsers (requirement lines, versions, markers):
// ASCII classification, a cursor over text, and quoting for error messages.
// Pure functions and value types: thread-safe; a Scanner is not synchronized.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace gsk::spec::internal {

inline bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool IsAsciiAlnum(char c) { return IsAsciiDigit(c) || IsAsciiAlpha(c); }
inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }
inline char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string ToLower(std::string_view text);
std::string_view Trim(std::string_view text);  // spaces, tabs, "\r" and "\n" at both ends

// Quotes `text` for a message: "...", with quotes, backslashes, control characters and invalid
// UTF-8 escaped so that the message is always valid UTF-8; longer text is cut with "...".
std::string Quote(std::string_view text, std::size_t max_bytes = 80);

// `text` with control characters and bytes that are not valid UTF-8 written as "\xNN".
std::string EscapeInvalidUtf8(std::string_view text);

// A cursor over text. Peek() past the end returns '\0'.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek(std::size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  std::size_t pos() const { return pos_; }
  void Reset(std::size_t pos) { pos_ = std::min(pos, text_.size()); }
  void Advance(std::size_t n = 1) { Reset(pos_ + n); }
  std::string_view Rest() const { return text_.substr(pos_); }
  std::string_view Slice(std::size_t from) const { return text_.substr(from, pos_ - from); }

  bool SkipBlanks() {
    std::size_t start = pos_;
    while (!AtEnd() && IsBlank(text_[pos_])) ++pos_;
    return pos_ > start;
  }
  bool Consume(char c) {
    if (AtEnd() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool Consume(std::string_view s) {
    if (!Rest().starts_with(s)) return false;
    pos_ += s.size();
    return true;
  }
  template <typename Pred>
  std::string_view TakeWhile(Pred pred) {
    std::size_t start = pos_;
    while (!AtEnd() && pred(text_[pos_])) ++pos_;
    return Slice(start);
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace gsk::spec::internal
