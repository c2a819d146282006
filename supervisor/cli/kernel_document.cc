#include "supervisor/cli/kernel_document.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace gsk::cli {
namespace {

using nlohmann::json;

std::string_view Trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string_view StripComment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
      return line.substr(0, i);
    }
  }
  return line;
}

Status AddEnv(const std::vector<std::string>& entries, json& env) {
  for (const std::string& entry : entries) {
    std::size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--env \"" + entry + "\": expected KEY=VALUE");
    }
    std::string key = entry.substr(0, eq);
    if (env.contains(key)) return InvalidArgument("--env " + key + " is given twice");
    env[key] = entry.substr(eq + 1);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadTextFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InvalidArgument(path + ": " + std::strerror(errno));
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return InvalidArgument(path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

std::vector<std::string> ParseRequirementsText(std::string_view text) {
  std::vector<std::string> out;
  std::string pending;  // a line continued with a trailing backslash
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.ends_with('\\')) {
      pending += line.substr(0, line.size() - 1);
      continue;
    }
    pending += line;
    std::string_view requirement = Trim(StripComment(pending));
    if (!requirement.empty()) out.emplace_back(requirement);
    pending.clear();
  }
  return out;
}

Result<json> BuildKernelDocument(const CreateFlags& flags, const FileReader& read_file) {
  if (flags.name.empty()) {
    return InvalidArgument("kernels create: NAME is required (or post a document with -f FILE)");
  }
  if (flags.python.empty()) {
    return InvalidArgument(
        "kernels create: --python VERSION is required, e.g. --python 3.11 "
        "(or post a document with -f FILE)");
  }
  json doc = json::object();
  doc["name"] = flags.name;
  doc["pythonVersion"] = flags.python;
  json requested = json::array();
  for (const std::string& file : flags.requirement_files) {
    auto text = read_file(file);
    if (!text.ok()) return text.status().Annotate("cannot read requirements file");
    for (std::string& line : ParseRequirementsText(*text)) requested.push_back(std::move(line));
  }
  for (const std::string& line : flags.requirements) requested.push_back(line);
  doc["requestedDependencies"] = std::move(requested);
  if (!flags.frozen_file.empty()) {
    auto text = read_file(flags.frozen_file);
    if (!text.ok()) return text.status().Annotate("cannot read --frozen file");
    std::string joined;
    for (const std::string& line : ParseRequirementsText(*text)) {
      if (!joined.empty()) joined += '\n';
      joined += line;
    }
    doc["frozenDependencies"] = std::move(joined);
  }
  doc["type"] = flags.type.empty() ? "PROCESS" : flags.type;
  if (flags.workers) {
    if (*flags.workers < 0) return InvalidArgument("--workers must be 0 or more");
    doc["workers"] = *flags.workers;
  }
  if (!flags.env.empty()) {
    json env = json::object();
    GSK_RETURN_IF_ERROR(AddEnv(flags.env, env));
    doc["env"] = std::move(env);
  }
  return doc;
}

Result<std::string> ApplyNameOverride(const std::string& text, const std::string& name) {
  if (name.empty()) return text;
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return InvalidArgument(doc.is_discarded() ? "the document is not valid JSON"
                                              : "the document is not a JSON object");
  }
  doc["name"] = name;
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace gsk::cli
