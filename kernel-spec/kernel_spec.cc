// The kernel document as a whole: JSON text at the edge (syntax, depth, duplicate keys), field
// dispatch, unknown fields, the JSON shape returned to clients, and the environment hash.
#include "kernel-spec/kernel_spec.h"

#include <algorithm>
#include <set>

#include "base/crypto.h"
#include "kernel-spec/kernel_internal.h"
#include "kernel-spec/text.h"

namespace gsk::spec {
namespace {

using internal::FieldError;
using internal::Json;
using internal::Quote;

Status InvalidJsonError(std::string message) {
  return InvalidArgument(std::move(message))
      .WithDetail("field", "")
      .WithDetail("reason", "invalid_json");
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix, and with the
// bytes it quotes from the input made safe to put back into JSON.
std::string ExceptionText(const Json::exception& e) {
  std::string_view what = e.what();
  std::size_t bracket = what.find("] ");
  if (what.starts_with("[json.exception") && bracket != std::string_view::npos) {
    what.remove_prefix(bracket + 2);
  }
  return internal::EscapeInvalidUtf8(what);
}

Status DepthError() {
  return InvalidJsonError("invalid JSON: the document nests deeper than " +
                          std::to_string(kMaxJsonDepth) + " levels; send a flat kernel document");
}

// Nesting depth of JSON text, counted outside strings, so that a hostile document is refused
// before a parser or serializer recurses into it.
bool TextNestsTooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

bool ValueNestsTooDeep(const Json& value, int depth) {
  if (depth > kMaxJsonDepth) return true;
  if (!value.is_structured()) return false;
  return std::any_of(value.begin(), value.end(),
                     [depth](const Json& item) { return ValueNestsTooDeep(item, depth + 1); });
}

bool Contains(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

Status CollectUnknownFields(const Json& document, KernelSpec& spec) {
  Json unknown = Json::object();
  for (const auto& [key, value] : document.items()) {
    if (Contains(KernelDocumentFields(), key) || Contains(ReadOnlyKernelFields(), key)) continue;
    if (unknown.size() == kMaxUnknownFields) {
      return FieldError(internal::EscapeInvalidUtf8(key),
                        "more than " + std::to_string(kMaxUnknownFields) +
                            " unknown fields; remove fields the supervisor does not know");
    }
    unknown[key] = value;
    internal::AddWarning(
        spec, "unknown field " + Quote(key) + " kept as is; it does not affect the environment");
  }
  spec.unknown_fields_json = unknown.dump();
  return Status::Ok();
}

Result<KernelSpec> ParseObject(const Json& document, const ParseOptions& options) {
  if (!document.is_object()) {
    return InvalidJsonError(
        "the kernel document must be a JSON object such as {\"name\": "
        "\"my-kernel\", \"pythonVersion\": \"3.11\"}; got " +
        internal::TypeNameWithArticle(document));
  }
  if (ValueNestsTooDeep(document, 1)) return DepthError();
  auto field = [&document](const char* key) -> const Json* {
    auto it = document.find(key);
    return it == document.end() ? nullptr : &*it;
  };
  KernelSpec spec;
  GSK_RETURN_IF_ERROR(internal::ParseTypeField(field("type"), spec));
  GSK_RETURN_IF_ERROR(internal::ParseNameField(field("name"), spec));
  GSK_RETURN_IF_ERROR(internal::ParsePythonField(field("pythonVersion"), spec));
  GSK_RETURN_IF_ERROR(internal::ParseDependencyFields(field("requestedDependencies"),
                                                      field("frozenDependencies"), options, spec));
  GSK_RETURN_IF_ERROR(internal::ParseVersionField(field("version"), options, spec));
  GSK_RETURN_IF_ERROR(internal::ParseWorkersField(field("workers"), options, spec));
  GSK_RETURN_IF_ERROR(internal::ParseEnvField(field("env"), spec));
  GSK_RETURN_IF_ERROR(internal::ParseForkServerField(field("forkServer"), spec));
  GSK_RETURN_IF_ERROR(internal::ParsePreloadModelsField(field("preloadModels"), spec));
  GSK_RETURN_IF_ERROR(CollectUnknownFields(document, spec));
  return spec;
}

}  // namespace

std::string MaskSecret(std::string_view value) {
  if (value.size() >= 12) return std::string(value.substr(0, 3)) + "****";
  return "****";
}

std::string_view KernelTypeName(KernelType type) {
  return type == KernelType::kUnmanaged ? "UNMANAGED" : "PROCESS";
}

const std::vector<Requirement>& KernelSpec::EffectiveRequirements() const {
  return frozen.empty() ? requested : frozen;
}

const std::vector<std::string_view>& KernelDocumentFields() {
  static const std::vector<std::string_view> kFields = {"name",
                                                        "pythonVersion",
                                                        "requestedDependencies",
                                                        "frozenDependencies",
                                                        "type",
                                                        "version",
                                                        "workers",
                                                        "env",
                                                        "forkServer",
                                                        "preloadModels"};
  return kFields;
}

const std::vector<std::string_view>& ReadOnlyKernelFields() {
  static const std::vector<std::string_view> kFields = {
      "status",    "envHash",   "lastError", "generation", "createdAt",
      "updatedAt", "warnings",  "id",        "build",      "started",
      "runningWorkers"};
  return kFields;
}

bool IsInvalidJson(const Status& status) {
  const auto& details = status.details();
  return std::find(details.begin(), details.end(), Status::Detail("reason", "invalid_json")) !=
         details.end();
}

Result<KernelSpec> ParseKernelDocument(std::string_view json_text, const ParseOptions& options) {
  if (TextNestsTooDeep(json_text)) return DepthError();
  std::set<std::string> keys;
  std::string duplicate;
  Json::parser_callback_t note_keys = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && parsed.is_string() &&
        !keys.insert(parsed.get<std::string>()).second && duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  Json document;
  try {
    document = Json::parse(json_text.begin(), json_text.end(), note_keys);
  } catch (const Json::exception& e) {
    return InvalidJsonError("invalid JSON: " + ExceptionText(e) +
                            "; send the kernel document "
                            "as a JSON object");
  }
  if (!duplicate.empty() && document.is_object()) {
    return FieldError(internal::EscapeInvalidUtf8(duplicate),
                      "the field appears more than once in the document; send it "
                      "once");
  }
  return ParseKernelJson(document, options);
}

Result<KernelSpec> ParseKernelJson(const nlohmann::json& document, const ParseOptions& options) {
  try {
    return ParseObject(document, options);
  } catch (const Json::exception& e) {  // e.g. invalid UTF-8 in a document built in code
    return InvalidJsonError("invalid JSON: " + ExceptionText(e));
  }
}

nlohmann::json ToJson(const KernelSpec& spec, bool redact_env) {
  Json out = Json::parse(spec.unknown_fields_json, nullptr, /*allow_exceptions=*/false);
  if (!out.is_object()) out = Json::object();
  out["name"] = spec.name;
  out["pythonVersion"] = spec.python_version;
  Json requested = Json::array();
  for (const Requirement& r : spec.requested) requested.push_back(r.Canonical());
  out["requestedDependencies"] = std::move(requested);
  std::string frozen;
  for (const Requirement& r : spec.frozen) frozen += (frozen.empty() ? "" : "\n") + r.Canonical();
  out["frozenDependencies"] = frozen;
  out["type"] = KernelTypeName(spec.type);
  if (spec.version.empty()) {
    out["version"] = nullptr;
  } else if (spec.version_is_integer) {
    out["version"] = Json::parse(spec.version, nullptr, /*allow_exceptions=*/false);
  } else {
    out["version"] = spec.version;
  }
  out["workers"] = spec.workers;
  Json env = Json::object();
  for (const auto& [key, value] : spec.env) env[key] = redact_env ? MaskSecret(value) : value;
  out["env"] = std::move(env);
  out["forkServer"] = spec.fork_server;
  out["preloadModels"] = spec.preload_models;
  return out;
}

std::string CanonicalEnvText(const KernelSpec& spec, std::string_view index_fingerprint) {
  std::vector<std::string> lines;
  for (const Requirement& r : spec.EffectiveRequirements()) lines.push_back(r.Canonical());
  std::sort(lines.begin(), lines.end());
  std::string text = "giskard-supervisor env 1\npython " + spec.python_version + "\nindex " +
                     std::to_string(index_fingerprint.size()) + " " +
                     std::string(index_fingerprint) + "\n";
  for (const std::string& line : lines) text += "requirement " + line + "\n";
  return text;
}

std::string EnvHash(const KernelSpec& spec, std::string_view index_fingerprint) {
  return Sha256Hex(CanonicalEnvText(spec, index_fingerprint));
}

}  // namespace gsk::spec
