#include "supervisor/api/router.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>

#include <nlohmann/json.hpp>

namespace gsk::api {
namespace internal {

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  // Replace invalid UTF-8 rather than throwing: data from the store was validated on the way in.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse MethodNotAllowed(std::string_view method, std::string_view allow) {
  HttpResponse r = ErrorResponse(405, "METHOD_NOT_ALLOWED",
                                 std::string(method) + " is not allowed here; use " +
                                     std::string(allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

bool IsJsonContentType(std::string_view ct) {
  std::string lower(ct.substr(0, ct.find(';')));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!lower.empty() && lower.back() == ' ') lower.pop_back();
  return lower == "application/json";
}

std::string PercentDecode(std::string_view in, bool* ok) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i] == '+' ? ' ' : in[i]);
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= in.size()) {
      *ok = false;
      return out;
    }
    auto [p, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
    if (ec != std::errc() || p != in.data() + i + 3) {
      *ok = false;
      return out;
    }
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view query, bool* ok) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), ok);
    std::string value =
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), ok);
    if (!key.empty()) out[key] = value;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

bool ParseInt(const std::string& s, int64_t min, int64_t max, int64_t* out) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return false;
  *out = v;
  return true;
}

}  // namespace internal

namespace {

using nlohmann::json;
using namespace internal;  // NOLINT: this file's own helpers
constexpr std::string_view kPrefix = "/api/v1";

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}



}  // namespace

HttpResponse ErrorResponse(int http_status, std::string_view code, std::string_view message,
                           const Status::Detail* detail) {
  json details = json::object();
  if (detail != nullptr) details[detail->first] = detail->second;
  return JsonResponse(http_status, {{"error",
                                     {{"code", code}, {"message", message}, {"details", details}}}});
}

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
  json details = json::object();
  for (const auto& [k, v] : status.details()) {
    // "reason":"invalid_json" marks a body that is not a JSON object at all: a 400, not a 422.
    if (k == "reason" && v == "invalid_json") {
      http = 400;
      code = "INVALID_JSON";
      continue;
    }
    details[k] = v;
  }
  return JsonResponse(http, {{"error", {{"code", code}, {"message", status.message()},
                                        {"details", details}}}});
}

HttpResponse PayloadTooLarge(uint64_t limit_bytes) {
  return ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                       "request body is larger than " + std::to_string(limit_bytes) +
                           " bytes; kernel documents are small, or raise [server] max_body_bytes");
}

bool TokenMatches(std::string_view given, std::string_view token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (token.empty() || given.size() <= kBearer.size()) return false;
  bool scheme_ok = given.substr(0, kBearer.size()) == kBearer;
  // Hash both sides so the comparison takes the same time whatever the lengths are.
  auto a = Sha256(given.substr(kBearer.size()));
  auto b = Sha256(token);
  return (CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0) && scheme_ok;
}

Router::Router(service::KernelService* kernels, RouterOptions options)
    : kernels_(kernels), options_(std::move(options)) {}

json Router::KernelJson(const store::KernelRow& row) const {
  json body = service::KernelToJson(row, kernels_->Progress(row));
  if (options_.workers != nullptr) body["runningWorkers"] = options_.workers->Running(row.name);
  return body;
}

json Router::WriteOutcomeJson(const service::WriteOutcome& outcome) const {
  json body = KernelJson(outcome.row);
  if (!outcome.warnings.empty()) body["warnings"] = outcome.warnings;
  return body;
}

HttpResponse Router::Handle(const HttpRequest& request) {
  std::string_view target = request.target;
  size_t q = target.find('?');
  std::string path(target.substr(0, q));
  std::string query(q == std::string_view::npos ? "" : target.substr(q + 1));
  if (path == "/healthz") {
    if (request.method != "GET" && request.method != "HEAD") return MethodNotAllowed(request.method, "GET");
    if (draining_) return ErrorResponse(503, "UNAVAILABLE", "the supervisor is shutting down");
    return JsonResponse(200, {{"status", "ok"}});
  }
  if (!request.trusted && !TokenMatches(request.authorization, options_.api_token)) {
    HttpResponse r = ErrorResponse(
        401, "UNAUTHENTICATED",
        request.authorization.empty()
            ? "missing bearer token; send 'Authorization: Bearer <token>' with the token from "
              "the api-token file in the state directory"
            : "wrong bearer token; use the token from the api-token file in the state directory");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"giskard-supervisor\"");
    return r;
  }
  if (draining_) return ErrorResponse(503, "UNAVAILABLE", "the supervisor is shutting down");
  // Bodiless actions (POST .../rebuild) need no content type; every body must be JSON.
  bool needs_body = request.method == "PUT" || path == "/api/v1/kernels" ||
                    path == "/api/v1/kernels/";
  if ((request.method == "POST" || request.method == "PUT") &&
      (needs_body || !request.body.empty()) && !IsJsonContentType(request.content_type)) {
    return ErrorResponse(415, "UNSUPPORTED_MEDIA_TYPE",
                         "request body must be JSON: send 'Content-Type: application/json'" +
                             (request.content_type.empty()
                                  ? std::string()
                                  : " (got '" + request.content_type + "')"));
  }
  return Route(request, path, query);
}

HttpResponse Router::Route(const HttpRequest& request, const std::string& path,
                           const std::string& query) {
  if (path.compare(0, kPrefix.size(), kPrefix) != 0) {
    return ErrorResponse(404, "NOT_FOUND", "no such route: " + path + " (the API is under /api/v1)");
  }
  std::string rest = path.substr(kPrefix.size());
  if (rest == "/status") {
    if (request.method != "GET") return MethodNotAllowed(request.method, "GET");
    return JsonResponse(200, options_.status_info ? options_.status_info() : json::object());
  }
  if (rest == "/events") {
    if (request.method != "GET") return MethodNotAllowed(request.method, "GET");
    return Events(query);
  }
  if (rest == "/kernels" || rest == "/kernels/") return Kernels(request, query);
  constexpr std::string_view kKernels = "/kernels/";
  if (rest.compare(0, kKernels.size(), kKernels) == 0) {
    bool ok = true;
    std::string tail = rest.substr(kKernels.size());
    std::string action;
    if (size_t slash = tail.find('/'); slash != std::string::npos) {
      action = tail.substr(slash + 1);
      tail.resize(slash);
    }
    std::string name = PercentDecode(tail, &ok);
    if (!ok || name.find('/') != std::string::npos ||
        (!action.empty() && action != "build-log" && action != "rebuild" && action != "start" &&
         action != "stop")) {
      return ErrorResponse(404, "NOT_FOUND", "no such route: " + path);
    }
    if (Status s = spec::ValidateKernelName(name); !s.ok()) {
      Status::Detail d{"name", name};
      return ErrorResponse(400, "BAD_REQUEST", s.message(), &d);
    }
    if (action == "build-log") {
      if (request.method != "GET") return MethodNotAllowed(request.method, "GET");
      return BuildLog(name, query);
    }
    if (action == "rebuild") {
      if (request.method != "POST") return MethodNotAllowed(request.method, "POST");
      auto row = kernels_->Rebuild(name, {request.trusted ? "admin-socket" : "rest"});
      if (!row.ok()) return StatusResponse(row.status());
      return JsonResponse(202, KernelJson(*row));
    }
    if (action == "start" || action == "stop") return KernelWorkers(request, name, action);
    return OneKernel(request, name);
  }
  if (rest == "/workers" || rest == "/workers/") return Workers(request, query);
  constexpr std::string_view kWorkers = "/workers/";
  if (rest.compare(0, kWorkers.size(), kWorkers) == 0) {
    return OneWorker(request, rest.substr(kWorkers.size()), query);
  }
  return ErrorResponse(404, "NOT_FOUND", "no such route: " + path);
}

HttpResponse Router::Kernels(const HttpRequest& request, const std::string& /*query*/) {
  service::Caller caller{request.trusted ? "admin-socket" : "rest"};
  if (request.method == "GET") {
    auto rows = kernels_->List();
    if (!rows.ok()) return StatusResponse(rows.status());
    json list = json::array();
    for (const auto& row : *rows) {
      list.push_back(KernelJson(row));
    }
    size_t count = list.size();
    return JsonResponse(200, {{"kernels", std::move(list)}, {"count", count}});
  }
  if (request.method == "POST") {
    auto outcome = kernels_->Create(request.body, caller);
    if (!outcome.ok()) return StatusResponse(outcome.status());
    return JsonResponse(outcome->changed ? 201 : 200, WriteOutcomeJson(*outcome));
  }
  return MethodNotAllowed(request.method, "GET, POST");
}

HttpResponse Router::OneKernel(const HttpRequest& request, const std::string& name) {
  service::Caller caller{request.trusted ? "admin-socket" : "rest"};
  if (request.method == "GET") {
    auto row = kernels_->Get(name);
    if (!row.ok()) return StatusResponse(row.status());
    return JsonResponse(200, KernelJson(*row));
  }
  if (request.method == "PUT") {
    auto outcome = kernels_->Replace(name, request.body, caller);
    if (!outcome.ok()) return StatusResponse(outcome.status());
    return JsonResponse(200, WriteOutcomeJson(*outcome));
  }
  if (request.method == "DELETE") {
    if (Status s = kernels_->Delete(name, caller); !s.ok()) return StatusResponse(s);
    return JsonResponse(200, {{"name", name}, {"deleted", true}});
  }
  return MethodNotAllowed(request.method, "GET, PUT, DELETE");
}

HttpResponse Router::BuildLog(const std::string& name, const std::string& query) {
  bool ok = true;
  auto params = ParseQuery(query, &ok);
  int64_t offset = 0;
  int64_t limit = 1 << 20;
  for (const auto& [key, v] : params) {
    if (key == "offset" && ParseInt(v, 0, INT64_MAX, &offset)) continue;
    if (key == "limit" && ParseInt(v, 1, 16 << 20, &limit)) continue;
    ok = false;
  }
  if (!ok) {
    return ErrorResponse(400, "BAD_REQUEST", "bad query; use offset=BYTES (>= 0), limit=1..16777216");
  }
  auto chunk = kernels_->BuildLog(name, static_cast<uint64_t>(offset), static_cast<uint64_t>(limit));
  if (!chunk.ok()) return StatusResponse(chunk.status());
  HttpResponse r;
  r.status = 200;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(chunk->text);
  r.headers.emplace_back("X-Log-Size", std::to_string(chunk->size));
  r.headers.emplace_back("X-Next-Offset", std::to_string(chunk->next_offset));
  r.headers.emplace_back("X-Build-Complete", chunk->complete ? "true" : "false");
  return r;
}

HttpResponse Router::Events(const std::string& query) {
  bool ok = true;
  auto params = ParseQuery(query, &ok);
  store::EventFilter filter;
  int64_t value = 0;
  for (const auto& [key, v] : params) {
    if (key == "subject") {
      filter.subject = v;
    } else if (key == "after" && ParseInt(v, 0, INT64_MAX, &value)) {
      filter.after_id = value;
    } else if (key == "limit" && ParseInt(v, 1, 1000, &value)) {
      filter.limit = static_cast<int>(value);
    } else {
      ok = false;
    }
  }
  if (!ok) {
    return ErrorResponse(400, "BAD_REQUEST",
                         "bad query; use subject=kernel/NAME, after=ID (>= 0), limit=1..1000");
  }
  if (!options_.events) return JsonResponse(200, {{"events", json::array()}});
  auto events = options_.events(filter);
  if (!events.ok()) return StatusResponse(events.status());
  return JsonResponse(200, {{"events", *events}});
}

}  // namespace gsk::api
