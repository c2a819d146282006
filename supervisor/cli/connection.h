// Connection selection: which daemon the CLI talks to, the local admin Unix socket (trusted by
// file permissions, no token) or a TCP URL with a bearer token, decided from flags and the
// environment. Pure functions over injected lookups (tests control the environment); thread-safe
// when the lookups are.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace gsk::cli {

// The global client options as given on the command line ("" when absent).
struct ConnectionFlags {
  std::string url;         // --url
  std::string token;       // --token
  std::string token_file;  // --token-file
  std::string socket;      // --socket
  std::string state_dir;   // --state-dir
};

// What selection may look at. An unset or empty variable reads as nullopt.
struct HostEnvironment {
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  std::function<bool(const std::string& path)> exists;
  // The contents of a file, or nullopt when it cannot be read.
  std::function<std::optional<std::string>(const std::string& path)> read_file;
};

// The process environment and the real filesystem.
HostEnvironment RealHostEnvironment();

struct HttpUrl {
  std::string host;  // "127.0.0.1", "example.org", "::1" (no brackets)
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing slash), prepended to every request path
};

// Parses "http://HOST[:PORT][/PREFIX]"; the scheme may be omitted. Errors (kInvalidArgument)
// name the URL and the expected form; https is rejected (this client speaks plain HTTP).
Result<HttpUrl> ParseHttpUrl(std::string_view url);

struct ConnectionTarget {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string socket_path;   // kUnix
  HttpUrl url;               // kTcp
  std::string url_text;      // kTcp, as given
  std::string token;         // kTcp; "" when no token was found
  std::string token_source;  // where token came from ("--token", a file path, ...); "" if none
  std::string chosen_by;     // "--url", "$GISKARD_SUPERVISOR_SOCKET", "default search", ...
  std::vector<std::string> tried;  // every socket path looked at by the default search

  // "unix socket /run/giskard-supervisor/admin.sock" or "http://127.0.0.1:40051".
  std::string Describe() const;
};

// First match wins: --url / $GISKARD_SUPERVISOR_URL (token from --token /
// $GISKARD_SUPERVISOR_TOKEN / --token-file, else <state dir>/api-token when readable); else
// --socket / $GISKARD_SUPERVISOR_SOCKET; else --state-dir DIR (DIR/admin.sock); else the first
// existing of DefaultSocketCandidates() (the first candidate when none exists).
// Errors (kInvalidArgument, a usage error): a malformed URL, an unreadable or empty --token-file.
Result<ConnectionTarget> SelectConnection(const ConnectionFlags& flags, const HostEnvironment& env);

// /run/giskard-supervisor/admin.sock, $STATE_DIRECTORY/admin.sock,
// $XDG_STATE_HOME/giskard-supervisor/admin.sock, ~/.local/state/giskard-supervisor/admin.sock
// (those whose variables are set).
std::vector<std::string> DefaultSocketCandidates(const HostEnvironment& env);

}  // namespace gsk::cli
