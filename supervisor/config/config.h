// Config: the daemon's settings, from embedded defaults, then a TOML file, then command-line
// flags (later wins). A plain value type; load once at startup on the main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"

namespace gsk::config {

struct ServerConfig {
  std::string listen = "127.0.0.1:40051";  // HOST:PORT; port 0 picks a free port
  std::string admin_socket;                // "" -> $RUNTIME_DIRECTORY/admin.sock or <state>/admin.sock
  uint32_t admin_socket_mode = 0600;
  std::string api_token;                   // "" -> api_token_file or generated
  std::string api_token_file;              // "" -> <state>/api-token
  uint64_t max_body_bytes = 1 << 20;
  int read_timeout_seconds = 30;
  int idle_timeout_seconds = 120;
  int max_connections = 256;
};

struct PackagesConfig {
  std::string index_url;
  std::vector<std::string> extra_index_urls;
  std::vector<std::string> find_links;
  bool offline = false;
  std::vector<std::string> trusted_hosts;
  std::string cache_dir;
  bool allow_pip_options = false;
  bool allow_direct_urls = false;
  bool allow_local_paths = false;
};

struct BuildsConfig {
  int timeout_seconds = 1800;               // a whole env build (venv + pip + verify)
  int max_concurrent = 2;                   // env builds running at once; others queue
  int64_t disk_budget_mb = 20480;           // envs on disk; unreferenced ones are collected LRU
  bool compile_bytecode = false;            // pip --no-compile unless true
};

// Worker supervision ([workers]); see packaging/config.toml for what each does.
struct WorkersConfig {
  std::string socket;  // "" -> $RUNTIME_DIRECTORY/workers.sock or <state>/workers.sock
  std::chrono::milliseconds registration_timeout{30'000};
  std::chrono::milliseconds start_seconds{10'000};
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{60'000};
  int max_quick_failures = 5;
  std::chrono::milliseconds stop_timeout{10'000};
  std::chrono::milliseconds reconnect{60'000};
  std::chrono::milliseconds heartbeat{5'000};
  int64_t log_rotate_bytes = 10 << 20;
  int64_t memory_limit_mb = 0;  // 0 = no RLIMIT_AS
  int64_t open_files = 0;       // 0 = inherited
  int64_t max_processes = 0;    // 0 = inherited
};

struct LimitsConfig {
  int64_t max_kernels = 100000;
  int max_workers_per_kernel = 64;
};

struct Config {
  ServerConfig server;
  std::filesystem::path state_dir;  // resolved: never empty after Resolve()
  std::vector<std::string> python_interpreters;
  std::string shim_wheel;  // "" = next to the binary (build tree) or /usr/share/giskard-supervisor
  PackagesConfig packages;
  LimitsConfig limits;
  BuildsConfig builds;
  WorkersConfig workers;
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
  std::filesystem::path PipCacheDir() const;  // [packages] cache_dir or <state>/cache/pip
  // The index settings that change what pip installs; part of every env hash.
  std::string IndexFingerprint() const;
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
