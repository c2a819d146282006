// Router: the REST API as a pure function from HttpRequest to HttpResponse (handle_request in
// the Beast examples). Authentication, routing, content-type checks, JSON rendering and the one
// mapping from Status to HTTP status live here. Not thread-safe: call on the core thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "supervisor/api/http_types.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/service/worker_service.h"

namespace gsk::api {

struct RouterOptions {
  service::WorkerService* workers = nullptr;    // nullptr: the worker routes answer 404
  std::function<int64_t()> now_ms;               // Unix ms, for uptimes
  std::string api_token;                        // required on non-trusted requests
  std::function<nlohmann::json()> status_info;  // body of GET /api/v1/status
  std::function<Result<nlohmann::json>(const store::EventFilter&)> events;
};

class Router {
 public:
  // `kernels` must outlive the router.
  Router(service::KernelService* kernels, RouterOptions options);

  HttpResponse Handle(const HttpRequest& request);

  // When shutting down, every API request gets 503 (healthz too, so load balancers drain).
  void SetDraining(bool draining) { draining_ = draining; }

 private:
  HttpResponse Route(const HttpRequest& request, const std::string& path,
                     const std::string& query);
  HttpResponse Kernels(const HttpRequest& request, const std::string& query);
  HttpResponse OneKernel(const HttpRequest& request, const std::string& name);
  HttpResponse Events(const std::string& query);
  HttpResponse BuildLog(const std::string& name, const std::string& query);
  nlohmann::json KernelJson(const store::KernelRow& row) const;
  nlohmann::json WriteOutcomeJson(const service::WriteOutcome& outcome) const;
  // worker_routes.cc
  HttpResponse KernelWorkers(const HttpRequest& request, const std::string& name,
                             const std::string& action);
  HttpResponse Workers(const HttpRequest& request, const std::string& query);
  HttpResponse OneWorker(const HttpRequest& request, const std::string& tail,
                         const std::string& query);

  service::KernelService* kernels_;
  RouterOptions options_;
  bool draining_ = false;
};

namespace internal {
// Shared by router.cc and worker_routes.cc.
HttpResponse JsonResponse(int status, const nlohmann::json& body);
HttpResponse MethodNotAllowed(std::string_view method, std::string_view allow);
std::string PercentDecode(std::string_view in, bool* ok);
std::map<std::string, std::string> ParseQuery(std::string_view query, bool* ok);
bool ParseInt(const std::string& s, int64_t min, int64_t max, int64_t* out);
}  // namespace internal

// {"error":{"code","message","details"}} with `http_status`.
HttpResponse ErrorResponse(int http_status, std::string_view code, std::string_view message,
                           const Status::Detail* detail = nullptr);
// The single mapping from a Status to an HTTP error response.
HttpResponse StatusResponse(const Status& status);
HttpResponse PayloadTooLarge(uint64_t limit_bytes);
// True when `given` is "Bearer <token>" for `token`, compared in constant time.
bool TokenMatches(std::string_view given, std::string_view token);

}  // namespace gsk::api
