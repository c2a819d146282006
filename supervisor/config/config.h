// Config: the daemon's settings, from embedded defaults, then a TOML file, then command-line
// flags (later wins). A plain value type; load once at startup on the main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "supervisor/envs/env_options.h"
#include "supervisor/server/server_options.h"
#include "supervisor/service/service_options.h"
#include "supervisor/workers/worker.h"

namespace gsk::config {

// Each section holds the settings of the component that uses them, in that component's own
// struct (with its defaults); what is only the daemon's is declared here.
struct ServerConfig {
  std::string listen = "127.0.0.1:40051";  // HOST:PORT; port 0 picks a free port
  std::string admin_socket;                // "" -> $RUNTIME_DIRECTORY/admin.sock or <state>/admin.sock
  uint32_t admin_socket_mode = 0600;
  std::string api_token;                   // "" -> api_token_file or generated
  std::string api_token_file;              // "" -> <state>/api-token
  // Both set: the TCP listener speaks HTTPS, and WSS to workers (PEM files; the certificate
  // file holds the chain). Both empty: plain HTTP.
  std::string tls_certificate;
  std::string tls_private_key;
  server::ServerOptions http;              // body limit, timeouts, connections
};

struct PackagesConfig {
  envs::PackageIndex index;
  std::string cache_dir;  // "" -> <state>/cache/pip
  // allow_pip_options, allow_direct_urls, allow_local_paths: Config::kernels.parse.
};

// [workers]: Timings (registration, backoff, stop, reconnect, heartbeat) and the launch settings.
struct WorkersConfig : workers::Timings {
  std::string socket;  // "" -> $RUNTIME_DIRECTORY/workers.sock or <state>/workers.sock
  int64_t log_rotate_bytes = 10 << 20;
  int64_t memory_limit_mb = 0;  // 0 = no RLIMIT_AS
  int64_t open_files = 0;       // 0 = inherited
  int64_t max_processes = 0;    // 0 = inherited
  bool fork_server = true;      // fork workers from a template per env (a kernel may opt out)
  std::chrono::milliseconds template_idle{30'000};  // a template with no worker this long stops
};

struct Config {
  ServerConfig server;
  std::filesystem::path state_dir;  // resolved: never empty after Resolve()
  std::vector<std::string> python_interpreters;
  std::string shim_wheel;  // "" = next to the binary (build tree) or /usr/share/giskard-supervisor
  PackagesConfig packages;
  // [limits] max_kernels, max_workers_per_kernel and [packages] allow_*: the kernel registry's.
  service::ServiceOptions kernels;
  envs::BuildLimits builds;
  WorkersConfig workers;
  service::ModelOptions models;  // [models]; roots default to <state>/models
  std::string log_level = "info";
  std::filesystem::path config_file;  // "" when none was read

  std::filesystem::path AdminSocketPath() const;
  std::filesystem::path ApiTokenPath() const;
  std::filesystem::path WorkerSocketPath() const;
  std::filesystem::path WorkersDir() const { return state_dir / "workers"; }
  std::filesystem::path WorkerLogsDir() const { return state_dir / "logs/workers"; }
  std::filesystem::path DatabasePath() const { return state_dir / "supervisor.db"; }
  std::filesystem::path LockPath() const { return state_dir / "supervisor.lock"; }
  std::filesystem::path EnvsDir() const { return state_dir / "envs"; }
  std::filesystem::path BuildLogsDir() const { return state_dir / "logs/builds"; }
  std::filesystem::path ModelsDir() const { return state_dir / "models"; }
  std::filesystem::path PipCacheDir() const;  // [packages] cache_dir or <state>/cache/pip
  // The index settings that change what pip installs; part of every env hash.
  std::string IndexFingerprint() const { return packages.index.Fingerprint(); }
};

// Reads a TOML file over `base`. Unknown keys and wrong types are errors naming the key and the
// file ("config.toml: [server] listen: expected a string").
Result<Config> LoadTomlFile(const std::filesystem::path& path, Config base);
Result<Config> LoadTomlString(std::string_view text, std::string_view source_name, Config base);

// Fills defaults that depend on the environment (state dir, admin socket) and validates values.
Result<Config> Resolve(Config config);

// Splits "HOST:PORT" ("[::1]:80" for IPv6). Errors name the value and the expected form.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace gsk::config
