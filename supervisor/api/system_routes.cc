// The daemon's own routes: /api/v1/status and /api/v1/events.
#include <nlohmann/json.hpp>

#include "supervisor/api/router.h"
#include "supervisor/api/views.h"

namespace gsk::api {

void Router::AddSystemRoutes() {
  service::SystemService* system = services_.system;
  table_.Add("GET", "/api/v1/status", [system](const HttpRequest&, const RouteParams&,
                                               Reply reply) {
    reply(JsonResponse(200, system != nullptr ? StatusView(system->Describe())
                                              : nlohmann::json::object()));
  });
  table_.Add("GET", "/api/v1/events", [system](const HttpRequest&, const RouteParams& p,
                                               Reply reply) {
    store::EventFilter filter;
    int64_t after = 0;
    int64_t limit = filter.limit;
    if (auto bad = ReadQuery(p, {{"after", 0, INT64_MAX, &after}, {"limit", 1, 1000, &limit}},
                             {{"subject", &filter.subject}},
                             "subject=kernel/NAME, after=ID (>= 0), limit=1..1000")) {
      return reply(std::move(*bad));
    }
    filter.after_id = after;
    filter.limit = static_cast<int>(limit);
    if (system == nullptr) return reply(JsonResponse(200, {{"events", nlohmann::json::array()}}));
    auto events = system->Events(filter);
    if (!events.ok()) return reply(StatusResponse(events.status()));
    reply(JsonResponse(200, {{"events", EventsView(*events)}}));
  });
}

}  // namespace gsk::api
