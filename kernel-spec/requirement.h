// A single requirement line (PEP 508), parsed and normalized: PEP 503 name, sorted extras,
// normalized version specifiers and marker. Pure functions and value types: thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace gsk::spec {

// What a requirement line may be beyond a PEP 508 name-based requirement. Everything is off by
// default: pip options could redirect installs to other indexes, direct URLs and local paths
// bypass the configured index settings.
struct ParseOptions {
  bool allow_pip_options = false;   // "--index-url X", "-r file", "-e path", "--extra-index-url X"
  bool allow_direct_urls = false;   // "pkg @ https://...", bare "https://.../x.whl"
  bool allow_local_paths = false;   // "./x", "/abs/x.whl", "file:///..."
  int max_workers = 64;             // upper bound accepted for "workers"
  // For documents stored by an earlier version: a "version" that is not a number is kept as
  // text instead of refused.
  bool keep_any_version = false;
};

struct Requirement {
  std::string name;                 // PEP 503 canonical: lowercase, runs of [-_.] become "-"
  std::vector<std::string> extras;  // canonical names, sorted, unique
  std::string specifier;            // normalized, clauses sorted: ">=1.0,<2" -> "<2,>=1.0"
  std::string url;                  // for "name @ url" when allowed, else ""
  std::string marker;               // normalized marker text after ";" or ""
  std::string original;             // the line as given (trimmed, comment removed)
  // Only when the options allow them, a line may carry no name: a pip option
  // ("--index-url http://x", whitespace collapsed) is kept in `option`; a bare URL or a local
  // path ("https://h/x.whl", "./pkg") is kept in `url`.
  std::string option;

  // The canonical line: name[extras]specifier ; marker   (or "name @ url ; marker").
  // A name-less line is its option, or its url followed by " ; marker" when there is one.
  std::string Canonical() const;
  // The exact version if the specifier is a single "==X" pin (no wildcard), else "".
  std::string PinnedVersion() const;
};

// PEP 503 normalization of a project name.
std::string CanonicalizeName(std::string_view name);

// Longest requirement line accepted, in bytes.
inline constexpr std::size_t kMaxRequirementLineLength = 4096;

// Parses one requirement line. A trailing comment ("numpy  # why") is removed first; a line that
// is then blank is an error. Errors are kInvalidArgument with a message that quotes the line,
// says what is wrong and what to do, e.g. "\"numpy=1.0\": \"=\" is not a version operator; use
// \"==\" for an exact version (numpy==1.0)". Pip options, direct URLs and local paths are
// rejected unless `options` allows them.
Result<Requirement> ParseRequirement(std::string_view line, const ParseOptions& options);

// Removes a pip-style comment: "#" at the start of the line or after whitespace, to the end.
std::string_view StripRequirementComment(std::string_view line);

}  // namespace gsk::spec
