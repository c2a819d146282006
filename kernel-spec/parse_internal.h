// Internal pieces of the requirement parser (kernel-spec/requirement.cc): PEP 508 markers and
// PEP 440 specifier lists. Pure functions: thread-safe. Errors are kInvalidArgument with a
// message "<what is wrong>; <what to do>" that does not quote the whole line.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "kernel-spec/text.h"

namespace gsk::spec::internal {

// Parses the marker text after ";" into its canonical form: `python_version < "3.9" and
// (os_name == "nt" or sys_platform == "linux")`, with legacy names ("os.name") renamed.
Result<std::string> NormalizeMarker(std::string_view text);

// Parses a comma-separated specifier list at `s` up to ";", ")" or the end, and returns its
// canonical form (normalized versions, clauses sorted and unique, joined by ","). `name` is
// the requirement's name, used in hints. Returns "" when there is no clause.
Result<std::string> ParseSpecifierList(Scanner& s, std::string_view name);

// URL and path classification of a (trimmed, non-empty) requirement line.
bool StartsWithUrlScheme(std::string_view text);  // "https://", "git+ssh://", ...
bool IsFileUrl(std::string_view text);            // "file:..."
bool LooksLikeLocalPath(std::string_view text);   // "./x", "/x", "~/x", "C:\\x", "dist/x.whl"
bool IsValidUrl(std::string_view url);            // scheme://... in RFC 3986 characters

}  // namespace gsk::spec::internal
