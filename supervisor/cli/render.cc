#include "supervisor/cli/render.h"

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "supervisor/cli/client_commands.h"
#include "supervisor/cli/table.h"

namespace gsk::cli {
namespace {

using nlohmann::json;
using Lines = std::vector<std::pair<std::string, std::string>>;

std::string Text(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>().empty() ? "-" : value.get<std::string>();
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}


std::size_t LineCount(const json& value) {
  if (value.is_array()) return value.size();
  if (!value.is_string()) return 0;
  std::size_t n = 0;
  std::size_t start = 0;
  const std::string& s = value.get_ref<const std::string&>();
  while (start < s.size()) {
    std::size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) ++n;
    start = end + 1;
  }
  return n;
}

std::string DepsSummary(const json& kernel) {
  std::size_t requested = LineCount(kernel.value("requestedDependencies", json()));
  std::size_t frozen = LineCount(kernel.value("frozenDependencies", json()));
  std::string out = std::to_string(requested);
  if (frozen > 0) out += " (" + std::to_string(frozen) + " frozen)";
  return out;
}

std::string KeyValues(const Lines& lines) {
  std::size_t width = 0;
  for (const auto& [key, value] : lines) width = std::max(width, DisplayWidth(key));
  std::string out;
  for (const auto& [key, value] : lines) {
    out += key + ":" + std::string(width - DisplayWidth(key) + 1, ' ') + value + "\n";
  }
  return out;
}

// A heading with the count, then one indented line per entry ("none" when empty).
std::string List(std::string_view heading, const std::vector<std::string>& entries) {
  std::string out(heading);
  if (entries.empty()) return out + ": none\n";
  out += " (" + std::to_string(entries.size()) + "):\n";
  for (const std::string& e : entries) out += "  " + e + "\n";
  return out;
}

std::vector<std::string> Entries(const json& value) {
  std::vector<std::string> out;
  if (value.is_array()) {
    for (const json& v : value) out.push_back(Text(v));
  } else if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    for (std::size_t start = 0; start < s.size();) {
      std::size_t end = std::min(s.find('\n', start), s.size());
      if (end > start) out.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  return out;
}

std::string Plural(long long n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

long long Count(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<long long>() : 0;
}

std::string InterpreterTable(const json& interpreters) {
  if (!interpreters.is_array() || interpreters.empty()) {
    return "interpreters: none found (install python3.X, or list its path in [python] "
           "interpreters in the config and restart the daemon)\n";
  }
  Table table({{"VERSION"}, {"PATH"}, {"SOURCE"}, {"USABLE"}});
  for (const json& it : interpreters) {
    if (!it.is_object()) continue;
    auto u = it.find("usable");
    bool usable = u != it.end() && u->is_boolean() && u->get<bool>();
    table.AddRow({Field(it, "version"), Field(it, "path"), Field(it, "source"),
                  usable ? "yes" : "no: " + Field(it, "problem")});
  }
  std::string out = "interpreters (" + std::to_string(table.row_count()) + "):\n";
  std::string rendered = table.Render();
  for (std::size_t start = 0; start < rendered.size();) {
    std::size_t end = rendered.find('\n', start);
    out += "  " + rendered.substr(start, end - start + 1);
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string Field(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? "-" : Text(*it);
}

std::string Uptime(const json& seconds) {
  if (!seconds.is_number_integer()) return Text(seconds);
  auto s = seconds.get<long long>();
  std::string out;
  if (s >= 86400) out += std::to_string(s / 86400) + "d ";
  if (s >= 3600) out += std::to_string(s % 86400 / 3600) + "h ";
  if (s >= 60) out += std::to_string(s % 3600 / 60) + "m ";
  return out + std::to_string(s % 60) + "s";
}

int ExitCodeForHttpStatus(int http_status) {
  if (http_status >= 200 && http_status < 300) return kExitOk;
  switch (http_status) {
    case 400:
    case 413:
    case 415:
    case 422:
      return kExitInvalidInput;
    case 401:
    case 403:
      return kExitUnauthenticated;
    case 404:
      return kExitNotFound;
    case 409:
    case 429:
      return kExitConflict;
    case 503:
      return kExitUnreachable;
    default:
      return kExitInternal;
  }
}

std::string ShortTime(std::string_view iso_time) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (iso_time.size() < 20 || iso_time[10] != 'T' || !iso_time.ends_with('Z')) {
    return std::string(iso_time);
  }
  return std::string(iso_time.substr(0, 10)) + " " + std::string(iso_time.substr(11, 8)) + "Z";
}

std::string RenderKernelTable(const json& kernels) {
  Table table({{"NAME"},
               {"TYPE"},
               {"PYTHON"},
               {"STATUS"},
               {"WORKERS", Align::kRight},
               {"DEPS", Align::kRight},
               {"ENV-HASH"},
               {"UPDATED"}});
  if (!kernels.is_array()) return table.Render();
  for (const json& k : kernels) {
    if (!k.is_object()) continue;
    std::string hash = Field(k, "envHash");
    // An unmanaged kernel wants no number of workers: it has those that connected.
    bool connected = Field(k, "type") == "UNMANAGED" && k.contains("runningWorkers");
    table.AddRow({Field(k, "name"), Field(k, "type"), Field(k, "pythonVersion"), Field(k, "status"),
                  Field(k, connected ? "runningWorkers" : "workers"), DepsSummary(k),
                  hash.substr(0, 12),
                  ShortTime(Field(k, "updatedAt"))});
  }
  return table.Render();
}

std::string RenderKernelDetails(const json& kernel) {
  if (!kernel.is_object()) return Text(kernel) + "\n";
  static const std::vector<std::pair<const char*, const char*>> kFields = {
      {"name", "name"},
      {"type", "type"},
      {"pythonVersion", "python"},
      {"version", "version"},
      {"status", "status"},
      {"workers", "workers"},
      {"runningWorkers", "running"},
      {"started", "started"},
      {"envHash", "env hash"},
      {"generation", "generation"},
      {"createdAt", "created"},
      {"updatedAt", "updated"},
      {"lastError", "last error"}};
  Lines lines;
  for (const auto& [key, label] : kFields) {
    // Worker fields come from daemons that supervise workers; older answers lack them.
    std::string_view k(key);
    if ((k == "runningWorkers" || k == "started") && !kernel.contains(key)) continue;
    std::string value = Field(kernel, key);
    if (std::string_view(key).ends_with("At")) value = ShortTime(value);
    lines.emplace_back(label, value);
    if (std::string_view(key) == "status") {
      if (std::string build = BuildProgressText(kernel); !build.empty()) {
        lines.emplace_back("build", build);
      }
    }
  }
  std::string out = KeyValues(lines);
  out += List("requested dependencies", Entries(kernel.value("requestedDependencies", json())));
  out += List("frozen dependencies", Entries(kernel.value("frozenDependencies", json())));
  std::vector<std::string> env;
  if (auto it = kernel.find("env"); it != kernel.end() && it->is_object()) {
    for (const auto& [name, value] : it->items()) env.push_back(name + "=" + Text(value));
  }
  out += List("env", env);
  std::vector<std::string> others;
  for (const auto& [key, value] : kernel.items()) {
    bool known = key == "requestedDependencies" || key == "frozenDependencies" || key == "env" ||
                 key == "warnings" || key == "build" || key == "started" ||
                 key == "runningWorkers";
    for (const auto& field : kFields) known = known || key == field.first;
    if (!known) others.push_back(key + ": " + Text(value));
  }
  if (!others.empty()) out += List("other fields", others);
  return out;
}

std::string RenderDaemonStatus(const json& status) {
  if (!status.is_object()) return Text(status) + "\n";
  static const std::vector<std::pair<const char*, const char*>> kFields = {
      {"version", "version"},          {"pid", "pid"},
      {"startedAt", "started"},        {"uptimeSeconds", "uptime"},
      {"stateDir", "state dir"},       {"listen", "listen"},
      {"adminSocket", "admin socket"}, {"workerSocket", "worker socket"},
      {"schemaVersion", "schema version"}, {"kernels", "kernels"},
      {"workers", "workers"},          {"runningBuilds", "running builds"}};
  Lines lines;
  for (const auto& [key, label] : kFields) {
    auto it = status.find(key);
    if (it == status.end()) continue;
    std::string_view k = key;
    lines.emplace_back(label, k == "uptimeSeconds" ? Uptime(*it)
                              : k == "startedAt"   ? ShortTime(Text(*it))
                                                   : Text(*it));
  }
  for (const auto& [key, value] : status.items()) {
    bool known = key == "interpreters";
    for (const auto& field : kFields) known = known || key == field.first;
    if (!known) lines.emplace_back(key, Text(value));
  }
  std::string out = KeyValues(lines);
  if (auto it = status.find("interpreters"); it != status.end()) out += InterpreterTable(*it);
  return out;
}

std::string BuildProgressText(const json& kernel) {
  if (!kernel.is_object()) return "";
  auto it = kernel.find("build");
  if (it == kernel.end() || !it->is_object()) return "";
  const json& build = *it;
  std::string phase = Field(build, "phase");
  if (phase == "queued") return "queued (waiting for a build slot)";
  if (phase == "creating-venv") return "creating the virtualenv";
  if (phase == "resolving") {
    std::string current = Field(build, "current");
    // pip names local wheels by path ("Processing /long/dir/x-1.0-py3-none-any.whl").
    if (std::size_t slash = current.rfind('/');
        slash != std::string::npos && slash + 1 < current.size()) {
      current = current.substr(slash + 1);
    }
    return "resolving " + (current == "-" ? "" : current + " ") + "(" +
           std::to_string(Count(build, "collected")) + " collected)";
  }
  if (phase == "installing") {
    long long n = Count(build, "toInstall");
    return n > 0 ? "installing " + Plural(n, "package") : "installing";
  }
  return phase;  // verifying, done, or a phase this client does not know
}

std::string BuildStatusLine(const json& kernel) {
  std::string status = kernel.is_object() ? Field(kernel, "status") : "-";
  std::string progress = BuildProgressText(kernel);
  return progress.empty() ? status : status + ": " + progress;
}

std::string RenderServerError(int http_status, std::string_view body, std::string_view where) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const json* error = nullptr;
  if (doc.is_object()) {
    auto it = doc.find("error");
    if (it != doc.end() && it->is_object()) error = &*it;
  }
  if (error == nullptr || !error->contains("message")) {
    std::string snippet(body.substr(0, 200));
    return "error: HTTP " + std::to_string(http_status) + " from " + std::string(where) +
           (snippet.empty() ? "" : ": " + snippet) + "\n";
  }
  std::string out = "error: " + Text((*error)["message"]) + "\n";
  if (auto d = error->find("details"); d != error->end() && d->is_object()) {
    if (auto f = d->find("field"); f != d->end() && !Text(*f).empty() && Text(*f) != "-") {
      out += "field: " + Text(*f) + "\n";
    }
  }
  return out;
}

}  // namespace gsk::cli
