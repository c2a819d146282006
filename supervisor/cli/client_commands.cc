// CLI11 wiring of the client subcommands; what they do is in kernel_commands.cc.
#include "supervisor/cli/client_commands.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <iostream>
#include <iterator>
#include <memory>

#include "supervisor/cli/commands.h"

namespace gsk::cli {
namespace {

constexpr const char* kClientGroup = "Client options (before or after the subcommand)";

std::vector<CLI::Option*> AddGlobalOptions(CLI::App& app, ConnectionFlags& flags) {
  std::vector<CLI::Option*> options;
  options.push_back(
      app.add_option("--url", flags.url,
                     "Daemon REST URL, e.g. http://127.0.0.1:40051 (or $GISKARD_SUPERVISOR_URL); "
                     "needs an API token")
          ->group(kClientGroup));
  options.push_back(app.add_option("--token", flags.token,
                                   "API token for --url (or $GISKARD_SUPERVISOR_TOKEN; default: "
                                   "<state-dir>/api-token when readable)")
                        ->group(kClientGroup));
  options.push_back(
      app.add_option("--token-file", flags.token_file, "File holding the API token for --url")
          ->group(kClientGroup));
  options.push_back(
      app.add_option("--socket", flags.socket,
                     "Admin Unix socket of the daemon (or $GISKARD_SUPERVISOR_SOCKET; default: "
                     "/run/giskard-supervisor/admin.sock or <state-dir>/admin.sock)")
          ->group(kClientGroup));
  options.push_back(
      app.add_option(
             "--state-dir", flags.state_dir,
             "The daemon's state directory: use DIR/admin.sock (and DIR/api-token with --url)")
          ->group(kClientGroup));
  return options;
}

// The global client options land on the top-level app, so `--state-dir DIR serve` would be
// taken by the client and silently ignored by `serve`: refuse it instead.
void RejectGlobalsWithoutClientCommand(CLI::App& app, std::vector<CLI::Option*> globals,
                                       std::vector<CLI::App*> client_commands) {
  app.parse_complete_callback([globals, client_commands] {
    for (CLI::App* command : client_commands) {
      if (command->parsed()) return;
    }
    for (CLI::Option* option : globals) {
      if (option->count() > 0) {
        throw CLI::ValidationError(
            option->get_name(),
            "is an option of the client commands (kernels, workers, status, version); "
            "give another subcommand's options after its name, e.g. "
            "`serve --state-dir DIR`");
      }
    }
  });
}


void AddWaitOptions(CLI::App& command, WaitFlags& wait) {
  CLI::Option* flag = command.add_flag(
      "--wait", wait.wait,
      "Wait until the environment is built, showing progress; exit 8 if the build fails");
  command
      .add_option("--wait-timeout", wait.timeout_seconds,
                  "With --wait: give up after this many seconds (exit 1; the build goes on)")
      ->check(CLI::PositiveNumber)
      ->needs(flag);
}

void AddCreate(CLI::App& kernels, const std::shared_ptr<Shared>& shared) {
  auto flags = std::make_shared<CreateFlags>();
  auto wait = std::make_shared<WaitFlags>();
  auto json = std::make_shared<bool>(false);
  auto workers = std::make_shared<int>(0);
  CLI::App* create =
      Leaf(kernels, "create", "Declare a kernel (or post a Hub kernel document)", json.get());
  create->add_option("name", flags->name, "Kernel name (with -f: overrides the document's name)");
  auto* file = create->add_option("-f,--file", flags->document_file,
                                  "Post this Hub kernel document (JSON) as is; - reads stdin");
  std::vector<CLI::Option*> doc_options = {
      create->add_option("--python", flags->python, "Python version, e.g. 3.11"),
      create
          ->add_option("-r,--requirements-file", flags->requirement_files,
                       "Requirements file, one requirement per line (repeatable)")
          ->allow_extra_args(false),
      create
          ->add_option("--requirement", flags->requirements,
                       "One requirement line, e.g. 'numpy<2' (repeatable)")
          ->allow_extra_args(false),
      create->add_option("--frozen", flags->frozen_file,
                         "Frozen dependencies file (pkg==version lines, e.g. pip freeze output)"),
      create->add_option("--workers", *workers, "Worker processes wanted")
          ->check(CLI::NonNegativeNumber),
      create->add_option("--env", flags->env, "KEY=VALUE for the workers' environment (repeatable)")
          ->allow_extra_args(false),
      create->add_option("--type", flags->type, "PROCESS (managed, default) or UNMANAGED")
          ->check(CLI::IsMember({"PROCESS", "UNMANAGED"}, CLI::ignore_case)),
  };
  for (CLI::Option* option : doc_options) file->excludes(option);
  AddWaitOptions(*create, *wait);
  CLI::Option* workers_option = doc_options[4];
  create->callback([shared, flags, wait, json, workers, workers_option] {
    CreateFlags f = *flags;
    if (workers_option->count() > 0) f.workers = *workers;
    std::transform(f.type.begin(), f.type.end(), f.type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KernelsCreate(c, f, *wait, *json, shared->env);
    });
  });
}

struct BuildArgs {
  std::string name;
  bool json = false;
  bool follow = false;
  WaitFlags wait;
};

void AddBuildCommands(CLI::App& kernels, const std::shared_ptr<Shared>& shared) {
  auto rebuild = std::make_shared<BuildArgs>();
  CLI::App* rebuild_cmd = Leaf(
      kernels, "rebuild", "Build the kernel's environment again, from scratch", &rebuild->json);
  rebuild_cmd->add_option("name", rebuild->name, "Kernel name")->required();
  AddWaitOptions(*rebuild_cmd, rebuild->wait);
  rebuild_cmd->callback([shared, rebuild] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KernelsRebuild(c, rebuild->name, rebuild->wait, rebuild->json, shared->env);
    });
  });

  auto logs = std::make_shared<BuildArgs>();
  CLI::App* logs_cmd = Leaf(kernels, "logs", "Print the build log (pip's output)", &logs->json);
  logs_cmd->add_option("name", logs->name, "Kernel name")->required();
  logs_cmd->add_flag("-f,--follow", logs->follow,
                     "Keep printing new output until the build ends (Ctrl-C stops)");
  logs_cmd->callback([shared, logs] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KernelsLogs(c, logs->name, logs->follow, logs->json, shared->env);
    });
  });
}

CLI::App* AddKernels(CLI::App& app, const std::shared_ptr<Shared>& shared) {
  CLI::App* kernels = app.add_subcommand("kernels",
                                         "Declare and inspect kernels (the Python "
                                         "environments of ML workers)");
  kernels->require_subcommand(1);
  kernels->fallthrough();

  auto list_json = std::make_shared<bool>(false);
  Leaf(*kernels, "list", "List kernels", list_json.get())->callback([shared, list_json] {
    RunWithClient(*shared,
                  [&](const HttpClient& c) { return KernelsList(c, *list_json, shared->env); });
  });

  auto show = std::make_shared<std::pair<std::string, bool>>();
  CLI::App* show_cmd = Leaf(*kernels, "show", "Show one kernel", &show->second);
  show_cmd->add_option("name", show->first, "Kernel name")->required();
  show_cmd->callback([shared, show] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KernelsShow(c, show->first, show->second, shared->env);
    });
  });

  AddCreate(*kernels, shared);

  auto del = std::make_shared<std::pair<std::string, bool>>();
  CLI::App* del_cmd = Leaf(*kernels, "delete", "Delete a kernel", &del->second);
  del_cmd->add_option("name", del->first, "Kernel name")->required();
  del_cmd->callback([shared, del] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KernelsDelete(c, del->first, del->second, shared->env);
    });
  });
  AddBuildCommands(*kernels, shared);
  AddKernelWorkerCommands(*kernels, shared);
  return kernels;
}

std::vector<CLI::App*> AddStatusAndVersion(CLI::App& app, const std::shared_ptr<Shared>& shared) {
  auto status_json = std::make_shared<bool>(false);
  CLI::App* status =
      Leaf(app, "status", "Show whether the daemon is reachable, and its status", status_json.get())
          ->callback([shared, status_json] {
            RunWithClient(*shared, [&](const HttpClient& c) {
              return DaemonStatus(c, *status_json, shared->env);
            });
          });

  auto version_json = std::make_shared<bool>(false);
  CLI::App* version =
      Leaf(app, "version", "Show the client's and the daemon's versions", version_json.get())
          ->callback([shared, version_json] {
            auto target = SelectConnection(shared->connection, shared->env.host);
            if (!target.ok()) {
              *shared->exit_code =
                  Version(nullptr, *version_json, shared->env, target.status().message());
              return;
            }
            ClientOptions quick = shared->env.client_options;  // a version check must not hang
            quick.connect_timeout =
                std::min(quick.connect_timeout, std::chrono::milliseconds(2000));
            quick.request_timeout =
                std::min(quick.request_timeout, std::chrono::milliseconds(5000));
            HttpClient client(std::move(target).value(), quick);
            *shared->exit_code = Version(&client, *version_json, shared->env);
          });
  return {status, version};
}

}  // namespace

CLI::App* Leaf(CLI::App& parent, const char* name, const char* description, bool* json) {
  CLI::App* sub = parent.add_subcommand(name, description);
  sub->fallthrough();
  if (json != nullptr) sub->add_flag("--json", *json, "Print the daemon's JSON answer");
  return sub;
}

CommandEnv RealCommandEnv() {
  CommandEnv env;
  env.out = &std::cout;
  env.err = &std::cerr;
  env.host = RealHostEnvironment();
  env.read_file = [](const std::string& path) -> Result<std::string> {
    if (path != "-") return ReadTextFile(path);
    std::string text(std::istreambuf_iterator<char>(std::cin), {});
    if (std::cin.bad()) return InvalidArgument("cannot read standard input");
    return text;
  };
  return env;
}

void AddClientCommands(CLI::App& app, int* exit_code, const CommandEnv& env) {
  auto shared = std::make_shared<Shared>();
  shared->env = env;
  shared->exit_code = exit_code;
  std::vector<CLI::Option*> globals = AddGlobalOptions(app, shared->connection);
  CLI::App* kernels = AddKernels(app, shared);
  std::vector<CLI::App*> commands = AddStatusAndVersion(app, shared);
  commands.push_back(kernels);
  commands.push_back(AddWorkerCommands(app, shared));
  commands.push_back(AddKeyCommands(app, shared));
  AddPredictCommand(app, shared);
  commands.push_back(app.get_subcommand("predict"));
  RejectGlobalsWithoutClientCommand(app, std::move(globals), std::move(commands));
}

void AddClientCommands(CLI::App& app, int* exit_code) {
  AddClientCommands(app, exit_code, RealCommandEnv());
}

}  // namespace gsk::cli
