#include "supervisor/daemon/state_lock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

namespace gsk::daemon {
namespace {

class StateLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-lock-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(StateLockTest, SecondAcquireFailsNamingThePid) {
  auto first = StateLock::Acquire(dir_ / "supervisor.lock");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = StateLock::Acquire(dir_ / "supervisor.lock");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())),
            std::string::npos)
      << second.status().message();
  first->reset();
  EXPECT_TRUE(StateLock::Acquire(dir_ / "supervisor.lock").ok());
}

TEST_F(StateLockTest, TokenIsGeneratedOnceWithOwnerOnlyMode) {
  auto token = LoadOrCreateToken(dir_ / "api-token");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "api-token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = LoadOrCreateToken(dir_ / "api-token");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *token);
}

TEST_F(StateLockTest, RefusesATokenFileOthersCanRead) {
  std::ofstream(dir_ / "api-token") << "0123456789abcdef0123\n";
  ::chmod((dir_ / "api-token").c_str(), 0644);
  auto token = LoadOrCreateToken(dir_ / "api-token");
  ASSERT_FALSE(token.ok());
  EXPECT_NE(token.status().message().find("chmod 600"), std::string::npos);
}

}  // namespace
}  // namespace gsk::daemon
