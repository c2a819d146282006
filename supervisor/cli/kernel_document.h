// The kernel document the CLI posts: requirement files and `kernels create` flags turned into
// the Hub's JSON shape. Pure functions (files are read through an injected reader); thread-safe
// when the reader is.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace gsk::cli {

// Reads a whole file ("-" may mean stdin, at the reader's choice). Errors name the path and the
// OS error.
using FileReader = std::function<Result<std::string>(const std::string& path)>;

// Reads a file from disk with POSIX calls; errors are kInvalidArgument "PATH: <strerror>".
Result<std::string> ReadTextFile(const std::string& path);

// One requirement per line, pip style: blank lines and comments ("#" at the start of a line or
// after whitespace) dropped, "\r\n" accepted, a trailing backslash joins the next line, each line
// trimmed. Anything else (including pip options such as "-r x.txt") is passed through for the
// server to judge.
std::vector<std::string> ParseRequirementsText(std::string_view text);

struct CreateFlags {
  std::string name;                            // positional NAME
  std::string python;                          // --python
  std::vector<std::string> requirement_files;  // -r FILE (repeatable)
  std::vector<std::string> requirements;       // --requirement LINE (repeatable)
  std::string frozen_file;                     // --frozen FILE
  std::optional<int> workers;                  // --workers N
  std::vector<std::string> env;                // --env KEY=VALUE (repeatable)
  std::string type;                            // --type, "" means PROCESS
  std::string document_file;                   // -f FILE ("-" is stdin)
};

// Builds {"name", "pythonVersion", "requestedDependencies" (files first, then --requirement
// lines), "frozenDependencies" ("\n"-joined, only with --frozen), "type", "workers", "env"}.
// Errors are usage errors (kInvalidArgument): NAME or --python missing, an unreadable file, an
// --env entry without "=" or given twice, a negative --workers.
Result<nlohmann::json> BuildKernelDocument(const CreateFlags& flags, const FileReader& read_file);

// The body for `kernels create -f`: `text` as is when `name` is empty, else the document with
// its "name" replaced. Errors (kInvalidArgument): `text` is not a JSON object (only checked when
// a name must be set; otherwise the server judges it).
Result<std::string> ApplyNameOverride(const std::string& text, const std::string& name);

}  // namespace gsk::cli
