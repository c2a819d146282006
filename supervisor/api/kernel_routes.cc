// The kernel routes of the REST API: /api/v1/kernels and /api/v1/kernels/{name}[/...].
#include <nlohmann/json.hpp>

#include "supervisor/api/router.h"

namespace gsk::api {
namespace {

using nlohmann::json;

service::Caller CallerOf(const HttpRequest& request) {
  return {request.trusted ? "admin-socket" : "rest"};
}

// A name in the path that no kernel can have: 400 (a malformed request), not 404.
std::optional<HttpResponse> BadName(const RouteParams& params) {
  const std::string& name = params.path.at("name");
  Status s = spec::ValidateKernelName(name);
  if (s.ok()) return std::nullopt;
  Status::Detail d{"name", name};
  return ErrorResponse(400, "BAD_REQUEST", s.message(), &d);
}

json WithWarnings(json body, const std::vector<std::string>& warnings) {
  if (!warnings.empty()) body["warnings"] = warnings;
  return body;
}

}  // namespace

void Router::AddKernelRoutes() {
  service::KernelService& kernels = *services_.kernels;
  table_.Add("GET", "/api/v1/kernels", [this, &kernels](const HttpRequest&, const RouteParams&,
                                                        Reply reply) {
    json list = json::array();
    for (const service::Kernel* k : kernels.List()) list.push_back(KernelJson(*k));
    size_t count = list.size();
    reply(JsonResponse(200, {{"kernels", std::move(list)}, {"count", count}}));
  });
  table_.Add("POST", "/api/v1/kernels", [this, &kernels](const HttpRequest& request,
                                                         const RouteParams&, Reply reply) {
    if (auto refused = RequireJson(request)) return reply(std::move(*refused));
    auto out = kernels.Create(request.body, CallerOf(request));
    if (!out.ok()) return reply(StatusResponse(out.status()));
    reply(JsonResponse(out->changed ? 201 : 200,
                       WithWarnings(KernelJson(*out->kernel), out->warnings)));
  });
  table_.Add("GET", "/api/v1/kernels/{name}", [this, &kernels](const HttpRequest&,
                                                               const RouteParams& p, Reply reply) {
    if (auto bad = BadName(p)) return reply(std::move(*bad));
    auto k = kernels.Get(p.path.at("name"));
    reply(k.ok() ? JsonResponse(200, KernelJson(**k)) : StatusResponse(k.status()));
  });
  table_.Add("PUT", "/api/v1/kernels/{name}", [this, &kernels](const HttpRequest& request,
                                                               const RouteParams& p, Reply reply) {
    if (auto bad = BadName(p)) return reply(std::move(*bad));
    if (auto refused = RequireJson(request)) return reply(std::move(*refused));
    auto out = kernels.Replace(p.path.at("name"), request.body, CallerOf(request));
    if (!out.ok()) return reply(StatusResponse(out.status()));
    reply(JsonResponse(200, WithWarnings(KernelJson(*out->kernel), out->warnings)));
  });
  table_.Add("DELETE", "/api/v1/kernels/{name}", [&kernels](const HttpRequest& request,
                                                            const RouteParams& p, Reply reply) {
    if (auto bad = BadName(p)) return reply(std::move(*bad));
    const std::string& name = p.path.at("name");
    if (Status s = kernels.Delete(name, CallerOf(request)); !s.ok()) {
      return reply(StatusResponse(s));
    }
    reply(JsonResponse(200, {{"name", name}, {"deleted", true}}));
  });
  table_.Add("POST", "/api/v1/kernels/{name}/rebuild",
             [this, &kernels](const HttpRequest& request, const RouteParams& p, Reply reply) {
               if (auto bad = BadName(p)) return reply(std::move(*bad));
               auto k = kernels.Rebuild(p.path.at("name"), CallerOf(request));
               reply(k.ok() ? JsonResponse(202, KernelJson(**k)) : StatusResponse(k.status()));
             });
  table_.Add("GET", "/api/v1/kernels/{name}/build-log",
             [&kernels](const HttpRequest&, const RouteParams& p, Reply reply) {
               if (auto bad = BadName(p)) return reply(std::move(*bad));
               int64_t offset = 0;
               int64_t limit = 1 << 20;
               if (auto bad = ReadQuery(p, {{"offset", 0, INT64_MAX, &offset},
                                            {"limit", 1, 16 << 20, &limit}},
                                        {}, "offset=BYTES (>= 0), limit=1..16777216")) {
                 return reply(std::move(*bad));
               }
               auto chunk = kernels.BuildLog(p.path.at("name"), static_cast<uint64_t>(offset),
                                             static_cast<uint64_t>(limit));
               if (!chunk.ok()) return reply(StatusResponse(chunk.status()));
               bool complete = chunk->complete;
               HttpResponse r = LogResponse(std::move(*chunk));
               r.headers.emplace_back("X-Build-Complete", complete ? "true" : "false");
               reply(std::move(r));
             });
}

}  // namespace gsk::api
