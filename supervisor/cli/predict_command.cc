// `giskard-supervisor predict KERNEL --model PATH --data FILE`: a model call from the command
// line, with the rows read from CSV or JSON.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <ostream>

#include "supervisor/cli/commands.h"
#include "supervisor/cli/predict_data.h"

namespace gsk::cli {
namespace {

using nlohmann::json;

struct PredictArgs {
  std::string kernel;
  std::string model;
  std::string data;
  double timeout_seconds = 0;
  bool json = false;
};

}  // namespace

int Predict(const HttpClient& client, const PredictFlags& flags, const CommandEnv& env) {
  Result<std::string> text = env.read_file(flags.data);
  if (!text.ok()) {
    *env.err << "error: --data " << flags.data << ": " << text.status().message() << "\n";
    return kExitUsage;
  }
  Result<json> body = ReadPredictData(*text);
  if (!body.ok()) {
    *env.err << "error: --data " << flags.data << ": " << body.status().message() << "\n";
    return kExitUsage;
  }
  (*body)["model"] = flags.model;
  if (flags.timeout_seconds > 0) (*body)["timeoutSeconds"] = flags.timeout_seconds;
  CallResult r = Call(client, "POST", KernelPath(flags.kernel) + "/predict", Dump(*body), env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (flags.json) {
    *env.out << Dump(r.body, 2) << "\n";
  } else {
    *env.out << RenderPredictions(r.body);
  }
  return kExitOk;
}

void AddPredictCommand(CLI::App& app, const std::shared_ptr<Shared>& shared) {
  auto args = std::make_shared<PredictArgs>();
  CLI::App* cmd = Leaf(app, "predict", "Run a model of a kernel on rows from a CSV or JSON file",
                       &args->json);
  cmd->add_option("kernel", args->kernel, "Kernel name")->required();
  cmd->add_option("-m,--model", args->model,
                  "Model file or folder, under the daemon's model roots (relative: under the "
                  "first root)")
      ->required();
  cmd->add_option("-d,--data", args->data,
                  "CSV with a header line, or JSON (rows, records, or an object with them); - "
                  "reads standard input")
      ->required();
  cmd->add_option("--timeout", args->timeout_seconds, "Seconds the call may take (default: the "
                                                      "daemon's [models] call_timeout_seconds)")
      ->check(CLI::PositiveNumber);
  cmd->callback([shared, args] {
    Shared s = *shared;
    // The HTTP request lasts as long as the call may.
    double wait = std::max(args->timeout_seconds, 60.0) + 15;
    s.env.client_options.request_timeout = std::max(
        s.env.client_options.request_timeout, std::chrono::milliseconds(static_cast<int64_t>(wait * 1000)));
    PredictFlags flags{args->kernel, args->model, args->data, args->timeout_seconds, args->json};
    RunWithClient(s, [&](const HttpClient& c) { return Predict(c, flags, s.env); });
  });
}

}  // namespace gsk::cli
