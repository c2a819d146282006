#include "supervisor/api/route_table.h"

#include <gtest/gtest.h>

#include "supervisor/api/router.h"

namespace gsk::api {
namespace {

class RouteTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto record = [this](std::string name) {
      return [this, name](const HttpRequest&, const RouteParams& p, Reply reply) {
        hit_ = name;
        params_ = p;
        reply(HttpResponse{200, name, "text/plain", {}, ""});
      };
    };
    table_.Add("GET", "/api/v1/kernels", record("list"));
    table_.Add("POST", "/api/v1/kernels", record("create"));
    table_.Add("GET", "/api/v1/kernels/{name}", record("show"));
    table_.Add("GET", "/api/v1/kernels/{name}/build-log", record("log"));
    table_.Add("GET", "/api/v1/kernels/special", record("special"));
  }
  HttpResponse Call(const std::string& method, const std::string& target) {
    HttpResponse out;
    table_.Dispatch(HttpRequest{method, target, "", "", "", false, "", ""},
                    [&out](HttpResponse r) { out = std::move(r); });
    return out;
  }

  RouteTable table_;
  std::string hit_;
  RouteParams params_;
};

TEST_F(RouteTableTest, MatchesPatternsAndDecodesParametersOnce) {
  EXPECT_EQ(Call("GET", "/api/v1/kernels").body, "list");
  EXPECT_EQ(Call("GET", "/api/v1/kernels/").body, "list");
  EXPECT_EQ(Call("GET", "/api/v1/kernels/my%2Dkernel/build-log?offset=10&limit=2").body, "log");
  EXPECT_EQ(params_.path.at("name"), "my-kernel");
  EXPECT_EQ(params_.query.at("offset"), "10");
  EXPECT_EQ(Call("GET", "/api/v1/kernels/a?subject=kernel%2Fx+y").body, "show");
  EXPECT_EQ(params_.query.at("subject"), "kernel/x y");
  EXPECT_EQ(Call("HEAD", "/api/v1/kernels/a").body, "show");
  EXPECT_EQ(Call("GET", "/api/v1/kernels/special").body, "special");  // a literal beats {name}
}

TEST_F(RouteTableTest, UnknownPathsAreNotFoundAndOtherMethodsListWhatIsAllowed) {
  EXPECT_EQ(Call("GET", "/api/v1/nothing").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/kernels/a/b/c").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/kernels/a%2Fb").status, 404);  // a decoded "/" is no name
  HttpResponse r = Call("DELETE", "/api/v1/kernels");
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], std::make_pair(std::string("Allow"), std::string("GET, POST")));
}

TEST_F(RouteTableTest, TargetsThatAreNotAPathAreBadRequests) {
  for (const char* target : {"http://example.com/api/v1/kernels", "api/v1/kernels", "*",
                             "/api/v1/kernels/%zz", "/api/v1/kernels#frag"}) {
    EXPECT_EQ(Call("GET", target).status, 400) << target;
  }
  EXPECT_TRUE(hit_.empty());
}

}  // namespace
}  // namespace gsk::api
