// The worker routes of the REST API: kernel start/stop and /api/v1/workers.
#include <nlohmann/json.hpp>

#include "supervisor/api/router.h"
#include "supervisor/api/views.h"

namespace gsk::api {
namespace {

using nlohmann::json;

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

void Router::AddWorkerRoutes() {
  service::WorkerService* workers = services_.workers;
  auto kernel_action = [this, workers](bool start) {
    return [this, workers, start](const HttpRequest& request, const RouteParams& p, Reply reply) {
      if (workers == nullptr) return reply(NoWorkers());
      const std::string& name = p.path.at("name");
      if (Status s = spec::ValidateKernelName(name); !s.ok()) {
        Status::Detail d{"name", name};
        return reply(ErrorResponse(400, "BAD_REQUEST", s.message(), &d));
      }
      Result<const service::Kernel*> k = [&]() -> Result<const service::Kernel*> {
        if (start) {
          std::optional<int> n;
          GSK_RETURN_IF_ERROR(ParseStartBody(request.body, &n));
          return workers->StartKernel(name, n, CallerOf(request));
        }
        if (!request.body.empty() && request.body != "{}") {
          return InvalidArgument("stop takes no body (or {})");
        }
        return workers->StopKernel(name, CallerOf(request));
      }();
      reply(k.ok() ? JsonResponse(200, KernelJson(**k)) : StatusResponse(k.status()));
    };
  };
  table_.Add("POST", "/api/v1/kernels/{name}/start", kernel_action(true));
  table_.Add("POST", "/api/v1/kernels/{name}/stop", kernel_action(false));

  table_.Add("GET", "/api/v1/workers", [this, workers](const HttpRequest&, const RouteParams& p,
                                                       Reply reply) {
    if (workers == nullptr) return reply(NoWorkers());
    std::string kernel;
    if (auto bad = ReadQuery(p, {}, {{"kernel", &kernel}}, "kernel=NAME or nothing")) {
      return reply(std::move(*bad));
    }
    json list = json::array();
    for (const auto& w : workers->List(kernel)) list.push_back(WorkerView(w, false, Now()));
    if (services_.remote != nullptr) {
      for (const auto& w : services_.remote->List(kernel)) {
        list.push_back(RemoteWorkerView(w, false, Now()));
      }
    }
    size_t count = list.size();
    reply(JsonResponse(200, {{"workers", std::move(list)}, {"count", count}}));
  });
  auto answer = [this](const Result<workers::WorkerInfo>& w) {
    return w.ok() ? JsonResponse(200, WorkerView(*w, true, Now())) : StatusResponse(w.status());
  };
  relay::RemoteWorkers* remote = services_.remote;
  table_.Add("GET", "/api/v1/workers/{id}", [this, workers, answer, remote](
                                                const HttpRequest&, const RouteParams& p,
                                                Reply reply) {
    if (workers == nullptr) return reply(NoWorkers());
    if (remote != nullptr) {
      if (auto w = remote->Get(p.path.at("id"))) {
        return reply(JsonResponse(200, RemoteWorkerView(*w, true, Now())));
      }
    }
    reply(answer(workers->Get(p.path.at("id"))));
  });
  table_.Add("DELETE", "/api/v1/workers/{id}", [workers](const HttpRequest&, const RouteParams& p,
                                                         Reply reply) {
    if (workers == nullptr) return reply(NoWorkers());
    const std::string& id = p.path.at("id");
    if (Status s = workers->Delete(id); !s.ok()) return reply(StatusResponse(s));
    reply(JsonResponse(200, {{"id", id}, {"deleted", true}}));
  });
  table_.Add("GET", "/api/v1/workers/{id}/logs", [workers](const HttpRequest&,
                                                           const RouteParams& p, Reply reply) {
    if (workers == nullptr) return reply(NoWorkers());
    int64_t offset = 0;
    int64_t limit = 1 << 20;
    if (auto bad = ReadQuery(p, {{"offset", 0, INT64_MAX, &offset}, {"limit", 1, 16 << 20, &limit}},
                             {}, "offset=BYTES (>= 0), limit=1..16777216")) {
      return reply(std::move(*bad));
    }
    auto chunk = workers->Logs(p.path.at("id"), static_cast<uint64_t>(offset),
                               static_cast<uint64_t>(limit));
    reply(chunk.ok() ? LogResponse(std::move(*chunk)) : StatusResponse(chunk.status()));
  });
  using Action = Result<workers::WorkerInfo> (service::WorkerService::*)(const std::string&);
  for (auto [path, action] : {std::pair<const char*, Action>{"start", &service::WorkerService::Start},
                              {"stop", &service::WorkerService::Stop},
                              {"restart", &service::WorkerService::Restart}}) {
    table_.Add("POST", std::string("/api/v1/workers/{id}/") + path,
               [workers, answer, action = action](const HttpRequest&, const RouteParams& p,
                                                  Reply reply) {
                 if (workers == nullptr) return reply(NoWorkers());
                 reply(answer((workers->*action)(p.path.at("id"))));
               });
  }
}

}  // namespace gsk::api
