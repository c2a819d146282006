// What workers and their users fetch: the bytes of a model named by a call
// (/api/v1/model-blobs/{sha256}, with a worker key or the admin token) and the shim's wheel
// (/downloads/, open to anyone who can reach the listener: it is the open-source shim).
#include <nlohmann/json.hpp>

#include "supervisor/api/router.h"
#include "supervisor/service/model_blobs.h"

namespace gsk::api {
namespace {

using nlohmann::json;

bool IsHex64(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

bool IsPublicRoute(std::string_view method, std::string_view path) {
  return (method == "GET" || method == "HEAD") &&
         (path == "/downloads" || path.rfind("/downloads/", 0) == 0);
}

void Router::AddFetchRoutes() {
  service::ModelBlobs* blobs = services_.blobs;
  table_.Add("GET", "/api/v1/model-blobs/{sha256}", [blobs](const HttpRequest&,
                                                           const RouteParams& p, Reply reply) {
    if (blobs == nullptr) return reply(ErrorResponse(404, "NOT_FOUND", "no model blobs here"));
    const std::string& sha = p.path.at("sha256");
    if (!IsHex64(sha)) {
      Status::Detail d{"sha256", sha};
      return reply(ErrorResponse(400, "BAD_REQUEST",
                                 "a model blob is named by 64 lowercase hex digits (its SHA-256)",
                                 &d));
    }
    auto file = blobs->Find(sha);
    if (!file.ok()) return reply(StatusResponse(file.status()));
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.file_path = file->string();
    reply(std::move(r));
  });
  std::filesystem::path wheel = options_.shim_wheel;
  auto listing = [wheel](const HttpRequest&, const RouteParams&, Reply reply) {
    json files = json::array();
    if (!wheel.empty()) {
      files.push_back({{"name", wheel.filename().string()},
                       {"url", "/downloads/" + wheel.filename().string()},
                       {"install", "pip install http://HOST:PORT/downloads/" +
                                       wheel.filename().string()}});
    }
    reply(JsonResponse(200, {{"files", std::move(files)}}));
  };
  table_.Add("GET", "/downloads", listing);
  table_.Add("GET", "/downloads/", listing);
  table_.Add("GET", "/downloads/{file}", [wheel](const HttpRequest&, const RouteParams& p,
                                                 Reply reply) {
    if (wheel.empty() || p.path.at("file") != wheel.filename().string()) {
      return reply(ErrorResponse(404, "NOT_FOUND",
                                 wheel.empty() ? "this supervisor has no shim wheel to serve"
                                               : "no such file; GET /downloads/ lists what there is"));
    }
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.file_path = wheel.string();
    reply(std::move(r));
  });
}

}  // namespace gsk::api
