// `giskard-supervisor keys create NAME | list | revoke NAME`: worker API keys.
#include <CLI/CLI.hpp>
#include <ostream>

#include "supervisor/cli/client.h"
#include "supervisor/cli/commands.h"
#include "supervisor/cli/render.h"
#include "supervisor/cli/table.h"

namespace gsk::cli {
namespace {

using nlohmann::json;

struct KeyArgs {
  std::string name;
  bool json = false;
};

std::string Text(const json& v) { return v.is_string() ? v.get<std::string>() : "-"; }

}  // namespace

int KeysCreate(const HttpClient& client, const std::string& name, bool json_output,
               const CommandEnv& env) {
  CallResult r = Call(client, "POST", "/api/v1/keys", Dump(json{{"name", name}}), env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
    return kExitOk;
  }
  *env.out << Text(r.body["key"]) << "\n";
  *env.err << "created worker key " << name << "; it is shown this once: keep it now. Workers "
           << "use it with `giskard worker start -k KEY -u URL --name NAME`\n";
  return kExitOk;
}

int KeysList(const HttpClient& client, bool json_output, const CommandEnv& env) {
  CallResult r = Call(client, "GET", "/api/v1/keys", {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
    return kExitOk;
  }
  Table table({{"NAME"}, {"CREATED"}, {"LAST USED"}});
  for (const json& k : r.body.value("keys", json::array())) {
    table.AddRow({Text(k["name"]), ShortTime(Text(k["createdAt"])),
                  k["lastUsedAt"].is_string() ? ShortTime(Text(k["lastUsedAt"])) : "never"});
  }
  *env.out << table.Render();
  return kExitOk;
}

int KeysRevoke(const HttpClient& client, const std::string& name, bool json_output,
               const CommandEnv& env) {
  CallResult r = Call(client, "DELETE", "/api/v1/keys/" + EncodePathSegment(name), {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
  } else {
    *env.out << "revoked worker key " << name << "; workers using it are disconnected\n";
  }
  return kExitOk;
}

CLI::App* AddKeyCommands(CLI::App& app, const std::shared_ptr<Shared>& shared) {
  CLI::App* keys = app.add_subcommand("keys", "Worker API keys (for `giskard worker start -k`)");
  keys->require_subcommand(1);
  keys->fallthrough();
  auto create = std::make_shared<KeyArgs>();
  CLI::App* create_cmd = Leaf(*keys, "create", "Create a key (printed once)", &create->json);
  create_cmd->add_option("name", create->name, "Key name")->required();
  create_cmd->callback([shared, create] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KeysCreate(c, create->name, create->json, shared->env);
    });
  });
  auto list = std::make_shared<KeyArgs>();
  Leaf(*keys, "list", "List keys (never their values)", &list->json)->callback([shared, list] {
    RunWithClient(*shared,
                  [&](const HttpClient& c) { return KeysList(c, list->json, shared->env); });
  });
  auto revoke = std::make_shared<KeyArgs>();
  CLI::App* revoke_cmd = Leaf(*keys, "revoke", "Revoke a key; its workers are disconnected",
                              &revoke->json);
  revoke_cmd->add_option("name", revoke->name, "Key name")->required();
  revoke_cmd->callback([shared, revoke] {
    RunWithClient(*shared, [&](const HttpClient& c) {
      return KeysRevoke(c, revoke->name, revoke->json, shared->env);
    });
  });
  return keys;
}

}  // namespace gsk::cli
