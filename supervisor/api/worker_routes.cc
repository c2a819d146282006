// The worker routes of the REST API: kernel start/stop and /api/v1/workers.
#include <nlohmann/json.hpp>

#include "supervisor/api/router.h"

namespace gsk::api {

using nlohmann::json;
using internal::JsonResponse;
using internal::MethodNotAllowed;

namespace {

HttpResponse NoWorkers() {
  return ErrorResponse(404, "NOT_FOUND", "worker supervision is not enabled in this supervisor");
}

service::Caller CallerOf(const HttpRequest& request) {
  return {request.trusted ? "admin-socket" : "rest"};
}

// The optional body of POST /kernels/{name}/start: {} or {"workers": N}.
Status ParseStartBody(const std::string& body, std::optional<int>* workers) {
  if (body.empty()) return Status::Ok();
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument("invalid JSON: the body must be an object such as {\"workers\": 2}")
        .WithDetail("reason", "invalid_json");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "workers") {
      return InvalidArgument(key + ": unknown field; the body takes only \"workers\"")
          .WithDetail("field", key);
    }
    if (!value.is_number_integer()) {
      return InvalidArgument("workers: must be an integer").WithDetail("field", "workers");
    }
    int64_t n = value.get<int64_t>();
    if (n < 0 || n > 1'000'000) {
      return InvalidArgument("workers: must be 0 or more, not " + std::to_string(n))
          .WithDetail("field", "workers");
    }
    *workers = static_cast<int>(n);
  }
  return Status::Ok();
}

}  // namespace

HttpResponse Router::KernelWorkers(const HttpRequest& request, const std::string& name,
                                   const std::string& action) {
  if (options_.workers == nullptr) return NoWorkers();
  if (request.method != "POST") return MethodNotAllowed(request.method, "POST");
  service::Caller caller = CallerOf(request);
  auto run = [&]() -> Result<store::KernelRow> {
    if (action == "start") {
      std::optional<int> workers;
      GSK_RETURN_IF_ERROR(ParseStartBody(request.body, &workers));
      return options_.workers->StartKernel(name, workers, caller);
    }
    if (!request.body.empty() && request.body != "{}") {
      return InvalidArgument("stop takes no body (or {})");
    }
    return options_.workers->StopKernel(name, caller);
  };
  Result<store::KernelRow> row = run();
  if (!row.ok()) return StatusResponse(row.status());
  return JsonResponse(200, KernelJson(*row));
}

HttpResponse Router::Workers(const HttpRequest& request, const std::string& query) {
  if (options_.workers == nullptr) return NoWorkers();
  if (request.method != "GET") return MethodNotAllowed(request.method, "GET");
  bool ok = true;
  std::string kernel;
  for (const auto& [key, value] : internal::ParseQuery(query, &ok)) {
    if (key == "kernel") {
      kernel = value;
    } else {
      ok = false;
    }
  }
  if (!ok) return ErrorResponse(400, "BAD_REQUEST", "bad query; use kernel=NAME or nothing");
  int64_t now = options_.now_ms ? options_.now_ms() : 0;
  json list = json::array();
  for (const auto& w : options_.workers->List(kernel)) {
    list.push_back(service::WorkerToJson(w, false, now));
  }
  size_t count = list.size();
  return JsonResponse(200, {{"workers", std::move(list)}, {"count", count}});
}

HttpResponse Router::OneWorker(const HttpRequest& request, const std::string& tail,
                               const std::string& query) {
  if (options_.workers == nullptr) return NoWorkers();
  std::string id_text = tail;
  std::string action;
  if (size_t slash = tail.find('/'); slash != std::string::npos) {
    action = tail.substr(slash + 1);
    id_text.resize(slash);
  }
  bool ok = true;
  std::string id = internal::PercentDecode(id_text, &ok);
  if (!ok || id.empty() || id.find('/') != std::string::npos) {
    return ErrorResponse(404, "NOT_FOUND", "no such route: /api/v1/workers/" + tail);
  }
  service::WorkerService& workers = *options_.workers;
  int64_t now = options_.now_ms ? options_.now_ms() : 0;
  auto answer = [&](const Result<workers::WorkerInfo>& w) {
    if (!w.ok()) return StatusResponse(w.status());
    return JsonResponse(200, service::WorkerToJson(*w, true, now));
  };
  if (action.empty()) {
    if (request.method == "GET") return answer(workers.Get(id));
    if (request.method == "DELETE") {
      if (Status s = workers.Delete(id); !s.ok()) return StatusResponse(s);
      return JsonResponse(200, {{"id", id}, {"deleted", true}});
    }
    return MethodNotAllowed(request.method, "GET, DELETE");
  }
  if (action == "logs") {
    if (request.method != "GET") return MethodNotAllowed(request.method, "GET");
    int64_t offset = 0;
    int64_t limit = 1 << 20;
    for (const auto& [key, v] : internal::ParseQuery(query, &ok)) {
      if (key == "offset" && internal::ParseInt(v, 0, INT64_MAX, &offset)) continue;
      if (key == "limit" && internal::ParseInt(v, 1, 16 << 20, &limit)) continue;
      ok = false;
    }
    if (!ok) {
      return ErrorResponse(400, "BAD_REQUEST",
                           "bad query; use offset=BYTES (>= 0), limit=1..16777216");
    }
    auto chunk = workers.Logs(id, static_cast<uint64_t>(offset), static_cast<uint64_t>(limit));
    if (!chunk.ok()) return StatusResponse(chunk.status());
    HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(chunk->text);
    r.headers.emplace_back("X-Log-Size", std::to_string(chunk->size));
    r.headers.emplace_back("X-Next-Offset", std::to_string(chunk->next_offset));
    return r;
  }
  if (action != "start" && action != "stop" && action != "restart") {
    return ErrorResponse(404, "NOT_FOUND", "no such route: /api/v1/workers/" + tail);
  }
  if (request.method != "POST") return MethodNotAllowed(request.method, "POST");
  if (action == "start") return answer(workers.Start(id));
  if (action == "stop") return answer(workers.Stop(id));
  return answer(workers.Restart(id));
}

}  // namespace gsk::api
