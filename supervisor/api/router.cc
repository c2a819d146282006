#include "supervisor/api/router.h"

#include <algorithm>
#include <charconv>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "supervisor/api/views.h"

namespace gsk::api {
namespace {

using nlohmann::json;

bool IsJsonContentType(std::string_view ct) {
  std::string lower(ct.substr(0, ct.find(';')));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!lower.empty() && lower.back() == ' ') lower.pop_back();
  return lower == "application/json";
}

// True when `given` is "Bearer <token>" for `token`, compared in constant time.
bool TokenMatches(std::string_view given, std::string_view token) {
  constexpr std::string_view kBearer = "Bearer ";
  bool scheme = given.size() > kBearer.size() && given.substr(0, kBearer.size()) == kBearer;
  std::string_view secret = scheme ? given.substr(kBearer.size()) : std::string_view();
  return SecretsEqual(secret, token) && scheme;
}

bool ParseInt(const std::string& s, int64_t min, int64_t max, int64_t* out) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  // Replace invalid UTF-8 rather than throwing: data from the store was validated on the way in.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse ErrorResponse(int http_status, std::string_view code, std::string_view message,
                           const Status::Detail* detail) {
  std::vector<Status::Detail> details;
  if (detail != nullptr) details.push_back(*detail);
  return JsonResponse(http_status, ErrorView(code, message, details));
}

namespace {

// A Status's "reason" detail refines its HTTP status where the code alone is not enough.
struct Refinement {
  std::string_view reason;
  int http;
  std::string_view code;
};
constexpr Refinement kRefinements[] = {
    {"invalid_json", 400, "INVALID_JSON"},        // not a JSON object at all
    {"invalid_input", 400, "INVALID_INPUT"},      // a model call's rows or fields
    {"model_error", 422, "MODEL_ERROR"},          // raised by the model's own code
    {"model_load_error", 422, "MODEL_LOAD_ERROR"},
    {"forbidden", 403, "FORBIDDEN"},              // a model path outside the roots
    {"worker_lost", 502, "WORKER_LOST"},          // the worker died or hung up mid-call
    {"model_fetch_error", 502, "MODEL_FETCH_ERROR"},  // an unmanaged worker got no model bytes
};

}  // namespace

HttpResponse StatusResponse(const Status& status) {
  int http = 500;
  std::string code(StatusCodeName(status.code()));
  switch (status.code()) {
    case StatusCode::kOk: http = 200; break;
    case StatusCode::kInvalidArgument: http = 422; break;
    case StatusCode::kNotFound: http = 404; break;
    case StatusCode::kAlreadyExists: http = 409; break;
    case StatusCode::kFailedPrecondition: http = 409; break;
    case StatusCode::kResourceExhausted: http = 429; break;
    case StatusCode::kUnavailable: http = 503; break;
    case StatusCode::kDeadlineExceeded: http = 504; break;
    case StatusCode::kCancelled: http = 409; break;
    case StatusCode::kUnauthenticated: http = 401; break;
    case StatusCode::kInternal: http = 500; break;
  }
  std::vector<Status::Detail> details;
  std::string retry_after;
  for (const auto& [k, v] : status.details()) {
    if (k == "reason") {
      bool refined = false;
      for (const Refinement& r : kRefinements) {
        if (v == r.reason) {
          http = r.http;
          code = r.code;
          refined = true;
        }
      }
      if (refined) continue;
    }
    if (k == "retryAfterSeconds") retry_after = v;
    details.emplace_back(k, v);
  }
  HttpResponse r = JsonResponse(http, ErrorView(code, status.message(), details));
  if (!retry_after.empty()) r.headers.emplace_back("Retry-After", retry_after);
  return r;
}

HttpResponse MethodNotAllowed(std::string_view method, std::string_view allow) {
  HttpResponse r = ErrorResponse(405, "METHOD_NOT_ALLOWED",
                                 std::string(method) + " is not allowed here; use " +
                                     std::string(allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

HttpResponse PayloadTooLarge(uint64_t limit_bytes) {
  return ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                       "request body is larger than " + std::to_string(limit_bytes) +
                           " bytes, the limit of this route ([server] max_body_bytes; for model "
                           "calls [models] max_request_bytes): send less per request");
}

bool IsModelCall(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  auto ends_with = [path](std::string_view tail) {
    return path.size() >= tail.size() && path.substr(path.size() - tail.size()) == tail;
  };
  return method == "POST" && path.rfind("/api/v1/kernels/", 0) == 0 &&
         (ends_with("/predict") || ends_with("/models"));
}

std::optional<HttpResponse> RequireJson(const HttpRequest& request) {
  if (IsJsonContentType(request.content_type)) return std::nullopt;
  return ErrorResponse(415, "UNSUPPORTED_MEDIA_TYPE",
                       "request body must be JSON: send 'Content-Type: application/json'" +
                           (request.content_type.empty()
                                ? std::string()
                                : " (got '" + request.content_type + "')"));
}

std::optional<HttpResponse> ReadQuery(const RouteParams& params, std::vector<IntParam> ints,
                                      std::vector<std::pair<const char*, std::string*>> strings,
                                      std::string_view usage) {
  for (const auto& [key, value] : params.query) {
    bool ok = false;
    for (const IntParam& p : ints) {
      if (key == p.name) ok = ParseInt(value, p.min, p.max, p.value);
    }
    for (const auto& [name, out] : strings) {
      if (key == name) {
        *out = value;
        ok = true;
      }
    }
    if (!ok) return ErrorResponse(400, "BAD_REQUEST", "bad query; use " + std::string(usage));
  }
  return std::nullopt;
}

HttpResponse LogResponse(service::LogChunk chunk) {
  HttpResponse r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(chunk.text);
  r.headers.emplace_back("X-Log-Size", std::to_string(chunk.size));
  r.headers.emplace_back("X-Next-Offset", std::to_string(chunk.next_offset));
  r.headers.emplace_back("X-Log-Complete", chunk.complete ? "true" : "false");
  return r;
}

Router::Router(Services services, RouterOptions options)
    : services_(services), options_(std::move(options)) {
  AddSystemRoutes();
  AddKernelRoutes();
  AddWorkerRoutes();
  AddModelRoutes();
  AddKeyRoutes();
  AddFetchRoutes();
}

json Router::KernelJson(const service::Kernel& k) const {
  int running = services_.workers != nullptr ? services_.workers->Running(k.name()) : 0;
  if (services_.remote != nullptr) running += services_.remote->Count(k.name());
  return KernelView(k, services_.kernels->StateOf(k), running);
}

void Router::Handle(const HttpRequest& request, Reply reply) {
  std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
  if (path == "/healthz") {
    if (request.method != "GET" && request.method != "HEAD") {
      return reply(MethodNotAllowed(request.method, "GET"));
    }
    if (draining_) return reply(ErrorResponse(503, "UNAVAILABLE", "the supervisor is shutting down"));
    return reply(JsonResponse(200, {{"status", "ok"}}));
  }
  if (IsPublicRoute(request.method, path)) return table_.Dispatch(request, std::move(reply));
  Result<Role> role = Authenticate(request);
  if (!role.ok()) {
    HttpResponse r = ErrorResponse(401, "UNAUTHENTICATED", role.status().message());
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"giskard-supervisor\"");
    return reply(std::move(r));
  }
  if (*role == Role::kWorker && !IsWorkerRoute(request.method, path)) {
    return reply(ErrorResponse(403, "FORBIDDEN",
                               "this is a worker API key: it opens the worker endpoint "
                               "(/api/v1/workers/connect) only; use the admin token here"));
  }
  if (draining_) return reply(ErrorResponse(503, "UNAVAILABLE", "the supervisor is shutting down"));
  // Every body is JSON; routes that need one check its presence themselves.
  if ((request.method == "POST" || request.method == "PUT") && !request.body.empty()) {
    if (auto refused = RequireJson(request)) return reply(std::move(*refused));
  }
  table_.Dispatch(request, std::move(reply));
}

Result<Role> Router::Authenticate(const HttpRequest& request, std::string* key_name) {
  if (key_name != nullptr) *key_name = "admin";
  if (request.trusted) return Role::kAdmin;
  if (TokenMatches(request.authorization, options_.api_token)) return Role::kAdmin;
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view given = request.authorization;
  if (services_.keys != nullptr && given.substr(0, kBearer.size()) == kBearer &&
      given.size() > kBearer.size()) {
    Result<store::KeyRow> key = services_.keys->Authenticate(given.substr(kBearer.size()));
    if (key.ok()) {
      if (key_name != nullptr) *key_name = key->name;
      return Role::kWorker;
    }
    if (key.status().code() != StatusCode::kUnauthenticated) return key.status();
  }
  return Unauthenticated(
      request.authorization.empty()
          ? "missing bearer token; send 'Authorization: Bearer <token>' with the token from "
            "the api-token file in the state directory"
          : "wrong bearer token; use the token from the api-token file in the state directory "
            "(or, for a worker, a key from `giskard-supervisor keys create`)");
}

bool IsWorkerRoute(std::string_view method, std::string_view path) {
  return (method == "GET" || method == "HEAD") &&
         (path == "/api/v1/workers/connect" || path.rfind("/api/v1/model-blobs/", 0) == 0);
}

WebSocketAccept Router::Upgrade(const HttpRequest& request) {
  WebSocketAccept out;
  std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
  if (path != "/api/v1/workers/connect" || services_.remote == nullptr) {
    out.refusal = ErrorResponse(404, "NOT_FOUND", "no WebSocket endpoint here; workers dial "
                                                  "/api/v1/workers/connect");
    return out;
  }
  std::string key_name;
  Result<Role> role = Authenticate(request, &key_name);
  if (!role.ok()) {
    out.refusal = ErrorResponse(401, "UNAUTHENTICATED",
                                "this API key is wrong or was revoked; create one with "
                                "`giskard-supervisor keys create NAME`");
    out.refusal->headers.emplace_back("WWW-Authenticate", "Bearer realm=\"giskard-supervisor\"");
    return out;
  }
  if (draining_) {
    out.refusal = ErrorResponse(503, "UNAVAILABLE", "the supervisor is shutting down");
    return out;
  }
  if (!request.worker_name.empty()) {
    auto k = services_.kernels->Get(request.worker_name);
    if (k.ok() && (*k)->managed()) {
      out.refusal = ErrorResponse(409, "CONFLICT",
                                  "the name \"" + request.worker_name +
                                      "\" belongs to a managed kernel of this supervisor; start "
                                      "the worker with another --name");
      return out;
    }
  }
  relay::RemoteHello origin;
  origin.remote = request.remote;
  origin.key_name = key_name;
  relay::RemoteWorkers* remote = services_.remote;
  out.attach = [remote, origin](std::shared_ptr<WebSocketPeer> peer) {
    return remote->Attach(std::move(peer), origin);
  };
  return out;
}

HttpResponse Router::HandleNow(const HttpRequest& request) {
  auto answer = std::make_shared<std::optional<HttpResponse>>();
  Handle(request, [answer](HttpResponse r) { *answer = std::move(r); });
  if (!*answer) return ErrorResponse(500, "INTERNAL", "the route did not answer at once");
  return std::move(**answer);
}

}  // namespace gsk::api
