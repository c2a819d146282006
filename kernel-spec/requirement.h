// A single requirement line (PEP 508), parsed and normalized: PEP 503 name, sorted extras,
// normalized version specifiers and marker. Pure functions and value types: thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace gsk::spec {

struct Requirement {
  std::string name;                 // PEP 503 canonical: lowercase, runs of [-_.] become "-"
  std::vector<std::string> extras;  // canonical names, sorted, unique
  std::string specifier;            // normalized, clauses sorted: ">=1.0,<2" -> "<2,>=1.0"
  std::string url;                  // for "name @ url" when allowed, else ""
  std::string marker;               // normalized marker text after ";" or ""
  std::string original;             // the line as given (trimmed)

  // The canonical line: name[extras]specifier ; marker   (or "name @ url ; marker").
  std::string Canonical() const;
  // The exact version if the specifier is a single "==X" pin (no wildcard), else "".
  std::string PinnedVersion() const;
};

// PEP 503 normalization of a project name.
std::string CanonicalizeName(std::string_view name);

}  // namespace gsk::spec
