#include "supervisor/api/route_table.h"

#include <algorithm>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "supervisor/api/router.h"

namespace gsk::api {
namespace {

std::vector<std::string> Split(std::string_view pattern) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= pattern.size()) {
    size_t slash = pattern.find('/', start);
    if (slash == std::string_view::npos) slash = pattern.size();
    out.emplace_back(pattern.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool IsParam(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

Result<RouteParams> ParseTarget(std::string_view target, std::vector<std::string>* segments) {
  boost::system::result<boost::urls::url_view> url = boost::urls::parse_origin_form(target);
  if (!url) {
    return InvalidArgument("the request target is not a valid path: " + url.error().message());
  }
  RouteParams params;
  segments->clear();
  for (auto segment : url->segments()) segments->push_back(segment);
  // "/api/v1/kernels/" is "/api/v1/kernels".
  if (segments->size() > 1 && segments->back().empty()) segments->pop_back();
  params.path_text = url->path();
  for (auto param : url->params(boost::urls::encoding_opts(/*space_as_plus=*/true))) {
    params.query[param.key] = param.has_value ? std::string(param.value) : std::string();
  }
  return params;
}

void RouteTable::Add(std::string_view method, std::string_view pattern, Handler handler) {
  routes_.push_back({std::string(method), Split(pattern), std::move(handler)});
}

bool RouteTable::Match(const Route& route, const std::vector<std::string>& segments,
                       RouteParams* params) {
  if (route.segments.size() != segments.size()) return false;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& want = route.segments[i];
    if (IsParam(want)) {
      if (segments[i].empty() || segments[i].find('/') != std::string::npos) return false;
      if (params != nullptr) params->path[want.substr(1, want.size() - 2)] = segments[i];
    } else if (want != segments[i]) {
      return false;
    }
  }
  return true;
}

void RouteTable::Dispatch(const HttpRequest& request, Reply reply) const {
  std::vector<std::string> segments;
  Result<RouteParams> parsed = ParseTarget(request.target, &segments);
  if (!parsed.ok()) return reply(ErrorResponse(400, "BAD_REQUEST", parsed.status().message()));
  RouteParams& params = *parsed;
  std::string method = request.method == "HEAD" ? "GET" : request.method;
  // Of the patterns that match, with this method, the most specific wins: "/workers/connect"
  // over "/workers/{id}".
  auto literals = [](const Route& r) {
    return std::count_if(r.segments.begin(), r.segments.end(),
                         [](const std::string& seg) { return !IsParam(seg); });
  };
  const Route* best = nullptr;
  std::string allow;
  for (const Route& route : routes_) {
    if (!Match(route, segments, nullptr)) continue;
    if (route.method != method) {
      if (allow.find(route.method) == std::string::npos) {
        allow += (allow.empty() ? "" : ", ") + route.method;
      }
      continue;
    }
    if (best == nullptr || literals(route) > literals(*best)) best = &route;
  }
  if (best != nullptr) {
    Match(*best, segments, &params);
    return best->handler(request, params, std::move(reply));
  }
  if (!allow.empty()) return reply(MethodNotAllowed(request.method, allow));
  reply(ErrorResponse(404, "NOT_FOUND",
                      "no such route: " + params.path_text + " (the API is under /api/v1)"));
}

}  // namespace gsk::api
