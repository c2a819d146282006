// Internal pieces of the kernel document parser (kernel-spec/kernel_spec.cc): one function per
// field. `value` is nullptr when the field is absent. Pure functions: thread-safe. Errors are
// kInvalidArgument "<field>: <what was wrong>; <what to do>" with the detail ("field", field).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "kernel-spec/kernel_spec.h"

namespace gsk::spec::internal {

using Json = nlohmann::json;

Status FieldError(const std::string& field, const std::string& message);
std::string TypeNameWithArticle(const Json& value);  // "a string", "an array", "null", ...

Status ParseNameField(const Json* value, KernelSpec& spec);
Status ParsePythonField(const Json* value, KernelSpec& spec);
Status ParseTypeField(const Json* value, KernelSpec& spec);
Status ParseVersionField(const Json* value, const ParseOptions& options, KernelSpec& spec);
Status ParseWorkersField(const Json* value, const ParseOptions& options, KernelSpec& spec);
Status ParseEnvField(const Json* value, KernelSpec& spec);
Status ParseForkServerField(const Json* value, KernelSpec& spec);
Status ParsePreloadModelsField(const Json* value, KernelSpec& spec);

// requestedDependencies and frozenDependencies together: each list, duplicates within a list,
// and requested pins that contradict frozen ones. Adds warnings to spec.warnings.
Status ParseDependencyFields(const Json* requested, const Json* frozen, const ParseOptions& options,
                             KernelSpec& spec);

void AddWarning(KernelSpec& spec, std::string warning);  // capped at a hundred

}  // namespace gsk::spec::internal
