// The scalar fields of a kernel document and env: name, pythonVersion, type, version, workers.
#include <algorithm>
#include <cmath>

#include "kernel-spec/kernel_internal.h"
#include "kernel-spec/text.h"

namespace gsk::spec::internal {
namespace {

constexpr std::size_t kMaxVersionFieldLength = 256;
constexpr std::size_t kMaxEnvNameLength = 256;
constexpr std::size_t kMaxWarnings = 100;

std::string NameProblem(std::string_view name) {
  if (name.empty()) return "it is empty";
  if (name.size() > kMaxKernelNameLength) {
    return "it has " + std::to_string(name.size()) + " characters";
  }
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '_' && c != '-') {
      return "it contains " + Quote(std::string_view(&c, 1));
    }
  }
  if (!IsAsciiAlnum(name.front())) return "it starts with " + Quote(name.substr(0, 1));
  if (name.find("..") != std::string_view::npos) return "it contains \"..\"";
  return "";
}

Status Missing(const std::string& field, const Json* value, const std::string& what_to_do) {
  return FieldError(field,
                    (value == nullptr ? "missing" : "is null") + std::string("; ") + what_to_do);
}

bool IsEnvName(std::string_view name) {
  if (name.empty() || name.size() > kMaxEnvNameLength || IsAsciiDigit(name.front())) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) { return IsAsciiAlnum(c) || c == '_'; });
}

Status ParseEnvEntry(const std::string& key, const Json& value, KernelSpec& spec) {
  if (!IsEnvName(key)) {
    return FieldError("env",
                      Quote(key) +
                          " is not a valid environment variable name; use "
                          "letters, digits and \"_\", not starting with a digit (as in MY_TOKEN)");
  }
  if (key.starts_with("GSK_") || key.starts_with("GISKARD_SUPERVISOR_")) {
    return FieldError("env." + key,
                      "names starting with GSK_ or GISKARD_SUPERVISOR_ are "
                      "reserved for the supervisor; rename the variable");
  }
  if (!value.is_string()) {
    return FieldError("env." + key,
                      "expected a string, got " + TypeNameWithArticle(value) + "; quote the value");
  }
  const auto& text = value.get_ref<const std::string&>();
  if (text.size() > kMaxEnvValueBytes) {
    return FieldError("env." + key, "the value has " + std::to_string(text.size()) +
                                        " bytes; at most " + std::to_string(kMaxEnvValueBytes) +
                                        " are allowed");
  }
  if (text.find('\0') != std::string::npos) {
    return FieldError("env." + key, "the value contains a NUL character; remove it");
  }
  spec.env[key] = text;
  return Status::Ok();
}

}  // namespace

Status FieldError(const std::string& field, const std::string& message) {
  // Messages quote the input; whatever they quote must be able to go into a JSON body.
  return InvalidArgument(EscapeInvalidUtf8(field + ": " + message))
      .WithDetail("field", EscapeInvalidUtf8(field));
}

std::string TypeNameWithArticle(const Json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "the number " + value.dump();
  if (value.is_string()) return "the string " + Quote(value.get_ref<const std::string&>());
  return value.is_array() ? "an array" : "an object";
}

void AddWarning(KernelSpec& spec, std::string warning) {
  if (spec.warnings.size() < kMaxWarnings) {
    spec.warnings.push_back(std::move(warning));
  } else if (spec.warnings.size() == kMaxWarnings) {
    spec.warnings.push_back("more warnings were left out");
  }
}

Status ParseNameField(const Json* value, KernelSpec& spec) {
  if (value == nullptr || value->is_null()) {
    return Missing("name", value, "give the kernel a name such as \"my-kernel\"");
  }
  if (!value->is_string()) {
    return FieldError("name", "expected a string, got " + TypeNameWithArticle(*value));
  }
  spec.name = value->get<std::string>();
  return ValidateKernelName(spec.name);
}

Status ParsePythonField(const Json* value, KernelSpec& spec) {
  const std::string field = "pythonVersion";
  if (value == nullptr || value->is_null()) {
    return Missing(field, value, "give the Python version as a string such as \"3.11\"");
  }
  if (value->is_number()) {
    return FieldError(field, "got the number " + value->dump() +
                                 "; send it as a string such "
                                 "as \"3.11\" (as a JSON number, 3.10 would read as 3.1)");
  }
  if (!value->is_string()) {
    return FieldError(field,
                      "expected a string such as \"3.11\", got " + TypeNameWithArticle(*value));
  }
  const auto& text = value->get_ref<const std::string&>();
  Scanner s(text);
  std::string_view major = s.TakeWhile(IsAsciiDigit);
  std::string_view minor = s.Consume('.') ? s.TakeWhile(IsAsciiDigit) : std::string_view();
  std::string_view patch = s.Consume('.') ? s.TakeWhile(IsAsciiDigit) : "0";
  bool well_formed = !major.empty() && !minor.empty() && !patch.empty() && s.AtEnd() &&
                     minor.size() <= 2 && patch.size() <= 3 &&
                     (minor.size() == 1 || minor[0] != '0');
  if (!well_formed) {
    return FieldError(field, Quote(text) +
                                 " is not a Python version; write MAJOR.MINOR such "
                                 "as \"3.11\"" +
                                 (text.starts_with("python") ? " (without \"python\")" : ""));
  }
  int minor_number = std::stoi(std::string(minor));
  if (major != "3") {
    return FieldError(field, Quote(text) +
                                 ": only Python 3 is supported; use 3.8 or newer, "
                                 "such as \"3.11\"");
  }
  if (minor_number < 8) {
    return FieldError(field, "Python " + Quote(text) +
                                 " is too old; the worker needs Python "
                                 "3.8 or newer");
  }
  spec.python_version = "3." + std::to_string(minor_number);
  return Status::Ok();
}

Status ParseTypeField(const Json* value, KernelSpec& spec) {
  spec.type = KernelType::kProcess;
  if (value == nullptr || value->is_null()) return Status::Ok();
  const std::string fix = "use \"PROCESS\" (managed by the supervisor) or \"UNMANAGED\"";
  if (!value->is_string()) {
    return FieldError("type", "expected a string, got " + TypeNameWithArticle(*value) + "; " + fix);
  }
  const auto& text = value->get_ref<const std::string&>();
  if (text == "PROCESS") return Status::Ok();
  if (text == "UNMANAGED") {
    spec.type = KernelType::kUnmanaged;
    return Status::Ok();
  }
  std::string upper = text;
  for (char& c : upper) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  if (upper == "PROCESS" || upper == "UNMANAGED") {
    return FieldError(
        "type", Quote(text) + " is not a kernel type; types are upper case: use " + Quote(upper));
  }
  return FieldError("type", Quote(text) + " is not a kernel type; " + fix);
}

// The Hub's version of the document: an integer, or a dotted version number such as "2.14.0".
// Anything else (a float, a boolean, "abc") is refused rather than kept, so that a client bug is
// seen at once; the JSON type is kept for the answer.
Status ParseVersionField(const Json* value, const ParseOptions& options, KernelSpec& spec) {
  spec.version.clear();
  spec.version_is_integer = false;
  if (value == nullptr || value->is_null()) return Status::Ok();
  const std::string fix = "send an integer such as 3, or a version number such as \"2.14.0\"";
  if (value->is_number_integer()) {
    if (!value->is_number_unsigned() && value->get<int64_t>() < 0) {
      return FieldError("version", value->dump() + " is negative; " + fix);
    }
    spec.version = value->dump();
    spec.version_is_integer = true;
    return Status::Ok();
  }
  if (!value->is_string()) {
    return FieldError("version", "expected an integer, got " + TypeNameWithArticle(*value) + "; " +
                                     fix);
  }
  const auto& text = value->get_ref<const std::string&>();
  bool digits_and_dots = !text.empty() && text.front() != '.' && text.back() != '.' &&
                         text.find("..") == std::string::npos &&
                         std::all_of(text.begin(), text.end(), [](char c) {
                           return (c >= '0' && c <= '9') || c == '.';
                         });
  if (text.size() > kMaxVersionFieldLength) {
    return FieldError("version", "the version is longer than " +
                                     std::to_string(kMaxVersionFieldLength) + " characters; " +
                                     fix);
  }
  if (!digits_and_dots && !options.keep_any_version) {
    return FieldError("version", Quote(text) + " is not a version; " + fix);
  }
  spec.version = text;
  return Status::Ok();
}

Status ParseWorkersField(const Json* value, const ParseOptions& options, KernelSpec& spec) {
  spec.workers = spec.type == KernelType::kProcess ? 1 : 0;
  if (value == nullptr || value->is_null()) return Status::Ok();
  const std::string range = "use a whole number from 0 to " + std::to_string(options.max_workers);
  if (!value->is_number_integer()) {
    return FieldError("workers", "expected an integer, got " + TypeNameWithArticle(*value) + "; " +
                                     range + (value->is_string() ? " without quotes" : ""));
  }
  bool in_range =
      value->is_number_unsigned()
          ? value->get<std::uint64_t>() <=
                static_cast<std::uint64_t>(std::max(options.max_workers, 0))
          : value->get<std::int64_t>() >= 0 && value->get<std::int64_t>() <= options.max_workers;
  if (!in_range) return FieldError("workers", value->dump() + " is out of range; " + range);
  spec.workers = value->get<int>();
  return Status::Ok();
}

Status ParseEnvField(const Json* value, KernelSpec& spec) {
  spec.env.clear();
  if (value == nullptr || value->is_null()) return Status::Ok();
  if (!value->is_object()) {
    return FieldError(
        "env", "expected an object of NAME: \"value\" strings, got " + TypeNameWithArticle(*value));
  }
  if (value->size() > kMaxEnvEntries) {
    return FieldError("env", std::to_string(value->size()) + " variables; at most " +
                                 std::to_string(kMaxEnvEntries) + " are allowed");
  }
  for (const auto& [key, item] : value->items()) {
    GSK_RETURN_IF_ERROR(ParseEnvEntry(key, item, spec));
  }
  return Status::Ok();
}

Status ParseForkServerField(const Json* value, KernelSpec& spec) {
  spec.fork_server = true;
  if (value == nullptr || value->is_null()) return Status::Ok();
  if (!value->is_boolean()) {
    return FieldError("forkServer", "expected true or false, got " + TypeNameWithArticle(*value));
  }
  spec.fork_server = value->get<bool>();
  return Status::Ok();
}

Status ParsePreloadModelsField(const Json* value, KernelSpec& spec) {
  spec.preload_models.clear();
  if (value == nullptr || value->is_null()) return Status::Ok();
  if (!value->is_array()) {
    return FieldError("preloadModels", "expected an array of model paths, got " +
                                           TypeNameWithArticle(*value));
  }
  if (spec.type != KernelType::kProcess && !value->empty()) {
    return FieldError("preloadModels", "only a PROCESS kernel's workers are forked from a "
                                       "template; an UNMANAGED kernel cannot preload models");
  }
  if (value->size() > kMaxPreloadModels) {
    return FieldError("preloadModels", std::to_string(value->size()) + " models; at most " +
                                           std::to_string(kMaxPreloadModels) + " can be preloaded");
  }
  for (std::size_t i = 0; i < value->size(); ++i) {
    const Json& item = (*value)[i];
    std::string field = "preloadModels[" + std::to_string(i) + "]";
    if (!item.is_string()) {
      return FieldError(field, "expected a model path (a string), got " + TypeNameWithArticle(item));
    }
    const std::string& path = item.get_ref<const std::string&>();
    if (path.empty() || path.size() > kMaxModelPathBytes ||
        path.find('\0') != std::string::npos) {
      return FieldError(field, "expected a model path of 1 to " +
                                   std::to_string(kMaxModelPathBytes) + " bytes, without NUL");
    }
    if (std::find(spec.preload_models.begin(), spec.preload_models.end(), path) !=
        spec.preload_models.end()) {
      return FieldError(field, "\"" + path + "\" is listed twice");
    }
    spec.preload_models.push_back(path);
  }
  return Status::Ok();
}

}  // namespace gsk::spec::internal

namespace gsk::spec {

Status ValidateKernelName(std::string_view name) {
  std::string problem = internal::NameProblem(name);
  if (problem.empty()) return Status::Ok();
  return internal::FieldError(
      "name", internal::Quote(name) + " is not a valid kernel name (" + problem + "); use 1 to " +
                  std::to_string(kMaxKernelNameLength) +
                  " characters from A-Z, a-z, 0-9, \".\", \"_\" and \"-\", starting with a "
                  "letter or digit, without \"..\"");
}

}  // namespace gsk::spec
