// Internal to supervisor/cli: what the client subcommands run, separated from CLI11 wiring so
// that tests drive them with their own streams, environment and daemon. Each function prints its
// result or error and returns an exit code (client_commands.h). Not thread-safe.
#pragma once

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "supervisor/cli/client.h"
#include "supervisor/cli/client_commands.h"
#include "supervisor/cli/connection.h"
#include "supervisor/cli/kernel_document.h"

namespace CLI {
class App;
}

namespace gsk::cli {

struct CommandEnv {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  HostEnvironment host;
  FileReader read_file;  // "-" reads standard input
  ClientOptions client_options;
};

// std::cout, std::cerr, the process environment, files and stdin.
CommandEnv RealCommandEnv();

// AddClientCommands with an injected environment (`env` is copied into the callbacks).
void AddClientCommands(CLI::App& app, int* exit_code, const CommandEnv& env);

// The outcome of one REST call. On failure the error has already been printed to env.err.
struct CallResult {
  int exit_code = kExitInternal;
  int http_status = 0;
  nlohmann::json body;  // the parsed answer when exit_code is 0
};

CallResult Call(const HttpClient& client, std::string_view method, const std::string& path,
                std::string_view body, const CommandEnv& env);

int KernelsList(const HttpClient& client, bool json, const CommandEnv& env);
int KernelsShow(const HttpClient& client, const std::string& name, bool json,
                const CommandEnv& env);
int KernelsCreate(const HttpClient& client, const CreateFlags& flags, bool json,
                  const CommandEnv& env);
int KernelsDelete(const HttpClient& client, const std::string& name, bool json,
                  const CommandEnv& env);
int DaemonStatus(const HttpClient& client, bool json, const CommandEnv& env);
// `client` is null when no connection could be selected (`no_client_reason` says why); the
// client version prints anyway, and the exit code is 0.
int Version(const HttpClient* client, bool json, const CommandEnv& env,
            const std::string& no_client_reason = "");

}  // namespace gsk::cli
