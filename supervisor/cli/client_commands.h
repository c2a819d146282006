// The client subcommands of `giskard-supervisor` (every one except `serve`): `kernels
// list|show|create|delete|rebuild|logs`, `status` and `version`, REST calls to a running daemon
// over the local admin socket or a URL. Registration happens once at startup on the main thread.
#pragma once

namespace CLI {
class App;
}

namespace gsk::cli {

// Exit codes of the client subcommands (the README lists them too):
//   0  success
//   1  internal or unexpected error (HTTP 5xx, 405, a malformed answer)
//   2  usage error: bad flags, an unreadable -f/-r/--frozen/--token-file file, a bad --url
//   3  daemon not reachable: no socket file, connection refused, permission denied on the
//      socket, timeout, or HTTP 503 (the daemon is shutting down)
//   4  not found (HTTP 404): no such kernel
//   5  conflict (HTTP 409: the name exists with another document, or the daemon's state forbids
//      the operation; HTTP 429: a configured limit is reached)
//   6  invalid input rejected by the daemon (HTTP 400, 413, 415, 422), or a -f document that is
//      not a JSON object when NAME must be set in it
//   7  authentication failed (HTTP 401 or 403): missing or wrong API token
//   8  --wait: the environment build failed (lastError is printed)
// `version` exits 0 even when no daemon is reachable; `--wait` past --wait-timeout exits 1.
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,
  kExitUsage = 2,
  kExitUnreachable = 3,
  kExitNotFound = 4,
  kExitConflict = 5,
  kExitInvalidInput = 6,
  kExitUnauthenticated = 7,
  kExitBuildFailed = 8,
};

// Registers `kernels list|show|create|delete|rebuild|logs`, `status`, `version` and the global
// client options (--url, --token, --token-file, --socket, --state-dir; accepted before or after
// the subcommand) on `app`. When one of the subcommands runs (its callback, after parsing), it
// stores its exit code in *exit_code, which must outlive `app`.
void AddClientCommands(CLI::App& app, int* exit_code);

}  // namespace gsk::cli
