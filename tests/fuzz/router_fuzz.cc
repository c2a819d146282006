// libFuzzer target for the REST request path: arbitrary method, target, headers and body go
// through the framing checks and the router (route table, Boost.URL parsing, authentication,
// handlers over a real store in a temporary directory and a fake env builder). Besides crashes
// and sanitizer reports it checks that every request gets exactly one answer with a status
// between 100 and 599 and, for JSON answers, a body that parses.
//
// Input layout: lines separated by '\n': method, target, content type, authorization, then
// "TE:<value>" / "CL:<value>" framing fields, then an empty line and the body. The first byte
// selects the admin socket (trusted) when odd.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/fake_clock.h"
#include "supervisor/api/router.h"
#include "supervisor/envs/fake_environments.h"
#include "supervisor/server/request_framing.h"

namespace {

struct World {
  World() {
    char tmpl[] = "/tmp/gsk-router-fuzz-XXXXXX";
    dir = ::mkdtemp(tmpl);
    store = std::move(gsk::store::Store::Open(dir / "supervisor.db")).value();
    kernels = std::make_unique<gsk::service::KernelService>(*store, clock, envs,
                                                            gsk::service::ServiceOptions{});
    if (!kernels->Load().ok()) std::abort();
    system = std::make_unique<gsk::service::SystemService>(*store, clock,
                                                           gsk::service::DaemonFacts{},
                                                           gsk::service::StatusSources{});
    gsk::api::RouterOptions options;
    options.api_token = "fuzz-token-0123456789";
    router = std::make_unique<gsk::api::Router>(
        gsk::api::Services{kernels.get(), nullptr, system.get()}, options);
  }
  ~World() { std::filesystem::remove_all(dir); }

  std::filesystem::path dir;
  gsk::FakeClock clock;
  gsk::envs::FakeEnvironments envs;
  std::unique_ptr<gsk::store::Store> store;
  std::unique_ptr<gsk::service::KernelService> kernels;
  std::unique_ptr<gsk::service::SystemService> system;
  std::unique_ptr<gsk::api::Router> router;
};

std::string_view NextLine(std::string_view& rest) {
  size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World();  // one store for the whole run, as a daemon has
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  gsk::api::HttpRequest request;
  request.trusted = (data[0] & 1) != 0;
  request.method = std::string(NextLine(rest));
  request.target = std::string(NextLine(rest));
  request.content_type = std::string(NextLine(rest));
  request.authorization = std::string(NextLine(rest));
  gsk::server::FramingFields framing;
  for (std::string_view line = NextLine(rest); !line.empty(); line = NextLine(rest)) {
    if (line.substr(0, 3) == "TE:") framing.transfer_encoding.emplace_back(line.substr(3));
    if (line.substr(0, 3) == "CL:") framing.content_length.emplace_back(line.substr(3));
    if (rest.empty()) break;
  }
  (void)gsk::server::CheckFraming(framing);
  request.body = std::string(rest);
  int answers = 0;
  gsk::api::HttpResponse response;
  world->router->Handle(request, [&](gsk::api::HttpResponse r) {
    ++answers;
    response = std::move(r);
  });
  if (answers != 1 || response.status < 100 || response.status > 599) {
    std::fprintf(stderr, "router_fuzz: %d answers, status %d\n", answers, response.status);
    std::abort();
  }
  if (response.content_type == "application/json" &&
      !nlohmann::json::accept(response.body)) {
    std::fprintf(stderr, "router_fuzz: a JSON answer that does not parse: %s\n",
                 response.body.c_str());
    std::abort();
  }
  return 0;
}
