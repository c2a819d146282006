// The model routes of the REST API: POST /api/v1/kernels/{name}/predict and /models. They
// answer once the worker replied, on a later turn.
#include <nlohmann/json.hpp>

#include "supervisor/api/router.h"
#include "supervisor/api/views.h"

namespace gsk::api {
namespace {

HttpResponse NoModels() {
  return ErrorResponse(404, "NOT_FOUND", "model calls are not enabled in this supervisor");
}

std::optional<HttpResponse> Refuse(const HttpRequest& request, const RouteParams& p) {
  const std::string& name = p.path.at("name");
  if (Status s = spec::ValidateKernelName(name); !s.ok()) {
    Status::Detail d{"name", name};
    return ErrorResponse(400, "BAD_REQUEST", s.message(), &d);
  }
  return RequireJson(request);
}

}  // namespace

void Router::AddModelRoutes() {
  service::ModelService* models = services_.models;
  table_.Add("POST", "/api/v1/kernels/{name}/predict",
             [models](const HttpRequest& request, const RouteParams& p, Reply reply) {
               if (models == nullptr) return reply(NoModels());
               if (auto refused = Refuse(request, p)) return reply(std::move(*refused));
               models->Predict(p.path.at("name"), request.body,
                               [reply](Result<service::PredictAnswer> answer) {
                                 if (!answer.ok()) return reply(StatusResponse(answer.status()));
                                 HttpResponse r;
                                 r.body = PredictView(std::move(*answer));
                                 reply(std::move(r));
                               });
             });
  table_.Add("POST", "/api/v1/kernels/{name}/models",
             [models](const HttpRequest& request, const RouteParams& p, Reply reply) {
               if (models == nullptr) return reply(NoModels());
               if (auto refused = Refuse(request, p)) return reply(std::move(*refused));
               models->Load(p.path.at("name"), request.body,
                            [reply](Result<service::LoadAnswer> answer) {
                              if (!answer.ok()) return reply(StatusResponse(answer.status()));
                              reply(JsonResponse(200, LoadView(*answer)));
                            });
             });
}

}  // namespace gsk::api
