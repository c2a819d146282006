// Plain HTTP request/response values exchanged between the transport (supervisor/server) and
// the router (supervisor/api). No Beast types here, so that the router compiles and is tested
// without the networking headers. Value types, not synchronized.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace gsk::api {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // "/api/v1/kernels?x=y" as received
  std::string content_type;   // "" when absent
  std::string authorization;  // "" when absent
  std::string body;
  bool trusted = false;       // arrived on the admin Unix socket: no token needed
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// How a handler answers: exactly once, now or later, on the core thread.
using Reply = std::function<void(HttpResponse response)>;

}  // namespace gsk::api
