// PEP 440 version specifier lists (">=1.0, <2", "==1.4.*", "~=2.2"), with the clause-level rules
// of `packaging`: wildcards only with == and !=, local versions only with == and !=, "~=" with
// at least two release parts, "===" taking any text.
#include <algorithm>
#include <array>
#include <vector>

#include "kernel-spec/parse_internal.h"
#include "kernel-spec/pep440.h"

namespace gsk::spec::internal {
namespace {

bool EndsToken(char c) { return c == ',' || c == ';' || c == ')' || IsBlank(c) || c == '\0'; }

Status SpecError(std::string message) { return InvalidArgument(std::move(message)); }

Result<std::string> ParseOperator(Scanner& s, std::string_view name) {
  static constexpr std::array<std::string_view, 8> kOps = {
      "===", "~=", "==", "!=", "<=", ">=", "<", ">"};
  for (std::string_view op : kOps) {
    if (s.Consume(op)) return std::string(op);
  }
  if (s.Peek() == '=') {
    s.Advance();
    std::string_view version = s.TakeWhile([](char c) { return !EndsToken(c); });
    return SpecError("\"=\" is not a version operator; use \"==\" for an exact version (" +
                     EscapeInvalidUtf8(std::string(name) + "==" + std::string(version)) + ")");
  }
  if (s.Peek() == '!' || s.Peek() == '~') {
    return SpecError(Quote(std::string(1, s.Peek())) + " must be followed by \"=\" (!= or ~=)");
  }
  return SpecError("expected a version operator (==, !=, <, <=, >, >=, ~=, ===) before " +
                   Quote(s.Rest(), 40));
}

Result<std::string> ParseWildcardClause(const std::string& op, std::string_view version) {
  std::string_view prefix = version.substr(0, version.size() - 2);
  if (op != "==" && op != "!=") {
    return SpecError(Quote(op + std::string(version)) +
                     ": a \".*\" wildcard only works with == or !=; write it as ==" +
                     std::string(version) + " or drop the \".*\"");
  }
  auto parsed = ParseVersion(prefix);
  if (prefix.find('*') != std::string_view::npos || !parsed || !parsed->HasOnlyRelease()) {
    return SpecError(Quote(op + std::string(version)) +
                     ": a wildcard must follow release numbers and come last, as in ==1.4.*");
  }
  return op + parsed->ToString() + ".*";
}

Result<std::string> ParseClause(Scanner& s, std::string_view name) {
  s.SkipBlanks();
  GSK_ASSIGN_OR_RETURN(std::string op, ParseOperator(s, name));
  s.SkipBlanks();
  std::string_view version = s.TakeWhile([](char c) { return !EndsToken(c); });
  if (version.empty()) {
    return SpecError("\"" + op + "\" needs a version after it, as in " + std::string(name) + op +
                     "1.0");
  }
  if (op == "===") return op + std::string(version);  // arbitrary equality: kept verbatim
  if (version.ends_with(".*")) return ParseWildcardClause(op, version);
  std::string clause = Quote(op + std::string(version));
  if (version.find('*') != std::string_view::npos) {
    return SpecError(clause + ": \"*\" may only end a version as \".*\", with == or !=");
  }
  auto parsed = ParseVersion(version);
  if (!parsed) {
    return SpecError(clause + ": " + Quote(version) +
                     " is not a valid version (PEP 440); versions look like 1.0, 2.1.3, "
                     "1.0rc1, 1.0.post1 or 1!2.0");
  }
  if (!parsed->local.empty() && op != "==" && op != "!=") {
    return SpecError(clause + ": a local version label (\"+...\") only works with == or !=");
  }
  if (op == "~=" && parsed->release.size() < 2) {
    return SpecError(clause + ": ~= needs at least two version parts, as in ~=" +
                     parsed->ToString() + ".0 (or use >=" + parsed->ToString() + ")");
  }
  return op + parsed->ToString();
}

}  // namespace

Result<std::string> ParseSpecifierList(Scanner& s, std::string_view name) {
  s.SkipBlanks();
  if (s.AtEnd() || s.Peek() == ';' || s.Peek() == ')') return std::string();
  std::vector<std::string> clauses;
  do {
    s.SkipBlanks();
    if (s.AtEnd() || s.Peek() == ',' || s.Peek() == ';' || s.Peek() == ')') {
      return SpecError("a version clause is empty between commas; remove the extra \",\"");
    }
    GSK_ASSIGN_OR_RETURN(std::string clause, ParseClause(s, name));
    clauses.push_back(std::move(clause));
    s.SkipBlanks();
  } while (s.Consume(','));
  std::sort(clauses.begin(), clauses.end());
  clauses.erase(std::unique(clauses.begin(), clauses.end()), clauses.end());
  std::string out;
  for (const std::string& clause : clauses) out += (out.empty() ? "" : ",") + clause;
  return out;
}

}  // namespace gsk::spec::internal
