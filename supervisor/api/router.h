// Router: the REST API from HttpRequest to HttpResponse (handle_request in the Beast examples),
// over transport-free services only. Authentication, content-type checks, the route table and
// the one mapping from Status to HTTP status live here; the JSON shapes are in views.h. Not
// thread-safe: call on the core thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "supervisor/api/http_types.h"
#include "supervisor/api/route_table.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/service/key_service.h"
#include "supervisor/service/model_service.h"
#include "supervisor/service/system_service.h"
#include "supervisor/service/worker_service.h"

namespace gsk::relay {
class RemoteWorkers;
}  // namespace gsk::relay
namespace gsk::service {
class ModelBlobs;
}  // namespace gsk::service

namespace gsk::api {

struct Services {
  service::KernelService* kernels = nullptr;  // required
  service::WorkerService* workers = nullptr;  // nullptr: the worker routes answer 404
  service::SystemService* system = nullptr;   // nullptr: status {} and no events
  service::ModelService* models = nullptr;    // nullptr: the model routes answer 404
  service::KeyService* keys = nullptr;        // nullptr: no worker keys, no key routes
  relay::RemoteWorkers* remote = nullptr;     // nullptr: no unmanaged workers
  service::ModelBlobs* blobs = nullptr;       // nullptr: no model blobs to fetch
};

// Who a request comes from: the admin token (or the trusted admin socket), or a worker key.
enum class Role { kAdmin, kWorker };

// The routes a worker key opens: the worker endpoint and what its workers fetch.
bool IsWorkerRoute(std::string_view method, std::string_view path);
// The routes that need no credentials: /healthz, and the shim's wheel under /downloads/.
bool IsPublicRoute(std::string_view method, std::string_view path);

struct RouterOptions {
  std::string api_token;            // required on requests that are not trusted
  std::function<int64_t()> now_ms;  // Unix ms, for uptimes
  std::filesystem::path shim_wheel;  // served under /downloads/ ("": nothing to serve)
};

class Router {
 public:
  // The services must outlive the router.
  Router(Services services, RouterOptions options);

  // Answers through `reply`, once.
  void Handle(const HttpRequest& request, Reply reply);
  // A WebSocket upgrade request (the server calls it for those): the worker endpoint accepts a
  // worker key or the admin token; 401, 403, 404, 409 (the name of a managed kernel) or 503
  // refuse it.
  WebSocketAccept Upgrade(const HttpRequest& request);
  // For requests whose routes answer at once (every route but model calls); a test helper too.
  HttpResponse HandleNow(const HttpRequest& request);

  // When shutting down, every API request gets 503 (healthz too, so load balancers drain).
  void SetDraining(bool draining) { draining_ = draining; }

 private:
  // kernel_routes.cc, worker_routes.cc, system_routes.cc
  void AddKernelRoutes();
  void AddWorkerRoutes();
  void AddSystemRoutes();
  void AddModelRoutes();  // model_routes.cc
  void AddKeyRoutes();    // key_routes.cc
  void AddFetchRoutes();  // fetch_routes.cc
  // The role of the request's credentials; an error answer (401) when it has none valid.
  Result<Role> Authenticate(const HttpRequest& request, std::string* key_name = nullptr);
  nlohmann::json KernelJson(const service::Kernel& kernel) const;
  int64_t Now() const { return options_.now_ms ? options_.now_ms() : 0; }

  Services services_;
  RouterOptions options_;
  RouteTable table_;
  bool draining_ = false;
};

// Helpers shared by the route files.
HttpResponse JsonResponse(int status, const nlohmann::json& body);
// {"error":{"code","message","details"}} with `http_status`.
HttpResponse ErrorResponse(int http_status, std::string_view code, std::string_view message,
                           const Status::Detail* detail = nullptr);
// The single mapping from a Status to an HTTP error response.
HttpResponse StatusResponse(const Status& status);
HttpResponse MethodNotAllowed(std::string_view method, std::string_view allow);
HttpResponse PayloadTooLarge(uint64_t limit_bytes);
// Whether a route takes large bodies (model calls), for the server's per-route body limit.
bool IsModelCall(std::string_view method, std::string_view target);
// 415 unless the request says its body is JSON (for routes that take a body).
std::optional<HttpResponse> RequireJson(const HttpRequest& request);
// Reads integer query parameters into `values` (only the names given, between their bounds);
// 400 naming what is allowed for any other parameter or value.
struct IntParam {
  const char* name;
  int64_t min;
  int64_t max;
  int64_t* value;
};
std::optional<HttpResponse> ReadQuery(const RouteParams& params, std::vector<IntParam> ints,
                                      std::vector<std::pair<const char*, std::string*>> strings,
                                      std::string_view usage);
// A log chunk as text/plain with X-Log-Size, X-Next-Offset and X-Log-Complete.
HttpResponse LogResponse(service::LogChunk chunk);

}  // namespace gsk::api
