#include "supervisor/config/config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include <toml++/toml.h>

namespace gsk::config {
namespace {

// Reads typed values from one TOML table and remembers which keys were consumed so that
// leftovers (typos) are reported instead of silently ignored.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string section, std::string source)
      : table_(table), section_(std::move(section)), source_(std::move(source)) {}

  Status Str(const char* key, std::string& out) { return Get<std::string>(key, out, "a string"); }
  Status Bool(const char* key, bool& out) { return Get<bool>(key, out, "true or false"); }

  template <typename Int>
  Status Integer(const char* key, Int& out, int64_t min, int64_t max) {
    int64_t v = static_cast<int64_t>(out);
    GSK_RETURN_IF_ERROR(Get<int64_t>(key, v, "an integer"));
    if (v < min || v > max) {
      return Error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                            ", got " + std::to_string(v));
    }
    out = static_cast<Int>(v);
    return Status::Ok();
  }

  // A duration given as a number of seconds (fractions allowed), between min and max seconds.
  Status Seconds(const char* key, std::chrono::milliseconds& out, double min, double max) {
    seen_.insert(key);
    const toml::node* node = table_.get(key);
    if (node == nullptr) return Status::Ok();
    std::optional<double> v = node->value<double>();  // integers convert too
    if (!v || !(*v >= min && *v <= max)) {
      return Error(key, "expected a number of seconds between " + Trim(min) + " and " + Trim(max));
    }
    out = std::chrono::milliseconds(static_cast<int64_t>(*v * 1000.0 + 0.5));
    return Status::Ok();
  }

  static std::string Trim(double v) {
    std::string text = std::to_string(v);
    while (text.find('.') != std::string::npos && (text.back() == '0' || text.back() == '.')) {
      bool dot = text.back() == '.';
      text.pop_back();
      if (dot) break;
    }
    return text;
  }

  Status StrList(const char* key, std::vector<std::string>& out) {
    seen_.insert(key);
    const toml::node* node = table_.get(key);
    if (node == nullptr) return Status::Ok();
    const toml::array* arr = node->as_array();
    if (arr == nullptr) return Error(key, "expected an array of strings");
    out.clear();
    for (const toml::node& item : *arr) {
      auto s = item.value<std::string>();
      if (!s) return Error(key, "expected an array of strings");
      out.push_back(*s);
    }
    return Status::Ok();
  }

  Status RejectUnknown() const {
    for (const auto& [key, node] : table_) {
      std::string k(key.str());
      if (!seen_.count(k)) return Error(k, "unknown key (check the spelling; see packaging/config.toml)");
    }
    return Status::Ok();
  }

  Status Error(const std::string& key, const std::string& what) const {
    return InvalidArgument(source_ + ": [" + section_ + "] " + key + ": " + what)
        .WithDetail("field", section_ + "." + key);
  }

 private:
  template <typename T>
  Status Get(const char* key, T& out, const char* expected) {
    seen_.insert(key);
    const toml::node* node = table_.get(key);
    if (node == nullptr) return Status::Ok();
    auto v = node->value_exact<T>();
    if (!v) return Error(key, std::string("expected ") + expected);
    out = *v;
    return Status::Ok();
  }

  const toml::table& table_;
  std::string section_;
  std::string source_;
  std::set<std::string> seen_;
};

Status ReadServer(TableReader& r, ServerConfig& s) {
  GSK_RETURN_IF_ERROR(r.Str("listen", s.listen));
  GSK_RETURN_IF_ERROR(r.Str("admin_socket", s.admin_socket));
  std::string mode;
  GSK_RETURN_IF_ERROR(r.Str("admin_socket_mode", mode));
  if (!mode.empty()) {
    char* end = nullptr;
    unsigned long m = std::strtoul(mode.c_str(), &end, 8);
    if (*end != '\0' || m > 0777 || (m & 0600) != 0600) {
      return r.Error("admin_socket_mode", "expected an octal mode such as \"0600\" or \"0660\" "
                                          "that lets the owner read and write");
    }
    s.admin_socket_mode = static_cast<uint32_t>(m);
  }
  GSK_RETURN_IF_ERROR(r.Str("api_token", s.api_token));
  GSK_RETURN_IF_ERROR(r.Str("api_token_file", s.api_token_file));
  GSK_RETURN_IF_ERROR(r.Str("tls_certificate", s.tls_certificate));
  GSK_RETURN_IF_ERROR(r.Str("tls_private_key", s.tls_private_key));
  if (s.tls_certificate.empty() != s.tls_private_key.empty()) {
    return r.Error(s.tls_certificate.empty() ? "tls_certificate" : "tls_private_key",
                   "set both tls_certificate and tls_private_key (PEM files) for HTTPS, or "
                   "neither for plain HTTP");
  }
  server::ServerOptions& h = s.http;
  GSK_RETURN_IF_ERROR(r.Integer("max_body_bytes", h.max_body_bytes, 1024, int64_t{1} << 30));
  int64_t read = h.read_timeout.count();
  int64_t idle = h.idle_timeout.count();
  GSK_RETURN_IF_ERROR(r.Integer("read_timeout_seconds", read, 1, 3600));
  GSK_RETURN_IF_ERROR(r.Integer("idle_timeout_seconds", idle, 1, 86400));
  h.read_timeout = std::chrono::seconds(read);
  h.idle_timeout = std::chrono::seconds(idle);
  GSK_RETURN_IF_ERROR(r.Integer("max_connections", h.max_connections, 0, 1000000));
  return r.RejectUnknown();
}

Status ReadPackages(TableReader& r, PackagesConfig& p, spec::ParseOptions& rules) {
  envs::PackageIndex& index = p.index;
  GSK_RETURN_IF_ERROR(r.Str("index_url", index.index_url));
  GSK_RETURN_IF_ERROR(r.StrList("extra_index_urls", index.extra_index_urls));
  GSK_RETURN_IF_ERROR(r.StrList("find_links", index.find_links));
  GSK_RETURN_IF_ERROR(r.Bool("offline", index.offline));
  GSK_RETURN_IF_ERROR(r.StrList("trusted_hosts", index.trusted_hosts));
  GSK_RETURN_IF_ERROR(r.Str("cache_dir", p.cache_dir));
  GSK_RETURN_IF_ERROR(r.Bool("allow_pip_options", rules.allow_pip_options));
  GSK_RETURN_IF_ERROR(r.Bool("allow_direct_urls", rules.allow_direct_urls));
  GSK_RETURN_IF_ERROR(r.Bool("allow_local_paths", rules.allow_local_paths));
  return r.RejectUnknown();
}

Status ReadWorkers(TableReader& r, WorkersConfig& w) {
  GSK_RETURN_IF_ERROR(r.Str("socket", w.socket));
  GSK_RETURN_IF_ERROR(r.Seconds("registration_timeout_seconds", w.registration_deadline, 0.1, 3600));
  GSK_RETURN_IF_ERROR(r.Seconds("start_seconds", w.start_seconds, 0, 3600));
  GSK_RETURN_IF_ERROR(r.Seconds("backoff_initial_seconds", w.backoff_initial, 0.01, 3600));
  GSK_RETURN_IF_ERROR(r.Seconds("backoff_max_seconds", w.backoff_max, 0.01, 86400));
  GSK_RETURN_IF_ERROR(r.Integer("max_quick_failures", w.max_quick_failures, 1, 1000));
  GSK_RETURN_IF_ERROR(r.Seconds("stop_timeout_seconds", w.stop_grace, 0, 3600));
  GSK_RETURN_IF_ERROR(r.Seconds("reconnect_seconds", w.reconnect_deadline, 0.5, 86400));
  GSK_RETURN_IF_ERROR(r.Seconds("heartbeat_seconds", w.heartbeat, 0.05, 3600));
  GSK_RETURN_IF_ERROR(r.Integer("log_rotate_bytes", w.log_rotate_bytes, 0, int64_t{1} << 40));
  GSK_RETURN_IF_ERROR(r.Integer("memory_limit_mb", w.memory_limit_mb, 0, int64_t{1} << 30));
  GSK_RETURN_IF_ERROR(r.Integer("open_files", w.open_files, 0, 1 << 24));
  GSK_RETURN_IF_ERROR(r.Integer("max_processes", w.max_processes, 0, 1 << 24));
  GSK_RETURN_IF_ERROR(r.Bool("fork_server", w.fork_server));
  GSK_RETURN_IF_ERROR(r.Seconds("template_idle_seconds", w.template_idle, 0, 86400));
  if (w.backoff_max < w.backoff_initial) {
    return r.Error("backoff_max_seconds", "must not be less than backoff_initial_seconds");
  }
  return r.RejectUnknown();
}

Status ReadModels(TableReader& r, service::ModelOptions& m) {
  std::vector<std::string> roots;
  for (const auto& root : m.roots) roots.push_back(root.string());
  GSK_RETURN_IF_ERROR(r.StrList("roots", roots));
  m.roots.assign(roots.begin(), roots.end());
  for (const auto& root : m.roots) {
    if (!root.is_absolute()) return r.Error("roots", "\"" + root.string() + "\" is not an absolute path");
  }
  GSK_RETURN_IF_ERROR(r.Seconds("call_timeout_seconds", m.call_timeout, 0.1, 86400));
  GSK_RETURN_IF_ERROR(r.Seconds("max_call_timeout_seconds", m.max_call_timeout, 0.1, 86400));
  GSK_RETURN_IF_ERROR(r.Integer("queue_size", m.queue_size, 0, 1'000'000));
  GSK_RETURN_IF_ERROR(r.Integer("max_request_bytes", m.max_request_bytes, 1024, 16'000'000));
  GSK_RETURN_IF_ERROR(r.Integer("models_per_worker", m.models_per_worker, 1, 1000));
  if (m.max_call_timeout < m.call_timeout) {
    return r.Error("max_call_timeout_seconds", "must not be less than call_timeout_seconds");
  }
  return r.RejectUnknown();
}

Status ReadSections(const toml::table& root, const std::string& src, Config& c) {
  static const std::set<std::string> kSections = {"server", "state",  "python",  "packages",
                                                  "limits", "builds", "workers", "models",
                                                  "log"};
  for (const auto& [key, node] : root) {
    std::string k(key.str());
    if (!kSections.count(k) || !node.is_table()) {
      return InvalidArgument(src + ": unknown section or key \"" + k +
                             "\"; expected one of [server], [state], [python], [packages], "
                             "[limits], [builds], [workers], [models], [log]")
          .WithDetail("field", k);
    }
  }
  auto section = [&](const char* name) -> const toml::table& {
    static const toml::table kEmpty;
    const toml::table* t = root[name].as_table();
    return t ? *t : kEmpty;
  };
  TableReader server(section("server"), "server", src);
  GSK_RETURN_IF_ERROR(ReadServer(server, c.server));
  TableReader state(section("state"), "state", src);
  std::string dir = c.state_dir.string();
  GSK_RETURN_IF_ERROR(state.Str("dir", dir));
  c.state_dir = dir;
  GSK_RETURN_IF_ERROR(state.RejectUnknown());
  TableReader python(section("python"), "python", src);
  GSK_RETURN_IF_ERROR(python.StrList("interpreters", c.python_interpreters));
  GSK_RETURN_IF_ERROR(python.Str("shim_wheel", c.shim_wheel));
  GSK_RETURN_IF_ERROR(python.RejectUnknown());
  TableReader packages(section("packages"), "packages", src);
  GSK_RETURN_IF_ERROR(ReadPackages(packages, c.packages, c.kernels.parse));
  TableReader limits(section("limits"), "limits", src);
  GSK_RETURN_IF_ERROR(limits.Integer("max_kernels", c.kernels.max_kernels, 1, 10'000'000));
  GSK_RETURN_IF_ERROR(
      limits.Integer("max_workers_per_kernel", c.kernels.parse.max_workers, 0, 1024));
  GSK_RETURN_IF_ERROR(limits.RejectUnknown());
  TableReader builds(section("builds"), "builds", src);
  GSK_RETURN_IF_ERROR(builds.Integer("timeout_seconds", c.builds.timeout_seconds, 10, 86400));
  GSK_RETURN_IF_ERROR(builds.Integer("max_concurrent", c.builds.max_concurrent, 1, 64));
  GSK_RETURN_IF_ERROR(
      builds.Integer("disk_budget_mb", c.builds.disk_budget_mb, 1, int64_t{1} << 40));
  GSK_RETURN_IF_ERROR(builds.Bool("compile_bytecode", c.builds.compile_bytecode));
  GSK_RETURN_IF_ERROR(builds.RejectUnknown());
  TableReader workers(section("workers"), "workers", src);
  GSK_RETURN_IF_ERROR(ReadWorkers(workers, c.workers));
  TableReader models(section("models"), "models", src);
  GSK_RETURN_IF_ERROR(ReadModels(models, c.models));
  TableReader log(section("log"), "log", src);
  GSK_RETURN_IF_ERROR(log.Str("level", c.log_level));
  return log.RejectUnknown();
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::filesystem::path DefaultStateDir() {
  if (std::string d = Getenv("STATE_DIRECTORY"); !d.empty()) {
    return d.substr(0, d.find(':'));  // systemd may pass several, colon-separated
  }
  if (std::string x = Getenv("XDG_STATE_HOME"); !x.empty()) {
    return std::filesystem::path(x) / "giskard-supervisor";
  }
  std::string home = Getenv("HOME");
  if (home.empty()) home = "/var/lib";
  return std::filesystem::path(home) / ".local/state/giskard-supervisor";
}

}  // namespace

std::filesystem::path Config::AdminSocketPath() const {
  if (!server.admin_socket.empty()) return server.admin_socket;
  if (std::string r = Getenv("RUNTIME_DIRECTORY"); !r.empty()) {
    return std::filesystem::path(r.substr(0, r.find(':'))) / "admin.sock";
  }
  return state_dir / "admin.sock";
}

std::filesystem::path Config::WorkerSocketPath() const {
  if (!workers.socket.empty()) return workers.socket;
  if (std::string r = Getenv("RUNTIME_DIRECTORY"); !r.empty()) {
    return std::filesystem::path(r.substr(0, r.find(':'))) / "workers.sock";
  }
  return state_dir / "workers.sock";
}

std::filesystem::path Config::ApiTokenPath() const {
  if (!server.api_token_file.empty()) return server.api_token_file;
  return state_dir / "api-token";
}

std::filesystem::path Config::PipCacheDir() const {
  if (!packages.cache_dir.empty()) return packages.cache_dir;
  return state_dir / "cache/pip";
}

Result<Config> LoadTomlString(std::string_view text, std::string_view source_name, Config base) {
  std::string src(source_name);
  toml::table root;
  try {
    root = toml::parse(text, src);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return InvalidArgument(src + ":" + std::to_string(where.line) + ":" +
                           std::to_string(where.column) + ": " + std::string(e.description()));
  }
  GSK_RETURN_IF_ERROR(ReadSections(root, src, base));
  return base;
}

Result<Config> LoadTomlFile(const std::filesystem::path& path, Config base) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return InvalidArgument("cannot read config file " + path.string() + ": " +
                           std::strerror(errno));
  }
  std::string text;
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  Result<Config> c = LoadTomlString(text, path.string(), std::move(base));
  if (c.ok()) c->config_file = path;
  return c;
}

Result<HostPort> ParseHostPort(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("listen address \"" + std::string(text) + "\" " + why +
                           "; expected HOST:PORT such as 127.0.0.1:40051 or [::1]:40051")
        .WithDetail("field", "server.listen");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("has no port");
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']') return bad("has an unclosed [");
    host = host.substr(1, host.size() - 2);
  }
  if (port.empty() || port.size() > 5) return bad("has an invalid port");
  unsigned value = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') return bad("has an invalid port");
    value = value * 10 + static_cast<unsigned>(ch - '0');
  }
  if (value > 65535) return bad("has a port above 65535");
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

Result<Config> Resolve(Config config) {
  if (config.state_dir.empty()) config.state_dir = DefaultStateDir();
  config.kernels.index_fingerprint = config.IndexFingerprint();
  std::error_code ec;
  config.state_dir = std::filesystem::absolute(config.state_dir, ec);
  GSK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(config.server.listen));
  (void)hp;
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (!kLevels.count(config.log_level)) {
    return InvalidArgument("[log] level \"" + config.log_level +
                           "\" is not one of trace, debug, info, warn, error")
        .WithDetail("field", "log.level");
  }
  std::string sock = config.AdminSocketPath().string();
  if (sock.size() >= 108) {
    return InvalidArgument("admin socket path " + sock + " is longer than 107 bytes, the limit "
                           "of Unix sockets; set [server] admin_socket to a shorter path")
        .WithDetail("field", "server.admin_socket");
  }
  std::string workers_sock = config.WorkerSocketPath().string();
  if (workers_sock.size() >= 108) {
    return InvalidArgument("worker socket path " + workers_sock + " is longer than 107 bytes, "
                           "the limit of Unix sockets; set [workers] socket to a shorter path")
        .WithDetail("field", "workers.socket");
  }
  return config;
}

}  // namespace gsk::config
