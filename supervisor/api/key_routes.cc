// The worker API key routes: /api/v1/keys (admin only).
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "supervisor/api/router.h"
#include "supervisor/api/views.h"

namespace gsk::api {
namespace {

using nlohmann::json;

HttpResponse NoKeys() { return ErrorResponse(404, "NOT_FOUND", "worker keys are not enabled"); }

service::Caller CallerOf(const HttpRequest& request) {
  return {request.trusted ? "admin-socket" : "rest"};
}

// {"name": "laptop"}
Result<std::string> KeyName(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument("the body must be a JSON object such as {\"name\": \"laptop\"}")
        .WithDetail("reason", "invalid_json");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "name") {
      return InvalidArgument(key + ": unknown field; the body takes only \"name\"")
          .WithDetail("field", key);
    }
  }
  if (!doc.contains("name") || !doc["name"].is_string()) {
    return InvalidArgument("name: a string is required").WithDetail("field", "name");
  }
  return doc["name"].get<std::string>();
}

}  // namespace

void Router::AddKeyRoutes() {
  service::KeyService* keys = services_.keys;
  table_.Add("GET", "/api/v1/keys", [keys](const HttpRequest&, const RouteParams&, Reply reply) {
    if (keys == nullptr) return reply(NoKeys());
    auto list = keys->List();
    if (!list.ok()) return reply(StatusResponse(list.status()));
    json out = json::array();
    for (const store::KeyRow& k : *list) out.push_back(KeyView(k));
    size_t count = out.size();
    reply(JsonResponse(200, {{"keys", std::move(out)}, {"count", count}}));
  });
  table_.Add("POST", "/api/v1/keys", [keys](const HttpRequest& request, const RouteParams&,
                                            Reply reply) {
    if (keys == nullptr) return reply(NoKeys());
    if (auto refused = RequireJson(request)) return reply(std::move(*refused));
    Result<std::string> name = KeyName(request.body);
    if (!name.ok()) return reply(StatusResponse(name.status()));
    auto created = keys->Create(*name, CallerOf(request));
    if (!created.ok()) return reply(StatusResponse(created.status()));
    json view = KeyView(created->row);
    view["key"] = created->key;  // shown this once
    reply(JsonResponse(201, view));
  });
  table_.Add("DELETE", "/api/v1/keys/{name}", [keys](const HttpRequest& request,
                                                      const RouteParams& p, Reply reply) {
    if (keys == nullptr) return reply(NoKeys());
    const std::string& name = p.path.at("name");
    if (Status s = keys->Revoke(name, CallerOf(request)); !s.ok()) return reply(StatusResponse(s));
    reply(JsonResponse(200, {{"name", name}, {"revoked", true}}));
  });
  table_.Add("GET", "/api/v1/workers/connect", [](const HttpRequest&, const RouteParams&,
                                                  Reply reply) {
    HttpResponse r = ErrorResponse(426, "UPGRADE_REQUIRED",
                                   "this is the workers' WebSocket endpoint: connect with "
                                   "`giskard worker start -k KEY -u URL --name NAME`");
    r.headers.emplace_back("Upgrade", "websocket");
    reply(std::move(r));
  });
}

}  // namespace gsk::api
