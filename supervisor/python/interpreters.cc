#include "supervisor/python/interpreters.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "supervisor/process/process_launcher.h"

namespace gsk::python {
namespace {

namespace fs = std::filesystem;

// Runs on every interpreter from 3.0 on; prints one JSON line.
constexpr const char* kProbe = R"PY(
import sys, os, glob, json
try:
    import venv
    has_venv = True
except Exception:
    has_venv = False
wheels = []
try:
    import ensurepip
    d = os.path.join(os.path.dirname(ensurepip.__file__), "_bundled")
    wheels = sorted(glob.glob(os.path.join(d, "pip-*.whl")))
except Exception:
    pass
print(json.dumps({"version": "%d.%d.%d" % tuple(sys.version_info[:3]),
                  "implementation": sys.implementation.name,
                  "venv": has_venv, "pip_wheels": wheels}))
)PY";

bool IsVersionedPythonName(const std::string& name) {
  if (name == "python3") return true;
  if (name.rfind("python3.", 0) != 0 || name.size() <= 8) return false;
  return std::all_of(name.begin() + 8, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void AddMatching(const fs::path& dir, const std::string& source,
                 std::vector<std::pair<fs::path, std::string>>& out) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (IsVersionedPythonName(entry.path().filename().string())) found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  for (auto& p : found) out.emplace_back(std::move(p), source);
}

int MinorNumber(const std::string& minor) {
  size_t dot = minor.find('.');
  return dot == std::string::npos ? 0 : std::atoi(minor.c_str() + dot + 1);
}

// Debian's pip wheel runs on the interpreters of its time; pip 23.0 fails on 3.12+.
fs::path DebianPipWheel(const fs::path& dir, int minor) {
  std::error_code ec;
  if (minor >= 12 || !fs::is_directory(dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("pip-", 0) == 0 && name.size() > 4 &&
        name.compare(name.size() - 4, 4, ".whl") == 0) {
      return entry.path();
    }
  }
  return {};
}

void Probe(Interpreter& it, const DiscoveryOptions& options) {
  process::ProcessSpec spec;
  spec.argv = {it.path.string(), "-E", "-s", "-c", kProbe};
  spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"LC_ALL", "C.UTF-8"}};
  auto run = process::RunAndCapture(std::move(spec), std::chrono::seconds(10));
  if (!run.ok() || !run->exit.success()) {
    it.problem = "does not run: " + (run.ok() ? run->exit.Describe() : run.status().message());
    return;
  }
  nlohmann::json info = nlohmann::json::parse(run->output, nullptr, false);
  if (!info.is_object() || !info.contains("version")) {
    it.problem = "printed something unexpected when asked for its version";
    return;
  }
  it.version = info.value("version", "");
  it.minor = it.version.substr(0, it.version.rfind('.'));
  it.has_venv = info.value("venv", false);
  auto wheels = info.value("pip_wheels", std::vector<std::string>{});
  if (!wheels.empty()) it.pip_wheel = wheels.back();
  if (it.pip_wheel.empty()) it.pip_wheel = DebianPipWheel(options.debian_wheels_dir, MinorNumber(it.minor));
  if (info.value("implementation", "") != "cpython") {
    it.problem = "is not CPython";
  } else if (it.version.rfind("3.", 0) != 0 || MinorNumber(it.minor) < 8) {
    it.problem = "is Python " + it.version + "; the worker shim needs Python 3.8 or later";
  } else if (!it.has_venv) {
    it.problem = "has no venv module (on Debian: apt-get install python3-venv)";
  } else if (it.pip_wheel.empty()) {
    it.problem = "has no pip wheel to install with (on Debian: apt-get install python3-pip-whl)";
  }
}

}  // namespace

std::vector<std::pair<fs::path, std::string>> CandidatePaths(const DiscoveryOptions& options) {
  std::vector<std::pair<fs::path, std::string>> raw;
  for (const auto& p : options.configured) raw.emplace_back(p, "config");
  for (const auto& dir : options.system_dirs) AddMatching(dir, "system", raw);
  fs::path pyenv = !options.pyenv_root.empty() ? fs::path(options.pyenv_root)
                   : !options.home.empty()     ? fs::path(options.home) / ".pyenv"
                                               : fs::path();
  std::error_code ec;
  if (!pyenv.empty() && fs::is_directory(pyenv / "versions", ec)) {
    std::vector<fs::path> versions;
    for (const auto& e : fs::directory_iterator(pyenv / "versions", ec)) versions.push_back(e.path());
    std::sort(versions.begin(), versions.end());
    for (const auto& v : versions) {
      if (fs::exists(v / "bin/python3", ec)) raw.emplace_back(v / "bin/python3", "pyenv");
    }
  }
  std::stringstream path_env(options.path_env);
  std::string dir;
  while (std::getline(path_env, dir, ':')) {
    // pyenv shims are shell scripts that dispatch to the versions found above.
    if (!dir.empty() && dir.find("/shims") == std::string::npos) AddMatching(dir, "PATH", raw);
  }
  std::vector<std::pair<fs::path, std::string>> out;
  std::set<fs::path> seen;
  for (auto& [path, source] : raw) {
    fs::path real = fs::weakly_canonical(path, ec);
    if (ec) real = path;
    if (seen.insert(real).second) out.emplace_back(path, source);
  }
  return out;
}

std::vector<Interpreter> DiscoverInterpreters(const DiscoveryOptions& options) {
  std::vector<Interpreter> out;
  for (const auto& [path, source] : CandidatePaths(options)) {
    Interpreter it;
    it.path = path;
    std::error_code ec;
    it.real_path = fs::weakly_canonical(path, ec);
    it.source = source;
    if (!fs::exists(path, ec)) {
      it.problem = "does not exist";
    } else {
      Probe(it, options);
    }
    out.push_back(std::move(it));
  }
  return out;
}

Result<Interpreter> PickInterpreter(const std::vector<Interpreter>& found, const std::string& minor) {
  for (const auto& it : found) {
    if (it.minor == minor && it.usable()) return it;
  }
  std::set<std::string, bool (*)(const std::string&, const std::string&)> available(
      [](const std::string& a, const std::string& b) { return MinorNumber(a) < MinorNumber(b); });
  for (const auto& it : found) {
    if (it.usable()) available.insert(it.minor);
  }
  std::string list;
  for (const auto& v : available) list += (list.empty() ? "" : ", ") + v;
  std::string why;
  for (const auto& it : found) {
    if (it.minor == minor && !it.usable()) why = " (" + it.path.string() + " " + it.problem + ")";
  }
  return FailedPrecondition("pythonVersion \"" + minor + "\" is not available" + why + "; found " +
                            (list.empty() ? std::string("none") : list) +
                            " (install it, or add its path to [python] interpreters in the "
                            "config and restart the supervisor)")
      .WithDetail("field", "pythonVersion");
}

}  // namespace gsk::python
