// PEP 440 versions: parse, normalize ("1.0-alpha1" -> "1.0a1", "v1.0.0.POST2" -> "1.0.0.post2")
// and compare, with the same rules as Python's `packaging`. Pure functions: thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gsk::spec {

struct Pep440Version {
  // Numbers are kept as decimal text without leading zeros, so that no length overflows.
  std::string epoch = "0";
  std::vector<std::string> release;  // at least one part
  std::string pre_label;             // "", "a", "b" or "rc"
  std::string pre_number;            // set when pre_label is
  std::optional<std::string> post;
  std::optional<std::string> dev;
  std::vector<std::string> local;  // lowercase; numeric parts without leading zeros

  // The normalized text: [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local].
  std::string ToString() const;
  bool HasOnlyRelease() const;  // no pre, post, dev or local part
};

// Parses a whole version text (case-insensitive, optional leading "v"); nullopt if invalid.
std::optional<Pep440Version> ParseVersion(std::string_view text);

// Negative, zero or positive as a sorts before, equal to or after b (PEP 440 ordering: "1.0" ==
// "1.0.0", "1.0.dev0" < "1.0a0" < "1.0" < "1.0.post0", a local label sorts after none).
int CompareVersions(const Pep440Version& a, const Pep440Version& b);

// Whether a candidate `version` matches the pin "==pinned" (local labels of the candidate are
// ignored when the pin has none).
bool MatchesPin(const Pep440Version& pinned, const Pep440Version& version);

}  // namespace gsk::spec
