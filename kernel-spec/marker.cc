// PEP 508 environment markers, by recursive descent:
//   or_expr := and_expr ("or" and_expr)*     and_expr := atom ("and" atom)*
//   atom := "(" or_expr ")" | operand op operand
// The canonical text keeps the grouping of the source, drops parentheses that group a single
// comparison or the whole marker, and puts single spaces around operators.
#include <array>
#include <optional>

#include "kernel-spec/parse_internal.h"
#include "kernel-spec/pep440.h"

namespace gsk::spec::internal {
namespace {

constexpr int kMaxDepth = 32;

constexpr std::array<std::string_view, 12> kVariables = {
    "python_version",      "python_full_version",    "os_name",
    "sys_platform",        "platform_release",       "platform_system",
    "platform_version",    "platform_machine",       "platform_python_implementation",
    "implementation_name", "implementation_version", "extra"};

struct Legacy {
  std::string_view old_name;
  std::string_view new_name;
};
constexpr std::array<Legacy, 6> kLegacyVariables = {{
    {"os.name", "os_name"},
    {"sys.platform", "sys_platform"},
    {"platform.version", "platform_version"},
    {"platform.machine", "platform_machine"},
    {"platform.python_implementation", "platform_python_implementation"},
    {"python_implementation", "platform_python_implementation"},
}};

bool IsVersionVariable(std::string_view v) {
  return v == "python_version" || v == "python_full_version" || v == "implementation_version";
}

bool IsIdentChar(char c) { return IsAsciiAlnum(c) || c == '_' || c == '.'; }

struct Expr {
  std::string text;       // as printed inside a larger expression
  std::string inner;      // without the outer parentheses when the expression is a group
  bool compound = false;  // an unparenthesized "and"/"or"
};

struct Operand {
  std::string text;
  std::string value;  // the string's content, or the variable's name
  bool is_variable = false;
};

Status MarkerError(std::string message) { return InvalidArgument("in the marker, " + message); }

class MarkerParser {
 public:
  explicit MarkerParser(std::string_view text) : s_(text) {}

  Result<std::string> Parse() {
    GSK_ASSIGN_OR_RETURN(Expr e, ParseBinary(0, false));
    s_.SkipBlanks();
    if (!s_.AtEnd()) {
      return MarkerError("unexpected " + Quote(s_.Rest(), 40) +
                         "; join conditions with \"and\" or \"or\"");
    }
    return e.inner;
  }

 private:
  bool ConsumeKeyword(std::string_view keyword) {
    std::size_t start = s_.pos();
    s_.SkipBlanks();
    if (s_.Consume(keyword) && !IsIdentChar(s_.Peek())) return true;
    s_.Reset(start);
    return false;
  }

  // and_expr when `is_and`, else or_expr.
  Result<Expr> ParseBinary(int depth, bool is_and) {
    auto operand = [&]() { return is_and ? ParseAtom(depth) : ParseBinary(depth, true); };
    std::string_view keyword = is_and ? "and" : "or";
    GSK_ASSIGN_OR_RETURN(Expr left, operand());
    while (ConsumeKeyword(keyword)) {
      GSK_ASSIGN_OR_RETURN(Expr right, operand());
      left.text += " " + std::string(keyword) + " " + right.text;
      left.inner = left.text;
      left.compound = true;
    }
    return left;
  }

  Result<Expr> ParseAtom(int depth) {
    s_.SkipBlanks();
    if (!s_.Consume('(')) return ParseComparison();
    if (depth >= kMaxDepth) return MarkerError("parentheses are nested too deeply; simplify it");
    GSK_ASSIGN_OR_RETURN(Expr e, ParseBinary(depth + 1, false));
    s_.SkipBlanks();
    if (!s_.Consume(')')) return MarkerError("a \"(\" is not closed; add the missing \")\"");
    if (!e.compound) return e;
    return Expr{"(" + e.text + ")", e.text, false};
  }

  Result<Expr> ParseComparison() {
    GSK_ASSIGN_OR_RETURN(Operand left, ParseOperand());
    GSK_ASSIGN_OR_RETURN(std::string op, ParseOperator());
    GSK_ASSIGN_OR_RETURN(Operand right, ParseOperand());
    if (left.is_variable == right.is_variable) {
      return MarkerError(
          "each comparison needs one marker variable and one quoted string, as "
          "in python_version >= \"3.9\"");
    }
    const Operand& var = left.is_variable ? left : right;
    const Operand& value = left.is_variable ? right : left;
    if (IsVersionVariable(var.value)) {
      GSK_RETURN_IF_ERROR(CheckVersionValue(var, op, value, left.is_variable));
    }
    std::string text = left.text + " " + op + " " + right.text;
    return Expr{text, text, false};
  }

  // With the variable on the left, packaging evaluates `variable op "value"` as the specifier
  // op+value, so that must be a valid specifier; on the right, the value must be a version.
  static Status CheckVersionValue(const Operand& var, const std::string& op, const Operand& value,
                                  bool variable_first) {
    if (op == "in" || op == "not in" || op == "===") return Status::Ok();
    bool valid = false;
    if (variable_first) {
      std::string clause = op + value.value;
      Scanner s(clause);
      valid = ParseSpecifierList(s, var.value).ok() && s.AtEnd();
    } else {
      valid = ParseVersion(value.value).has_value();
    }
    if (valid) return Status::Ok();
    return MarkerError(var.value + " " + op + " " + Quote(value.value) +
                       " does not compare with a valid version; write a version such as "
                       "\"3.9\" (\"3.*\" only with == or !=, ~= with two parts such as "
                       "\"3.8\")");
  }

  Result<Operand> ParseOperand() {
    s_.SkipBlanks();
    char quote = s_.Peek();
    if (quote == '"' || quote == '\'') {
      s_.Advance();
      std::string_view content = s_.TakeWhile([quote](char c) { return c != quote; });
      if (!s_.Consume(quote)) {
        return MarkerError("a quoted string is not closed; add the missing " +
                           std::string(1, quote));
      }
      char q = content.find('"') == std::string_view::npos ? '"' : '\'';
      return Operand{q + std::string(content) + q, std::string(content), false};
    }
    std::string_view word = s_.TakeWhile(IsIdentChar);
    if (word.empty()) {
      return MarkerError(
          "expected a marker variable such as python_version or a quoted "
          "string, found " +
          (s_.AtEnd() ? "the end" : Quote(s_.Rest(), 40)));
    }
    if (IsAsciiDigit(word.front())) {
      return MarkerError(Quote(word) + " must be quoted, as in python_version >= \"3.9\"");
    }
    for (std::string_view known : kVariables) {
      if (word == known) return Operand{std::string(word), std::string(word), true};
    }
    for (const Legacy& legacy : kLegacyVariables) {
      if (word == legacy.old_name) {
        return Operand{std::string(legacy.new_name), std::string(legacy.new_name), true};
      }
    }
    return MarkerError(Quote(word) +
                       " is not a marker variable; use one of python_version, "
                       "python_full_version, os_name, sys_platform, platform_system, "
                       "platform_machine, platform_release, platform_version, "
                       "platform_python_implementation, implementation_name, "
                       "implementation_version, extra (and quote literal values)");
  }

  Result<std::string> ParseOperator() {
    s_.SkipBlanks();
    static constexpr std::array<std::string_view, 8> kOps = {
        "===", "==", "!=", "<=", ">=", "~=", "<", ">"};
    for (std::string_view op : kOps) {
      if (s_.Consume(op)) return std::string(op);
    }
    if (ConsumeKeyword("in")) return std::string("in");
    std::size_t start = s_.pos();
    if (ConsumeKeyword("not") && ConsumeKeyword("in")) return std::string("not in");
    s_.Reset(start);
    if (s_.Peek() == '=') {
      return MarkerError("\"=\" is not a comparison; use \"==\"");
    }
    return MarkerError("expected a comparison (==, !=, <, <=, >, >=, ~=, in, not in), found " +
                       (s_.AtEnd() ? std::string("the end") : Quote(s_.Rest(), 40)));
  }

  Scanner s_;
};

}  // namespace

Result<std::string> NormalizeMarker(std::string_view text) {
  if (Trim(text).empty()) {
    return InvalidArgument(
        "nothing follows \";\"; remove it or add a marker such as "
        "python_version >= \"3.9\"");
  }
  return MarkerParser(text).Parse();
}

}  // namespace gsk::spec::internal
