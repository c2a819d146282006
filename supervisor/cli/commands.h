// Internal to supervisor/cli: what the client subcommands run, separated from CLI11 wiring so
// that tests drive them with their own streams, environment and daemon. Each function prints its
// result or error and returns an exit code (client_commands.h). Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "supervisor/cli/client.h"
#include "supervisor/cli/client_commands.h"
#include "supervisor/cli/connection.h"
#include "supervisor/cli/kernel_document.h"

namespace CLI {
class App;
}

namespace gsk::cli {

// How the polling loops (`--wait`, `kernels logs -f`) pace themselves. Tests inject a fake clock
// whose sleep advances it, so that no test waits for real.
struct Pacing {
  std::chrono::milliseconds status_poll{200};  // --wait: GET the kernel this often
  std::chrono::milliseconds log_poll{250};     // logs -f: ask for new log bytes this often
  std::size_t log_chunk_bytes = 1 << 20;       // limit= of each build-log request
  std::function<std::chrono::steady_clock::time_point()> now;  // null: steady_clock::now
  std::function<void(std::chrono::milliseconds)> sleep;        // null: sleep_for
};

struct CommandEnv {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  HostEnvironment host;
  FileReader read_file;  // "-" reads standard input
  ClientOptions client_options;
  Pacing pacing;
};

// `--wait` and `--wait-timeout SECONDS` of `kernels create` and `kernels rebuild`.
struct WaitFlags {
  bool wait = false;
  double timeout_seconds = 3600;
};

// What every client subcommand's callback shares: the connection flags, the environment and
// where the exit code goes.
struct Shared {
  ConnectionFlags connection;
  CommandEnv env;
  int* exit_code = nullptr;
};

// Selects the daemon, then runs `command` with a client for it; a selection error is a usage
// error.
template <class Command>
void RunWithClient(const Shared& shared, Command command) {
  auto target = SelectConnection(shared.connection, shared.env.host);
  if (!target.ok()) {
    *shared.env.err << "error: " << target.status().message() << "\n";
    *shared.exit_code = kExitUsage;
    return;
  }
  HttpClient client(std::move(target).value(), shared.env.client_options);
  *shared.exit_code = command(client);
}

// A subcommand that takes the client options (and --json when `json` is set).
CLI::App* Leaf(CLI::App& parent, const char* name, const char* description, bool* json);
// worker_commands.cc: `kernels start|stop` and the `workers` subcommands.
void AddKernelWorkerCommands(CLI::App& kernels, const std::shared_ptr<Shared>& shared);
CLI::App* AddWorkerCommands(CLI::App& app, const std::shared_ptr<Shared>& shared);

int KernelsStartStop(const HttpClient& client, const std::string& name, bool start,
                     std::optional<int> workers, bool json, const CommandEnv& env);
int WorkersList(const HttpClient& client, const std::string& kernel, bool json,
                const CommandEnv& env);
int WorkersShow(const HttpClient& client, const std::string& id, bool json, const CommandEnv& env);
// action: "start", "stop", "restart" (POST) or "delete" (DELETE).
int WorkersAction(const HttpClient& client, const std::string& id, const std::string& action,
                  bool json, const CommandEnv& env);
// Prints the worker's log; with `follow`, keeps printing new output until interrupted or the
// worker is gone (bounded by pacing like kernels logs -f).
int WorkersLogs(const HttpClient& client, const std::string& id, bool follow,
                const CommandEnv& env);
std::string RenderWorkerTable(const nlohmann::json& workers);
std::string RenderWorkerDetails(const nlohmann::json& worker);

// predict_command.cc: `predict KERNEL --model PATH --data FILE`.
struct PredictFlags {
  std::string kernel;
  std::string model;
  std::string data;  // a file, or "-"
  double timeout_seconds = 0;  // 0: the daemon's default
  bool json = false;
};
// POSTs the call; prints a table of predictions (and probabilities), or the answer with --json.
// Unreadable or malformed data exits kExitUsage; the daemon's errors as for other commands.
int Predict(const HttpClient& client, const PredictFlags& flags, const CommandEnv& env);
void AddPredictCommand(CLI::App& app, const std::shared_ptr<Shared>& shared);

// key_commands.cc: `keys create NAME | list | revoke NAME`. create prints the key alone on
// stdout (shown once), so that scripts can capture it.
int KeysCreate(const HttpClient& client, const std::string& name, bool json, const CommandEnv& env);
int KeysList(const HttpClient& client, bool json, const CommandEnv& env);
int KeysRevoke(const HttpClient& client, const std::string& name, bool json, const CommandEnv& env);
CLI::App* AddKeyCommands(CLI::App& app, const std::shared_ptr<Shared>& shared);

// std::cout, std::cerr, the process environment, files and stdin.
CommandEnv RealCommandEnv();

// AddClientCommands with an injected environment (`env` is copied into the callbacks).
void AddClientCommands(CLI::App& app, int* exit_code, const CommandEnv& env);

// The outcome of one REST call. On failure the error has already been printed to env.err.
struct CallResult {
  int exit_code = kExitInternal;
  int http_status = 0;
  nlohmann::json body;  // the parsed answer when exit_code is 0 and JSON was expected
  HttpReply reply;      // the raw answer when exit_code is 0 and JSON was not expected
};

// A 2xx answer is success; with `expect_json` its body must parse as JSON.
CallResult Call(const HttpClient& client, std::string_view method, const std::string& path,
                std::string_view body, const CommandEnv& env, bool expect_json = true);

// JSON text with invalid UTF-8 replaced; indent -1 is one line.
std::string Dump(const nlohmann::json& value, int indent = -1);
// "/api/v1/kernels/NAME" with NAME percent-encoded.
std::string KernelPath(const std::string& name);

int KernelsList(const HttpClient& client, bool json, const CommandEnv& env);
int KernelsShow(const HttpClient& client, const std::string& name, bool json,
                const CommandEnv& env);
int KernelsCreate(const HttpClient& client, const CreateFlags& flags, const WaitFlags& wait,
                  bool json, const CommandEnv& env);
// POST .../rebuild; 409 (a build runs, or the kernel is unmanaged) exits kExitConflict.
int KernelsRebuild(const HttpClient& client, const std::string& name, const WaitFlags& wait,
                   bool json, const CommandEnv& env);
// Prints the build log from its start, page by page. With `follow`, keeps asking for new bytes
// every pacing.log_poll (also while no build has started yet) until the daemon says the build is
// complete and every byte was printed.
int KernelsLogs(const HttpClient& client, const std::string& name, bool follow, bool json,
                const CommandEnv& env);
// `--wait` after a create or rebuild answered `kernel`: polls GET /api/v1/kernels/NAME until the
// status is ready (kExitOk) or failed (kExitBuildFailed, lastError printed), printing a line on
// env.err whenever the progress changes; returns at once for UNMANAGED kernels. After
// wait.timeout_seconds from `started`: kExitInternal with a message. With `json`, prints the
// final kernel document.
int WaitForBuild(const HttpClient& client, const nlohmann::json& kernel,
                 std::chrono::steady_clock::time_point started, const WaitFlags& wait, bool json,
                 const CommandEnv& env);
// pacing.now() or the real clock.
std::chrono::steady_clock::time_point Now(const CommandEnv& env);
int KernelsDelete(const HttpClient& client, const std::string& name, bool json,
                  const CommandEnv& env);
int DaemonStatus(const HttpClient& client, bool json, const CommandEnv& env);
// `client` is null when no connection could be selected (`no_client_reason` says why); the
// client version prints anyway, and the exit code is 0.
int Version(const HttpClient* client, bool json, const CommandEnv& env,
            const std::string& no_client_reason = "");

}  // namespace gsk::cli
