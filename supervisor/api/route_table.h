// RouteTable: the REST API's routes as a table, method and path pattern to handler, with
// patterns such as "/api/v1/kernels/{name}/build-log". Request targets are parsed with
// Boost.URL: path segments and query parameters are percent-decoded once, here. A {param}
// matches one non-empty segment (a decoded "/" never matches). Not synchronized: build it once,
// then Dispatch from the core thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "supervisor/api/http_types.h"

namespace gsk::api {

struct RouteParams {
  std::map<std::string, std::string> path;   // {name} -> decoded segment
  std::map<std::string, std::string> query;  // decoded; "+" is a space; the last one wins
  std::string path_text;                     // the decoded path, for messages
};

class RouteTable {
 public:
  // A handler answers once through `reply`, now or later (on the core thread).
  using Handler =
      std::function<void(const HttpRequest& request, const RouteParams& params, Reply reply)>;

  // REQUIRES: `pattern` starts with "/"; one handler per method and pattern.
  void Add(std::string_view method, std::string_view pattern, Handler handler);

  // Runs the handler of the route that matches. Without one: 404 for an unknown path, 405 with
  // "Allow" for a known path and another method, 400 for a target that is not a valid
  // origin-form URL. HEAD is served by GET's handler.
  void Dispatch(const HttpRequest& request, Reply reply) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" for a parameter
    Handler handler;
  };
  static bool Match(const Route& route, const std::vector<std::string>& segments,
                    RouteParams* params);

  std::vector<Route> routes_;
};

// Parses an origin-form target ("/a/b%20c?x=1") into decoded segments and query parameters.
// kInvalidArgument for anything else (an absolute URL, bad percent-encoding, a fragment).
Result<RouteParams> ParseTarget(std::string_view target, std::vector<std::string>* segments);

}  // namespace gsk::api
