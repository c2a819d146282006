#include "supervisor/envs/pip_command.h"

namespace gsk::envs {

std::map<std::string, std::string> BuildEnvironment(const std::filesystem::path& venv_dir,
                                                    const std::filesystem::path& scratch_dir) {
  return {
      {"PATH", (venv_dir / "bin").string() + ":/usr/local/bin:/usr/bin:/bin"},
      {"HOME", scratch_dir.string()},
      {"TMPDIR", scratch_dir.string()},
      {"LANG", "C.UTF-8"},
      {"LC_ALL", "C.UTF-8"},
      {"PYTHONNOUSERSITE", "1"},
      {"PYTHONUNBUFFERED", "1"},
      // Ignore every pip.conf (the configuration is ours alone) and keep pip quiet about itself.
      {"PIP_CONFIG_FILE", "/dev/null"},
      {"PIP_DISABLE_PIP_VERSION_CHECK", "1"},
      {"PIP_NO_INPUT", "1"},
      {"PIP_ROOT_USER_ACTION", "ignore"},
      {"VIRTUAL_ENV", venv_dir.string()},
  };
}

Command VenvCommand(const std::filesystem::path& interpreter, const PipInputs& in) {
  // Without pip: ensurepip costs seconds; pip runs from its wheel instead (see DESIGN.md).
  return {{interpreter.string(), "-E", "-s", "-m", "venv", "--without-pip", in.venv_dir.string()},
          BuildEnvironment(in.venv_dir, in.scratch_dir)};
}

Command PipInstallCommand(const PipInputs& in) {
  Command c;
  c.env = BuildEnvironment(in.venv_dir, in.scratch_dir);
  c.argv = {(in.venv_dir / "bin/python").string(),
            "-E",
            "-s",
            (in.pip_wheel / "pip").string(),
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--progress-bar",
            "off"};
  auto add = [&c](const char* flag, const std::string& value) {
    c.argv.emplace_back(flag);
    c.argv.push_back(value);
  };
  const PackageIndex& p = in.index;
  if (p.offline) {
    c.argv.emplace_back("--no-index");
  } else {
    if (!p.index_url.empty()) add("--index-url", p.index_url);
    for (const auto& url : p.extra_index_urls) add("--extra-index-url", url);
    for (const auto& host : p.trusted_hosts) add("--trusted-host", host);
  }
  for (const auto& dir : p.find_links) add("--find-links", dir);
  if (in.cache_dir.empty()) {
    c.argv.emplace_back("--no-cache-dir");
  } else {
    add("--cache-dir", in.cache_dir.string());
  }
  if (!in.compile_bytecode) c.argv.emplace_back("--no-compile");
  add("--requirement", in.requirements_file.string());
  c.argv.push_back(in.shim_wheel.string());
  return c;
}

Command VerifyCommand(const PipInputs& in) {
  // Imports the shim and records the env's package list once, in the env: workers read it at
  // start instead of scanning every installed distribution (the env never changes once built).
  return {{(in.venv_dir / "bin/python").string(), "-E", "-s", "-m", "giskard_worker_shim",
           "write-packages", (in.venv_dir / ".gsk-packages.json").string()},
          BuildEnvironment(in.venv_dir, in.scratch_dir)};
}

}  // namespace gsk::envs
