#include "supervisor/python/interpreters.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

namespace gsk::python {
namespace {

namespace fs = std::filesystem;

class InterpretersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-interp-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Touch(const fs::path& p) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "#!/bin/sh\n";
  }
  fs::path dir_;
};

TEST_F(InterpretersTest, CandidatesComeInPreferenceOrderWithoutDuplicatesOrShims) {
  Touch(dir_ / "sys/python3.11");
  Touch(dir_ / "sys/python3.11-config");
  fs::create_symlink(dir_ / "sys/python3.11", dir_ / "sys/python3");
  Touch(dir_ / "pyenv/versions/3.12.1/bin/python3");
  Touch(dir_ / "pyenv/shims/python3.12");
  Touch(dir_ / "other/python3.13");
  DiscoveryOptions o;
  o.configured = {(dir_ / "custom/python3").string()};
  o.system_dirs = {dir_ / "sys"};
  o.pyenv_root = (dir_ / "pyenv").string();
  o.path_env = (dir_ / "pyenv/shims").string() + ":" + (dir_ / "other").string() + ":" +
               (dir_ / "sys").string();
  auto c = CandidatePaths(o);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].second, "config");
  EXPECT_EQ(c[1].first, dir_ / "sys/python3");  // python3.11 is the same file
  EXPECT_EQ(c[2].first, dir_ / "pyenv/versions/3.12.1/bin/python3");
  EXPECT_EQ(c[2].second, "pyenv");
  EXPECT_EQ(c[3].first, dir_ / "other/python3.13");
  EXPECT_EQ(c[3].second, "PATH");
}

TEST(PickInterpreterTest, MissingVersionListsWhatIsAvailableAndHowToAdd) {
  std::vector<Interpreter> found(3);
  found[0].minor = "3.11";
  found[0].path = "/usr/bin/python3.11";
  found[1].minor = "3.9";
  found[1].path = "/opt/py39";
  found[2].minor = "3.7";
  found[2].problem = "needs 3.8";
  auto picked = PickInterpreter(found, "3.11");
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(picked->path, "/usr/bin/python3.11");
  auto missing = PickInterpreter(found, "3.99");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "pythonVersion \"3.99\" is not available; found 3.9, 3.11 (install it, or add its "
            "path to [python] interpreters in the config and restart the supervisor)");
}

// Runs the real system interpreter: the one every supported machine has.
TEST(DiscoverInterpretersTest, FindsTheSystemPythonWithAPipWheel) {
  DiscoveryOptions o;
  o.system_dirs = {"/usr/bin"};
  auto found = DiscoverInterpreters(o);
  auto it = std::find_if(found.begin(), found.end(),
                         [](const Interpreter& i) { return i.path == "/usr/bin/python3"; });
  ASSERT_NE(it, found.end());
  EXPECT_TRUE(it->usable()) << it->problem;
  EXPECT_EQ(it->version.rfind("3.", 0), 0u);
  EXPECT_EQ(it->version.substr(0, it->minor.size()), it->minor);
  EXPECT_FALSE(it->pip_wheel.empty());
}

}  // namespace
}  // namespace gsk::python
