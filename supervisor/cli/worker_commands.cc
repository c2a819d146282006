// `kernels start|stop` and the `workers` subcommands: CLI11 wiring, REST calls and rendering.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "supervisor/cli/commands.h"
#include "supervisor/cli/log_follow.h"
#include "supervisor/cli/render.h"
#include "supervisor/cli/table.h"

namespace gsk::cli {
namespace {

using nlohmann::json;

std::string WorkerPath(const std::string& id) {
  // Worker ids are "<kernel>-<hex>" with kernel names of [A-Za-z0-9._-]: nothing to encode,
  // but reuse the kernel path encoder for anything unexpected.
  return "/api/v1/workers/" + KernelPath(id).substr(std::string("/api/v1/kernels/").size());
}

struct IdArgs {
  std::string id;
  bool json = false;
  bool follow = false;
};

void AddWorkerAction(CLI::App& workers, const std::shared_ptr<Shared>& shared, const char* action,
                     const char* description) {
  auto args = std::make_shared<IdArgs>();
  CLI::App* cmd = Leaf(workers, action, description, &args->json);
  cmd->add_option("id", args->id, "Worker id (see `workers list`)")->required();
  std::string what = action;
  cmd->callback([shared, args, what] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return WorkersAction(c, args->id, what, args->json, shared->env);
    });
  });
}

}  // namespace

int KernelsStartStop(const HttpClient& client, const std::string& name, bool start,
                     std::optional<int> workers, bool json_output, const CommandEnv& env) {
  std::string body;
  if (workers) body = json{{"workers", *workers}}.dump();
  CallResult r = Call(client, "POST", KernelPath(name) + (start ? "/start" : "/stop"), body, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
  } else if (start) {
    *env.out << "started kernel " << name << ": " << Field(r.body, "workers")
             << " worker(s) wanted" << (Field(r.body, "status") == "ready"
                                            ? ""
                                            : ", launched once its environment is ready (" +
                                                  Field(r.body, "status") + ")")
             << "\n";
  } else {
    *env.out << "stopping the workers of kernel " << name << "\n";
  }
  return kExitOk;
}

// Where an unmanaged worker runs: "host (address:port)"; "-" for a managed worker (this host).
std::string Peer(const json& w) {
  if (w.value("managed", true)) return "-";
  const json& hostname = w.value("hostname", json());
  std::string host = hostname.is_string() ? hostname.get<std::string>() : "";
  std::string address = Field(w, "remoteAddress");
  if (host.empty()) return address;
  return host + " (" + address + ")";
}

std::string RenderWorkerTable(const json& workers) {
  Table table({{"ID"},
               {"KERNEL"},
               {"STATE"},
               {"PID", Align::kRight},
               {"UPTIME", Align::kRight},
               {"RESTARTS", Align::kRight},
               {"PYTHON"},
               {"LAST EXIT"},
               {"PEER"}});
  if (!workers.is_array()) return table.Render();
  for (const json& w : workers) {
    if (!w.is_object()) continue;
    bool running = w.value("state", "") == "running";
    table.AddRow({Field(w, "id"), Field(w, "kernel"), Field(w, "state"),
                  w.value("pid", 0) > 0 ? Field(w, "pid") : "-",
                  running ? Uptime(w.value("uptimeSeconds", json())) : "-", Field(w, "restarts"),
                  Field(w, "pythonVersion"), Field(w, "exit"), Peer(w)});
  }
  return table.Render();
}

std::string RenderWorkerDetails(const json& w) {
  if (!w.is_object()) return Dump(w) + "\n";
  std::string out;
  auto line = [&](const char* label, const std::string& value) {
    out += std::string(label) + ":" + std::string(12 - std::min<size_t>(11, std::strlen(label)), ' ') +
           value + "\n";
  };
  line("id", Field(w, "id"));
  line("kernel", Field(w, "kernel"));
  line("state", Field(w, "state"));
  line("pid", Field(w, "pid"));
  line("uptime", Uptime(w.value("uptimeSeconds", json())));
  line("restarts", Field(w, "restarts"));
  line("last exit", Field(w, "exit"));
  line("last error", Field(w, "lastError"));
  line("started", ShortTime(Field(w, "startedAt")));
  if (!w.value("managed", true)) {
    line("managed", "no (it dialed in: `giskard worker start`)");
    line("active", w.value("active", false) ? "yes (its kernel's calls go to it)" : "no (standby)");
    line("peer", Field(w, "remoteAddress"));
    line("hostname", Field(w, "hostname"));
    line("api key", Field(w, "keyName"));
  } else {
    line("log", Field(w, "logFile"));
  }
  json env = w.value("environment", json::object());
  if (env.is_object() && !env.empty()) {
    out += "environment:\n";
    for (const char* key : {"pythonVersion", "pythonExecutable", "implementation", "platform",
                            "machine", "pid", "processStartTime", "shimVersion"}) {
      out += "  " + std::string(key) + ": " + Field(env, key) + "\n";
    }
    json packages = env.value("packages", json::array());
    out += "packages (" + std::to_string(packages.is_array() ? packages.size() : 0) + "):\n";
    if (packages.is_array()) {
      for (const json& p : packages) {
        if (p.is_object()) out += "  " + Field(p, "name") + "==" + Field(p, "version") + "\n";
      }
    }
  }
  return out;
}

int WorkersList(const HttpClient& client, const std::string& kernel, bool json_output,
                const CommandEnv& env) {
  std::string path = "/api/v1/workers";
  if (!kernel.empty()) path += "?kernel=" + KernelPath(kernel).substr(16);
  CallResult r = Call(client, "GET", path, {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
    return kExitOk;
  }
  json workers = r.body.value("workers", json::array());
  if (!workers.is_array() || workers.empty()) {
    *env.out << "no workers; a managed kernel gets its workers once its environment is ready "
                "(kernels start NAME)\n";
    return kExitOk;
  }
  *env.out << RenderWorkerTable(workers);
  return kExitOk;
}

int WorkersShow(const HttpClient& client, const std::string& id, bool json_output,
                const CommandEnv& env) {
  CallResult r = Call(client, "GET", WorkerPath(id), {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  *env.out << (json_output ? Dump(r.body, 2) + "\n" : RenderWorkerDetails(r.body));
  return kExitOk;
}

int WorkersAction(const HttpClient& client, const std::string& id, const std::string& action,
                  bool json_output, const CommandEnv& env) {
  bool del = action == "delete";
  CallResult r = Call(client, del ? "DELETE" : "POST", WorkerPath(id) + (del ? "" : "/" + action),
                      {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
  } else if (del) {
    *env.out << "deleted worker " << id << " (its kernel gets a new one)\n";
  } else {
    *env.out << "worker " << id << ": " << Field(r.body, "state") << "\n";
  }
  return kExitOk;
}

int WorkersLogs(const HttpClient& client, const std::string& id, bool follow,
                const CommandEnv& env) {
  LogSource source;
  source.path = WorkerPath(id) + "/logs";
  source.gone_ends_follow = true;
  return FollowLog(client, source, follow, /*json_lines=*/false, /*quiet=*/false, env, nullptr);
}

void AddKernelWorkerCommands(CLI::App& kernels, const std::shared_ptr<Shared>& shared) {
  auto start = std::make_shared<IdArgs>();
  auto workers = std::make_shared<int>(-1);
  CLI::App* start_cmd = Leaf(kernels, "start", "Start the kernel's workers", &start->json);
  start_cmd->add_option("name", start->id, "Kernel name")->required();
  start_cmd->add_option("--workers", *workers, "Also set how many workers it wants")
      ->check(CLI::NonNegativeNumber);
  start_cmd->callback([shared, start, workers] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      std::optional<int> n;
      if (*workers >= 0) n = *workers;
      return KernelsStartStop(c, start->id, true, n, start->json, shared->env);
    });
  });
  auto stop = std::make_shared<IdArgs>();
  CLI::App* stop_cmd =
      Leaf(kernels, "stop", "Stop the kernel's workers (until kernels start)", &stop->json);
  stop_cmd->add_option("name", stop->id, "Kernel name")->required();
  stop_cmd->callback([shared, stop] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KernelsStartStop(c, stop->id, false, std::nullopt, stop->json, shared->env);
    });
  });
}

CLI::App* AddWorkerCommands(CLI::App& app, const std::shared_ptr<Shared>& shared) {
  CLI::App* workers =
      app.add_subcommand("workers", "Inspect and control worker processes of managed kernels");
  workers->require_subcommand(1);
  workers->fallthrough();
  auto list = std::make_shared<std::pair<std::string, bool>>();
  CLI::App* list_cmd = Leaf(*workers, "list", "List workers", &list->second);
  list_cmd->add_option("--kernel", list->first, "Only the workers of this kernel");
  list_cmd->callback([shared, list] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return WorkersList(c, list->first, list->second, shared->env);
    });
  });
  auto show = std::make_shared<IdArgs>();
  CLI::App* show_cmd =
      Leaf(*workers, "show", "Show a worker and the environment it reported", &show->json);
  show_cmd->add_option("id", show->id, "Worker id")->required();
  show_cmd->callback([shared, show] {
    RunWithClient(*shared,
                  [&](const HttpClient& c) { return WorkersShow(c, show->id, show->json, shared->env); });
  });
  AddWorkerAction(*workers, shared, "start", "Start a stopped or fatal worker");
  AddWorkerAction(*workers, shared, "stop", "Stop a worker (SIGTERM, then SIGKILL); it stays stopped");
  AddWorkerAction(*workers, shared, "restart", "Stop a worker and start it again");
  AddWorkerAction(*workers, shared, "delete", "Stop a worker and replace it with a new one");
  auto logs = std::make_shared<IdArgs>();
  CLI::App* logs_cmd = Leaf(*workers, "logs", "Print a worker's output", nullptr);
  logs_cmd->add_option("id", logs->id, "Worker id")->required();
  logs_cmd->add_flag("-f,--follow", logs->follow, "Keep printing new output (Ctrl-C stops)");
  logs_cmd->callback([shared, logs] {
    RunWithClient(*shared,
                  [&](const HttpClient& c) { return WorkersLogs(c, logs->id, logs->follow, shared->env); });
  });
  return workers;
}

}  // namespace gsk::cli
