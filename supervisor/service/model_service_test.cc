// ModelRoots on a real temporary directory: what a model path resolves to, what is refused, and
// that a remembered resolution never outlives a change of what the path leads to.
#include "supervisor/service/model_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "base/fake_clock.h"

namespace gsk::service {
namespace {

namespace fs = std::filesystem;

class ModelRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gsk-roots-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "outside");
    root_ = fs::canonical(dir_) / "models";  // created by Init
    roots_ = std::make_unique<ModelRoots>(std::vector<fs::path>{dir_ / "models"}, clock_);
    ASSERT_TRUE(roots_->Init().ok());
    Write(root_ / "a.pkl");
    Write(root_ / "b.pkl");
    Write(dir_ / "outside" / "evil.pkl");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void Write(const fs::path& path) { std::ofstream(path) << path.filename().string(); }
  static void Link(const fs::path& target, const fs::path& link) {
    fs::remove(link);
    fs::create_symlink(target, link);
  }
  std::string Resolved(const std::string& text) {
    Result<fs::path> r = roots_->Resolve(text);
    return r.ok() ? r->string() : "error: " + std::string(StatusCodeName(r.status().code()));
  }

  fs::path dir_;
  fs::path root_;
  FakeClock clock_;
  std::unique_ptr<ModelRoots> roots_;
};

TEST_F(ModelRootsTest, PathsResolveUnderTheRootsOrAreRefused) {
  EXPECT_EQ(Resolved("a.pkl"), (root_ / "a.pkl").string());
  EXPECT_EQ(Resolved((root_ / "b.pkl").string()), (root_ / "b.pkl").string());
  EXPECT_EQ(Resolved("../outside/evil.pkl"), "error: FAILED_PRECONDITION");
  EXPECT_EQ(Resolved((dir_ / "outside" / "evil.pkl").string()), "error: FAILED_PRECONDITION");
  EXPECT_EQ(Resolved("missing.pkl"), "error: NOT_FOUND");
  EXPECT_EQ(Resolved(""), "error: INVALID_ARGUMENT");
  Link(dir_ / "outside" / "evil.pkl", root_ / "out.pkl");
  Result<fs::path> out = roots_->Resolve("out.pkl");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("it leads to"), std::string::npos)
      << out.status().message();
}

TEST_F(ModelRootsTest, ARememberedResolutionFollowsASymlinkRetargetedAtOnce) {
  Link(root_ / "a.pkl", root_ / "current.pkl");
  EXPECT_EQ(Resolved("current.pkl"), (root_ / "a.pkl").string());
  EXPECT_EQ(Resolved("current.pkl"), (root_ / "a.pkl").string());  // remembered
  Link(root_ / "b.pkl", root_ / "current.pkl");                    // a deployment
  EXPECT_EQ(Resolved("current.pkl"), (root_ / "b.pkl").string());
  Link(dir_ / "outside" / "evil.pkl", root_ / "current.pkl");  // out of the roots
  EXPECT_EQ(Resolved("current.pkl"), "error: FAILED_PRECONDITION");
  fs::remove(root_ / "current.pkl");
  EXPECT_EQ(Resolved("current.pkl"), "error: NOT_FOUND");
}

TEST_F(ModelRootsTest, AFileReplacedInPlaceIsResolvedAgain) {
  EXPECT_EQ(Resolved("a.pkl"), (root_ / "a.pkl").string());
  fs::remove(root_ / "a.pkl");
  Link(dir_ / "outside" / "evil.pkl", root_ / "a.pkl");  // the file itself becomes a symlink out
  EXPECT_EQ(Resolved("a.pkl"), "error: FAILED_PRECONDITION");
}

// The one change a single stat cannot see: the same file, its folder moved out of the roots
// and replaced by a symlink to its new place. It is caught once the resolution is too old.
TEST_F(ModelRootsTest, AFolderMovedOutIsCaughtWhenTheResolutionExpires) {
  fs::create_directories(root_ / "team");
  Write(root_ / "team" / "m.pkl");
  std::string path = (root_ / "team" / "m.pkl").string();
  EXPECT_EQ(Resolved("team/m.pkl"), path);
  fs::rename(root_ / "team", dir_ / "outside" / "team");
  Link(dir_ / "outside" / "team", root_ / "team");
  EXPECT_EQ(Resolved("team/m.pkl"), path);
  clock_.Advance(ModelRoots::kReuseMillis);
  EXPECT_EQ(Resolved("team/m.pkl"), "error: FAILED_PRECONDITION");
}

}  // namespace
}  // namespace gsk::service
