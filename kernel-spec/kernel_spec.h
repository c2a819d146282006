// kernel-spec: the kernel document as the Giskard Hub sends it (plus the supervisor's own
// fields), parsed, validated, normalized and hashed. Pure functions and value types; no I/O,
// no global state: safe to call from any thread.
#pragma once

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

// What a requirement line may be beyond a PEP 508 name-based requirement. Everything is off by
// default: pip options could redirect installs to other indexes, direct URLs and local paths
// bypass the configured index settings.
struct ParseOptions {
  bool allow_pip_options = false;   // "--index-url X", "-r file", "-e path", "--extra-index-url X"
  bool allow_direct_urls = false;   // "pkg @ https://...", bare "https://.../x.whl"
  bool allow_local_paths = false;   // "./x", "/abs/x.whl", "file:///..."
  int max_workers = 64;             // upper bound accepted for "workers"
};

struct KernelSpec {
  std::string name;                        // validated kernel name
  std::string python_version;              // "3.11" (MAJOR.MINOR, normalized)
  std::vector<Requirement> requested;      // from requestedDependencies, canonical order
  std::vector<Requirement> frozen;         // from frozenDependencies, canonical order
  KernelType type = KernelType::kProcess;
  std::string version;                     // the Hub's opaque "version" field, "" if absent
  int workers = 1;                         // supervisor field: worker processes wanted
  std::map<std::string, std::string> env;  // supervisor field: environment for workers
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
Result<KernelSpec> ParseKernelDocument(std::string_view json_text, const ParseOptions& options);
Result<KernelSpec> ParseKernelJson(const nlohmann::json& document, const ParseOptions& options);

// Validates a kernel name on its own (used for URL path segments too).
Status ValidateKernelName(std::string_view name);

// The document in the Hub's shape with normalized values, plus "workers" and "env" and the
// unknown fields. When `redact_env` is true, env values are replaced by a masked form.
nlohmann::json ToJson(const KernelSpec& spec, bool redact_env);

// The canonical text from which the environment hash is computed: Python version, the effective
// requirement lines in canonical order, and `index_fingerprint` (the package index settings
// that change what pip would install). Nothing else (name, workers, env, version) is included.
std::string CanonicalEnvText(const KernelSpec& spec, std::string_view index_fingerprint);

// Lowercase hex SHA-256 of CanonicalEnvText.
std::string EnvHash(const KernelSpec& spec, std::string_view index_fingerprint);

}  // namespace gsk::spec
