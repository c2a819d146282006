// kernel-spec: the kernel document as the Giskard Hub sends it (plus the supervisor's own
// fields), parsed, validated, normalized and hashed. Pure functions and value types; no I/O,
// no global state: safe to call from any thread.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"
#include "kernel-spec/requirement.h"

namespace gsk::spec {

enum class KernelType { kProcess, kUnmanaged };  // "PROCESS" (managed) / "UNMANAGED"

std::string_view KernelTypeName(KernelType type);

// ParseOptions (what a requirement line may be beyond a name-based requirement, and the
// workers limit) is declared in kernel-spec/requirement.h.

// Limits on a document (a longer requirement line is also an error: kMaxRequirementLineLength).
inline constexpr std::size_t kMaxRequirementsPerField = 2000;
inline constexpr std::size_t kMaxKernelNameLength = 63;
inline constexpr std::size_t kMaxEnvEntries = 128;
inline constexpr std::size_t kMaxEnvValueBytes = 32 * 1024;
inline constexpr std::size_t kMaxUnknownFields = 64;
inline constexpr int kMaxJsonDepth = 64;
inline constexpr std::size_t kMaxPreloadModels = 16;
inline constexpr std::size_t kMaxModelPathBytes = 4096;

struct KernelSpec {
  std::string name;                        // validated kernel name
  std::string python_version;              // "3.11" (MAJOR.MINOR, normalized)
  std::vector<Requirement> requested;      // from requestedDependencies, canonical order
  std::vector<Requirement> frozen;         // from frozenDependencies, canonical order
  KernelType type = KernelType::kProcess;
  std::string version;                     // the Hub's "version" field as text, "" if absent
  bool version_is_integer = false;         // it came (and is returned) as a JSON integer
  int workers = 1;                         // supervisor field: worker processes wanted
  std::map<std::string, std::string> env;  // supervisor field: environment for workers
  // Supervisor field: workers may be forked from their env's template (the fork server); false
  // starts each one with a fresh interpreter.
  bool fork_server = true;
  // Supervisor field: model paths (as in a predict call) that the env's template loads before it
  // forks this kernel's workers, like gunicorn's --preload; empty: none.
  std::vector<std::string> preload_models;
  // Fields the supervisor does not know, kept verbatim (a JSON object serialized as text) and
  // returned as they came; they never influence the environment.
  std::string unknown_fields_json = "{}";
  std::vector<std::string> warnings;       // e.g. "unknown field \"foo\" kept as is"

  // The requirements an environment is built from: frozen when present, else requested.
  const std::vector<Requirement>& EffectiveRequirements() const;
};

// Parses and validates the JSON text of a kernel document. Errors are kInvalidArgument with the
// offending field in the message and in the "field" detail, e.g. field
// "requestedDependencies[2]", message "requestedDependencies[2]: \"--index-url http://x\" is a
// pip option; options are not allowed in requirements (configure [packages] index settings)".
// When the text is not JSON, nests deeper than kMaxJsonDepth, or is not a JSON object, the
// error also has the detail ("reason", "invalid_json") (see IsInvalidJson; HTTP 400 rather than
// 422), the "field" detail is "" and, for syntax errors, the message starts with "invalid JSON".
// Read-only fields (status, envHash, ...) are ignored; unknown fields are kept with a warning.
Result<KernelSpec> ParseKernelDocument(std::string_view json_text, const ParseOptions& options);
Result<KernelSpec> ParseKernelJson(const nlohmann::json& document, const ParseOptions& options);

// Whether `status` says the input was not a JSON object at all (detail "reason" is
// "invalid_json"), as opposed to a JSON object that is not a valid kernel document.
bool IsInvalidJson(const Status& status);

// The top-level fields the parser reads, and the read-only ones it ignores on input (the
// supervisor's own output fields). Every other field is "unknown".
const std::vector<std::string_view>& KernelDocumentFields();
const std::vector<std::string_view>& ReadOnlyKernelFields();

// Validates a kernel name on its own (used for URL path segments too).
Status ValidateKernelName(std::string_view name);

// The document in the Hub's shape with normalized values, plus "workers" and "env" and the
// unknown fields. When `redact_env` is true, env values are replaced by a masked form (values
// of 12 characters or more keep their first 3 characters, then "****"; shorter ones "****").
// "version" is null when empty; requestedDependencies is an array of canonical lines and
// frozenDependencies one "\n"-joined string of canonical lines. Never throws.
nlohmann::json ToJson(const KernelSpec& spec, bool redact_env);

// The canonical text from which the environment hash is computed: Python version, the effective
// requirement lines in canonical order, and `index_fingerprint` (the package index settings
// that change what pip would install). Nothing else (name, workers, env, version) is included.
std::string CanonicalEnvText(const KernelSpec& spec, std::string_view index_fingerprint);

// Masks a secret for display: the first 3 characters and "****" for values of 12 characters or
// more, else "****".
std::string MaskSecret(std::string_view value);

// Lowercase hex SHA-256 of CanonicalEnvText.
std::string EnvHash(const KernelSpec& spec, std::string_view index_fingerprint);

}  // namespace gsk::spec
