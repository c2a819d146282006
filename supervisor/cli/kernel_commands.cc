// The client subcommands' bodies: one REST call each, then human or JSON output.
#include <ostream>

#include "supervisor/cli/commands.h"
#include "supervisor/cli/render.h"

namespace gsk::cli {
namespace {

using nlohmann::json;

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

void PrintUnreachableHint(const ConnectionTarget& target, std::ostream& err) {
  if (target.tried.size() > 1) {
    err << "looked for the admin socket at: " << Join(target.tried, ", ") << "\n";
  }
  err << "hint: start the daemon (`sudo systemctl start giskard-supervisor`, or "
         "`giskard-supervisor serve` in a terminal), or point the CLI at a running one with "
         "--socket PATH, --state-dir DIR or --url URL (with a token)\n";
}

void PrintAuthHint(const ConnectionTarget& target, std::ostream& err) {
  if (target.token_source.empty()) {
    err << "hint: no API token was sent: none given with --token, $GISKARD_SUPERVISOR_TOKEN or "
           "--token-file, and no readable <state-dir>/api-token\n";
  } else {
    err << "hint: the daemon rejected the API token from " << target.token_source << "\n";
  }
  err << "hint: the daemon's token is in <state-dir>/api-token (e.g. "
         "/var/lib/giskard-supervisor/api-token) or its config's [server] api_token; pass it with "
         "--token-file PATH, --token TOKEN or $GISKARD_SUPERVISOR_TOKEN, or use the local admin "
         "socket (--socket PATH), which needs no token\n";
}

int TransportExitCode(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitInternal;
  }
}

void PrintWarnings(const json& kernel, std::ostream& err) {
  auto it = kernel.find("warnings");
  if (it == kernel.end() || !it->is_array()) return;
  for (const json& w : *it)
    err << "warning: " << (w.is_string() ? w.get<std::string>() : Dump(w)) << "\n";
}

}  // namespace

std::string Dump(const json& value, int indent) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string KernelPath(const std::string& name) {
  return "/api/v1/kernels/" + EncodePathSegment(name);
}

CallResult Call(const HttpClient& client, std::string_view method, const std::string& path,
                std::string_view body, const CommandEnv& env, bool expect_json) {
  CallResult result;
  auto reply = client.Send(method, path, body);
  if (!reply.ok()) {
    *env.err << "error: " << reply.status().message() << "\n";
    result.exit_code = TransportExitCode(reply.status());
    if (result.exit_code == kExitUnreachable) PrintUnreachableHint(client.target(), *env.err);
    return result;
  }
  result.http_status = reply->status;
  if (reply->status < 200 || reply->status >= 300) {
    *env.err << RenderServerError(reply->status, reply->body, client.target().Describe());
    result.exit_code = ExitCodeForHttpStatus(reply->status);
    if (result.exit_code == kExitOk) result.exit_code = kExitInternal;
    if (result.exit_code == kExitUnauthenticated) PrintAuthHint(client.target(), *env.err);
    return result;
  }
  if (!expect_json) {
    result.reply = std::move(reply).value();
    result.exit_code = kExitOk;
    return result;
  }
  result.body = json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
  if (result.body.is_discarded()) {
    *env.err << "error: the supervisor at " << client.target().Describe() << " answered HTTP "
             << reply->status << " with a body that is not JSON\n";
    result.exit_code = kExitInternal;
    return result;
  }
  result.exit_code = kExitOk;
  return result;
}

int KernelsList(const HttpClient& client, bool json_output, const CommandEnv& env) {
  CallResult r = Call(client, "GET", "/api/v1/kernels", {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
    return kExitOk;
  }
  json kernels = r.body.is_object() ? r.body.value("kernels", json::array()) : json::array();
  if (!kernels.is_array() || kernels.empty()) {
    *env.out << "no kernels; create one with: giskard-supervisor kernels create NAME --python "
                "3.11 -r requirements.txt\n";
    return kExitOk;
  }
  *env.out << RenderKernelTable(kernels);
  return kExitOk;
}

int KernelsShow(const HttpClient& client, const std::string& name, bool json_output,
                const CommandEnv& env) {
  CallResult r = Call(client, "GET", KernelPath(name), {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  *env.out << (json_output ? Dump(r.body, 2) + "\n" : RenderKernelDetails(r.body));
  return kExitOk;
}

int KernelsCreate(const HttpClient& client, const CreateFlags& flags, const WaitFlags& wait,
                  bool json_output, const CommandEnv& env) {
  auto started = Now(env);
  std::string body;
  if (!flags.document_file.empty()) {
    auto text = env.read_file(flags.document_file);
    if (!text.ok()) {
      *env.err << "error: cannot read -f document: " << text.status().message() << "\n";
      return kExitUsage;
    }
    auto named = ApplyNameOverride(*text, flags.name);
    if (!named.ok()) {
      *env.err << "error: " << flags.document_file << ": " << named.status().message() << "\n";
      return kExitInvalidInput;
    }
    body = std::move(named).value();
  } else {
    auto doc = BuildKernelDocument(flags, env.read_file);
    if (!doc.ok()) {
      *env.err << "error: " << doc.status().message() << "\n";
      return kExitUsage;
    }
    body = Dump(*doc);
  }
  CallResult r = Call(client, "POST", "/api/v1/kernels", body, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  PrintWarnings(r.body, *env.err);
  if (json_output && !wait.wait) {
    *env.out << Dump(r.body, 2) << "\n";
    return kExitOk;
  }
  auto name_field = r.body.is_object() ? r.body.find("name") : r.body.end();
  std::string name = name_field != r.body.end() && name_field->is_string()
                         ? name_field->get<std::string>()
                         : flags.name;
  if (!json_output) {
    *env.out << (r.http_status == 200
                     ? "kernel " + name + " already exists with this document; nothing changed\n"
                     : "created kernel " + name + "\n");
  }
  if (wait.wait) return WaitForBuild(client, r.body, started, wait, json_output, env);
  if (r.http_status != 200) *env.out << RenderKernelDetails(r.body);
  return kExitOk;
}

int KernelsDelete(const HttpClient& client, const std::string& name, bool json_output,
                  const CommandEnv& env) {
  CallResult r = Call(client, "DELETE", KernelPath(name), {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  *env.out << (json_output ? Dump(r.body, 2) + "\n" : "deleted kernel " + name + "\n");
  return kExitOk;
}

int DaemonStatus(const HttpClient& client, bool json_output, const CommandEnv& env) {
  CallResult r = Call(client, "GET", "/api/v1/status", {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
    return kExitOk;
  }
  *env.out << "daemon: reachable at " << client.target().Describe() << "\n"
           << RenderDaemonStatus(r.body);
  return kExitOk;
}

int Version(const HttpClient* client, bool json_output, const CommandEnv& env,
            const std::string& no_client_reason) {
  json daemon = {{"reachable", false}, {"version", nullptr}};
  std::string problem = no_client_reason;
  if (client != nullptr) {
    daemon["at"] = client->target().Describe();
    auto reply = client->Send("GET", "/api/v1/status");
    if (!reply.ok()) {
      problem = reply.status().message();
      daemon["error"] = problem;
    } else {
      daemon["reachable"] = true;
      json status = json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
      if (reply->status == 200 && status.is_object() && status.contains("version")) {
        daemon["version"] = status["version"];
      } else {
        problem = "HTTP " + std::to_string(reply->status) + " from GET /api/v1/status";
      }
    }
  }
  if (json_output) {
    *env.out << Dump(json{{"client", {{"version", GSK_VERSION}}}, {"daemon", daemon}}, 2) << "\n";
    return kExitOk;
  }
  *env.out << "client: " << GSK_VERSION << "\n";
  if (!daemon["version"].is_null()) {
    const json& v = daemon["version"];
    *env.out << "daemon: " << (v.is_string() ? v.get<std::string>() : Dump(v)) << " (at "
             << daemon["at"].get<std::string>() << ")\n";
  } else if (daemon["reachable"].get<bool>()) {
    *env.out << "daemon: reachable, version unknown (" << problem << ")\n";
  } else {
    *env.out << "daemon: not reachable (" << problem << ")\n";
  }
  return kExitOk;
}

}  // namespace gsk::cli
