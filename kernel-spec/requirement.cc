// Requirement lines: classification (pip option, direct URL, local path, PEP 508 requirement)
// and the name-based grammar  name [extras] (specifiers | "@" url) [";" marker].
#include "kernel-spec/requirement.h"

#include <algorithm>

#include "kernel-spec/parse_internal.h"

namespace gsk::spec {
namespace {

using internal::IsAsciiAlnum;
using internal::IsAsciiAlpha;
using internal::IsBlank;
using internal::IsFileUrl;
using internal::IsValidUrl;
using internal::LooksLikeLocalPath;
using internal::Quote;
using internal::Scanner;
using internal::StartsWithUrlScheme;

bool IsNameChar(char c) { return IsAsciiAlnum(c) || c == '-' || c == '_' || c == '.'; }

Status LineError(std::string_view text, const std::string& problem) {
  return InvalidArgument(Quote(text) + ": " + problem);
}

Status CheckCharacters(std::string_view line) {
  if (line.size() > kMaxRequirementLineLength) {
    return InvalidArgument(
        Quote(line, 40) + " is " + std::to_string(line.size()) + " characters long; at most " +
        std::to_string(kMaxRequirementLineLength) + " are allowed per requirement");
  }
  for (char c : line) {
    auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && c != '\t') || b == 0x7F) {
      return InvalidArgument(Quote(line) + " contains a control character (" +
                             Quote(std::string_view(&c, 1)) +
                             "); write one requirement per line in plain text");
    }
  }
  return Status::Ok();
}

Status DisallowedUrl(std::string_view text, std::string_view url) {
  if (IsFileUrl(url)) {
    return InvalidArgument(Quote(text) +
                           " is a local path; files on the client's machine are "
                           "not visible to the supervisor (publish the package to the package "
                           "index and require it by name, as in pkg==1.0)");
  }
  return InvalidArgument(Quote(text) +
                         " is a direct URL; direct URLs bypass the configured "
                         "package index (publish the package to the index and require it by "
                         "name, as in pkg==1.0, or ask the administrator to allow direct URLs)");
}

bool UrlAllowed(std::string_view url, const ParseOptions& options) {
  return IsFileUrl(url) ? options.allow_local_paths : options.allow_direct_urls;
}

Result<Requirement> ParseOptionLine(std::string_view text, Requirement req,
                                    const ParseOptions& options) {
  if (!options.allow_pip_options) {
    return InvalidArgument(Quote(text) +
                           " is a pip option; options are not allowed in "
                           "requirements (configure [packages] index settings)");
  }
  std::string_view flag = text.substr(text.starts_with("--") ? 2 : 1);
  if (flag.empty() || !IsAsciiAlpha(flag.front())) {
    return LineError(text, "is neither a requirement nor a pip option; remove the leading \"-\"");
  }
  for (char c : text) {
    if (!IsBlank(c)) {
      req.option += c;
    } else if (!req.option.empty() && req.option.back() != ' ') {
      req.option += ' ';
    }
  }
  return req;
}

// A bare URL or path, with an optional " ; marker" after it.
Result<Requirement> ParseLocation(std::string_view text, Requirement req, bool is_path) {
  std::size_t split = is_path ? text.find(" ;") : text.find_first_of(" \t");
  req.url = std::string(internal::Trim(text.substr(0, split)));
  if (split == std::string_view::npos) return req;
  Scanner s(text.substr(split));
  s.SkipBlanks();
  if (!s.Consume(';')) {
    return LineError(text, "unexpected " + Quote(s.Rest(), 40) +
                               " after the URL; only \" ; "
                               "marker\" may follow it");
  }
  GSK_ASSIGN_OR_RETURN(req.marker, internal::NormalizeMarker(s.Rest()));
  return req;
}

Status ParseName(Scanner& s, std::string_view text, Requirement& req) {
  std::string_view name = s.TakeWhile(IsNameChar);
  if (name.empty()) {
    if (std::string_view("<>=!~(").find(text.front()) != std::string_view::npos) {
      return LineError(text,
                       "the package name is missing; write the name before the version, "
                       "as in numpy>=1.26");
    }
    return LineError(text,
                     "does not start with a package name; names use letters, digits, "
                     "\"-\", \"_\" and \".\"");
  }
  if (!IsAsciiAlnum(name.front()) || !IsAsciiAlnum(name.back())) {
    return LineError(text, Quote(name) +
                               " is not a valid package name; a name starts and "
                               "ends with a letter or digit");
  }
  req.name = CanonicalizeName(name);
  return Status::Ok();
}

Status ParseExtras(Scanner& s, std::string_view text, Requirement& req) {
  s.Consume('[');
  s.SkipBlanks();
  while (!s.Consume(']')) {
    s.SkipBlanks();
    std::string_view extra = s.TakeWhile(IsNameChar);
    if (extra.empty() || !IsAsciiAlnum(extra.front()) || !IsAsciiAlnum(extra.back())) {
      if (s.AtEnd()) {
        return LineError(text, "the extras list is not closed; add \"]\", as in pkg[extra]");
      }
      return LineError(text,
                       "extras are names separated by commas, as in pkg[extra1,extra2]; "
                       "found " +
                           Quote(extra.empty() ? s.Rest() : extra, 40));
    }
    req.extras.push_back(CanonicalizeName(extra));
    s.SkipBlanks();
    if (s.Consume(',')) continue;
    if (s.Peek() != ']') {
      return LineError(text, s.AtEnd() ? std::string("the extras list is not closed; add \"]\"")
                                       : "unexpected " + Quote(s.Rest(), 40) + " in the extras");
    }
  }
  std::sort(req.extras.begin(), req.extras.end());
  req.extras.erase(std::unique(req.extras.begin(), req.extras.end()), req.extras.end());
  return Status::Ok();
}

Status ParseUrlPart(Scanner& s, std::string_view text, Requirement& req,
                    const ParseOptions& options) {
  s.SkipBlanks();
  std::string_view url = s.TakeWhile([](char c) { return !IsBlank(c); });
  if (url.empty()) return LineError(text, "nothing follows \"@\"; give a URL after it");
  if (!UrlAllowed(url, options)) return DisallowedUrl(text, url);
  if (!IsValidUrl(url)) {
    return LineError(text, Quote(url) +
                               " is not a valid URL; write it as scheme://host/path "
                               "with special characters percent-encoded");
  }
  req.url = std::string(url);
  return Status::Ok();
}

Status LeftoverError(Scanner& s, std::string_view text, std::string_view name) {
  char c = s.Peek();
  if (std::string_view("<>=!~").find(c) != std::string_view::npos) {
    return LineError(text, "version clauses must be separated by \",\", as in " +
                               std::string(name) + ">=1.0,<2");
  }
  if (IsAsciiAlnum(c)) {
    return LineError(text,
                     "unexpected " + Quote(s.Rest(), 40) + " after " + Quote(name) +
                         "; put one requirement per line, and give versions with an operator, as "
                         "in " +
                         std::string(name) + "==1.0");
  }
  return LineError(text, "unexpected " + Quote(s.Rest(), 40) +
                             "; a requirement looks like "
                             "name[extra]>=1.0,<2 ; python_version >= \"3.9\"");
}

Result<Requirement> ParseNamed(std::string_view text, Requirement req,
                               const ParseOptions& options) {
  Scanner s(text);
  GSK_RETURN_IF_ERROR(ParseName(s, text, req));
  std::string_view name = text.substr(0, s.pos());
  s.SkipBlanks();
  if (s.Peek() == '[') GSK_RETURN_IF_ERROR(ParseExtras(s, text, req));
  s.SkipBlanks();
  if (s.Consume('@')) {
    GSK_RETURN_IF_ERROR(ParseUrlPart(s, text, req, options));
  } else if (std::string_view("<>=!~(").find(s.Peek()) != std::string_view::npos) {
    bool parenthesized = s.Consume('(');
    auto spec = internal::ParseSpecifierList(s, name);
    if (!spec.ok()) return LineError(text, spec.status().message());
    req.specifier = std::move(spec).value();
    if (parenthesized && (s.SkipBlanks(), !s.Consume(')'))) {
      return LineError(text, "a \"(\" is not closed; add the missing \")\"");
    }
  }
  s.SkipBlanks();
  if (s.Consume(';')) {
    auto marker = internal::NormalizeMarker(s.Rest());
    if (!marker.ok()) return LineError(text, marker.status().message());
    req.marker = std::move(marker).value();
    return req;
  }
  if (!s.AtEnd()) return LeftoverError(s, text, name);
  return req;
}

Result<Requirement> ParseLine(std::string_view line, const ParseOptions& options) {
  GSK_RETURN_IF_ERROR(CheckCharacters(line));
  std::string_view text = internal::Trim(StripRequirementComment(line));
  if (text.empty()) {
    return InvalidArgument("the requirement is empty; write a package name such as numpy==1.26.4");
  }
  Requirement req;
  req.original = std::string(text);
  if (text.front() == '-') return ParseOptionLine(text, std::move(req), options);
  if (text.back() == '\\') {
    return LineError(text,
                     "line continuations (\"\\\" at the end) are not supported; put the "
                     "requirement on one line");
  }
  if (LooksLikeLocalPath(text)) {
    if (!options.allow_local_paths) return DisallowedUrl(text, "file:");
    return ParseLocation(text, std::move(req), true);
  }
  if (StartsWithUrlScheme(text)) {
    if (!options.allow_direct_urls) return DisallowedUrl(text, text);
    GSK_ASSIGN_OR_RETURN(req, ParseLocation(text, std::move(req), false));
    if (!IsValidUrl(req.url)) return LineError(text, Quote(req.url) + " is not a valid URL");
    return req;
  }
  return ParseNamed(text, std::move(req), options);
}

}  // namespace

std::string CanonicalizeName(std::string_view name) {
  std::string out;
  bool pending_separator = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      pending_separator = true;
      continue;
    }
    if (pending_separator) out += '-';
    pending_separator = false;
    out += internal::AsciiLower(c);
  }
  if (pending_separator) out += '-';
  return out;
}

std::string_view StripRequirementComment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || IsBlank(line[i - 1]))) return line.substr(0, i);
  }
  return line;
}

Result<Requirement> ParseRequirement(std::string_view line, const ParseOptions& options) {
  auto req = ParseLine(line, options);
  if (req.ok()) return req;
  // Messages quote the input; make sure that whatever they quote can go into a JSON body.
  return InvalidArgument(internal::EscapeInvalidUtf8(req.status().message()));
}

std::string Requirement::Canonical() const {
  if (name.empty() && !option.empty()) return option;
  std::string out = name;
  if (!extras.empty()) {
    out += '[';
    for (std::size_t i = 0; i < extras.size(); ++i) out += (i > 0 ? "," : "") + extras[i];
    out += ']';
  }
  if (!url.empty()) {
    out += name.empty() ? url : " @ " + url;
  } else {
    out += specifier;
  }
  if (!marker.empty()) out += " ; " + marker;
  return out;
}

std::string Requirement::PinnedVersion() const {
  std::string_view s = specifier;
  if (!url.empty() || !s.starts_with("==") || s.starts_with("===")) return "";
  if (s.find(',') != std::string_view::npos || s.ends_with(".*")) return "";
  return std::string(s.substr(2));
}

}  // namespace gsk::spec
