// Interpreter discovery: finds the Python interpreters on this machine (configured paths,
// python3.X on PATH, $PYENV_ROOT/versions/*, /usr/bin, /usr/local/bin), asks each for its
// version, and finds the pip wheel that can install into a venv made with it.
// DiscoverInterpreters blocks (it runs each candidate once): call it at startup or off the core
// thread. The returned values are plain data.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"

namespace gsk::python {

struct Interpreter {
  std::string version;              // "3.11.7"
  std::string minor;                // "3.11"
  std::filesystem::path path;       // as found (may be a symlink)
  std::filesystem::path real_path;  // symlinks resolved
  std::string source;               // "config", "system", "pyenv", "PATH"
  // A pip that runs on this interpreter, executed from the wheel (`python PIP.whl/pip ...`):
  // the interpreter's own ensurepip wheel, else Debian's /usr/share/python-wheels one when it
  // supports this version. Empty when none fits; then `problem` says why.
  std::filesystem::path pip_wheel;
  bool has_venv = false;            // the venv module imports
  std::string problem;              // "" when usable for builds
  bool usable() const { return problem.empty(); }
};

struct DiscoveryOptions {
  std::vector<std::string> configured;  // [python] interpreters
  std::string path_env;                 // $PATH of the daemon
  std::string pyenv_root;               // $PYENV_ROOT, or "" for ~/.pyenv
  std::string home;                     // $HOME
  std::vector<std::filesystem::path> system_dirs = {"/usr/bin", "/usr/local/bin"};
  std::filesystem::path debian_wheels_dir = "/usr/share/python-wheels";
};

// Every distinct interpreter (by resolved path), best first within each minor version:
// configured, then system, then pyenv, then others on PATH. Interpreters older than 3.8 are
// listed with a problem ("the worker shim needs Python 3.8 or later").
std::vector<Interpreter> DiscoverInterpreters(const DiscoveryOptions& options);

// Picks the first usable interpreter whose minor version is `minor` ("3.11"). The error lists
// what is available and how to add an interpreter.
Result<Interpreter> PickInterpreter(const std::vector<Interpreter>& found, const std::string& minor);

// Candidate paths, deduplicated, in preference order (exposed for tests).
std::vector<std::pair<std::filesystem::path, std::string>> CandidatePaths(
    const DiscoveryOptions& options);

}  // namespace gsk::python
