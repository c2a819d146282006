// Unit tests of the launcher's parts that need no child process: /proc parsing, exit
// descriptions, line splitting and log rotation (on files in a temporary directory).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "supervisor/process/log_rotation.h"
#include "supervisor/process/output_sink.h"
#include "supervisor/process/proc_fs.h"
#include "supervisor/process/process_launcher.h"

namespace gsk::process {
namespace {

namespace fs = std::filesystem;

std::string StatLine(const std::string& comm) {
  // Fields 3..22 of a real line, with pgrp 77 and start time 123456.
  return "4242 (" + comm + ") S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1 2 3\n";
}

TEST(ParseProcStatTest, ReadsStatePpidGroupAndStartTime) {
  auto stat = internal::ParseProcStat(StatLine("python3"));
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 1);
  EXPECT_EQ(stat->pgrp, 77);
  EXPECT_EQ(stat->start_time_ticks, 123456);
}

TEST(ParseProcStatTest, CommandNameWithSpacesAndParentheses) {
  auto stat = internal::ParseProcStat(StatLine("a) b (c) 9 9"));
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->pgrp, 77);
  EXPECT_EQ(stat->start_time_ticks, 123456);
}

TEST(ParseProcStatTest, RejectsTruncatedLines) {
  EXPECT_FALSE(internal::ParseProcStat("4242 (x) S 1 77").ok());
  EXPECT_FALSE(internal::ParseProcStat("4242 no parentheses").ok());
  EXPECT_FALSE(internal::ParseProcStat("").ok());
}

TEST(ProcessStartTimeTest, OwnProcessAndMissingProcess) {
  auto mine = ProcessStartTime(::getpid());
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  EXPECT_GT(*mine, 0);
  auto again = ProcessStartTime(::getpid());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *mine);
  auto missing = ProcessStartTime(0x3fffffff);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(GroupAliveTest, OwnGroupIsAliveAnUnusedOneIsNot) {
  EXPECT_TRUE(GroupAlive(::getpgrp()));
  EXPECT_FALSE(GroupAlive(0x3fffffff));
  EXPECT_FALSE(GroupAlive(0));
}

TEST(ExitInfoTest, Describe) {
  EXPECT_EQ((ExitInfo{1, false, 1}.Describe()), "exited with code 1");
  EXPECT_EQ((ExitInfo{1, true, SIGKILL}.Describe()), "killed by signal 9 (SIGKILL)");
  EXPECT_EQ((ExitInfo{1, true, SIGTERM}.Describe()), "killed by signal 15 (SIGTERM)");
  EXPECT_EQ((ExitInfo{1, false, -1}.Describe()), "exit status unknown");
  EXPECT_TRUE((ExitInfo{1, false, 0}.success()));
  EXPECT_FALSE((ExitInfo{1, true, 0}.success()));
}

class LineSplitterTest : public ::testing::Test {
 protected:
  std::vector<std::string> lines_;
  internal::LineSplitter splitter_{[this](std::string_view l) { lines_.emplace_back(l); }};
};

TEST_F(LineSplitterTest, JoinsChunksAndFlushesTheRest) {
  splitter_.Feed("one\ntw");
  splitter_.Feed("o\n\nthr");
  EXPECT_EQ(lines_, (std::vector<std::string>{"one", "two", ""}));
  splitter_.Feed("ee");
  splitter_.Flush();
  splitter_.Flush();
  EXPECT_EQ(lines_, (std::vector<std::string>{"one", "two", "", "three"}));
}

TEST_F(LineSplitterTest, CutsOverlongLines) {
  const size_t max = internal::LineSplitter::kMaxLine;
  splitter_.Feed(std::string(max + 10, 'x') + "\n");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0].size(), max);
  EXPECT_EQ(lines_[1].size(), 10u);
}

class LogRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-logrot-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    log_ = dir_ / "worker.log";
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  fs::path Numbered(int n) const { return log_.string() + "." + std::to_string(n); }
  fs::path dir_;
  fs::path log_;
};

TEST_F(LogRotationTest, WriterRotatesByRenameKeepingThree) {
  auto writer = internal::LogWriter::Open(log_, 25);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  for (int i = 0; i < 6; ++i) writer->Write("line " + std::to_string(i) + " is 20 bytes\n");
  // Each 20-byte line rotates after the second write into a file: 2 lines per rotated file.
  EXPECT_EQ(Read(Numbered(1)), "line 4 is 20 bytes\nline 5 is 20 bytes\n");
  EXPECT_EQ(Read(Numbered(2)), "line 2 is 20 bytes\nline 3 is 20 bytes\n");
  EXPECT_EQ(Read(Numbered(3)), "line 0 is 20 bytes\nline 1 is 20 bytes\n");
  EXPECT_FALSE(fs::exists(Numbered(4)));
  writer->Write("next\n");
  EXPECT_EQ(Read(log_), "next\n");
}

TEST_F(LogRotationTest, WriterAppendsToAnExistingFile) {
  std::ofstream(log_) << "before\n";
  auto writer = internal::LogWriter::Open(log_, 0);
  ASSERT_TRUE(writer.ok());
  writer->Write("after\n");
  EXPECT_EQ(Read(log_), "before\nafter\n");
}

TEST_F(LogRotationTest, CopyTruncateKeepsTheFileAndItsAppendingWriters) {
  auto fd = internal::OpenForAppend(log_);
  ASSERT_TRUE(fd.ok());
  ASSERT_EQ(::write(fd->get(), "old output\n", 11), 11);
  struct stat before {};
  ASSERT_EQ(::stat(log_.c_str(), &before), 0);
  ASSERT_TRUE(internal::RotateByCopyTruncate(log_).ok());
  ASSERT_EQ(::write(fd->get(), "new\n", 4), 4);  // O_APPEND: lands at the new start
  struct stat after {};
  ASSERT_EQ(::stat(log_.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(Read(log_), "new\n");
  EXPECT_EQ(Read(Numbered(1)), "old output\n");
}

TEST_F(LogRotationTest, RotateIfLargerOnlyPastTheLimit) {
  std::ofstream(log_) << "0123456789";
  ASSERT_TRUE(internal::RotateIfLarger(log_, 10).ok());
  EXPECT_TRUE(fs::exists(log_));
  ASSERT_TRUE(internal::RotateIfLarger(log_, 9).ok());
  EXPECT_FALSE(fs::exists(log_));
  EXPECT_EQ(Read(Numbered(1)), "0123456789");
  EXPECT_TRUE(internal::RotateIfLarger(dir_ / "missing.log", 1).ok());
}

TEST_F(LogRotationTest, OpenForAppendNamesAMissingFolder) {
  auto fd = internal::OpenForAppend(dir_ / "no" / "such.log");
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kNotFound);
  EXPECT_NE(fd.status().message().find("such.log"), std::string::npos);
}

}  // namespace
}  // namespace gsk::process
