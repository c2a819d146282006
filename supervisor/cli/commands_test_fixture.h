// Test-only: runs the client subcommands through CLI11 parsing as main() does, with captured
// output, an injected environment and files, and a fake clock for the polling loops (its sleep
// advances it and counts, so `--wait` and `logs -f` tests never wait for real). Not thread-safe;
// ticks() may be read from a test server's thread.
#pragma once

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "supervisor/cli/client_commands.h"
#include "supervisor/cli/commands.h"
#include "supervisor/cli/test_http_server.h"

namespace gsk::cli::testing {

class CommandsTest : public ::testing::Test {
 protected:
  // Parses `args` (after the program name) as main() does and returns the exit code.
  int Run(const std::string& args) {
    out_.str("");
    err_.str("");
    CommandEnv env;
    env.out = &out_;
    env.err = &err_;
    env.host.getenv = [this](const std::string& name) -> std::optional<std::string> {
      auto it = vars_.find(name);
      if (it == vars_.end()) return std::nullopt;
      return it->second;
    };
    env.host.exists = [](const std::string&) { return false; };
    env.host.read_file = [](const std::string&) { return std::nullopt; };
    env.read_file = [this](const std::string& path) -> Result<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return InvalidArgument(path + ": No such file or directory");
      return it->second;
    };
    env.client_options.connect_timeout = std::chrono::milliseconds(2000);
    env.client_options.request_timeout = std::chrono::milliseconds(2000);
    env.pacing.log_chunk_bytes = log_chunk_bytes_;
    env.pacing.now = [this] { return now_; };
    env.pacing.sleep = [this](std::chrono::milliseconds d) {
      sleeps_.push_back(d);
      now_ += d;
      ++ticks_;
    };
    CLI::App app{"test"};
    app.require_subcommand(1);
    int exit_code = -1;
    AddClientCommands(app, &exit_code, env);
    try {
      app.parse(args, /*program_name_included=*/false);
    } catch (const CLI::ParseError& e) {
      return app.exit(e, out_, err_) == 0 ? 0 : 2;
    }
    return exit_code;
  }

  std::string Socket() const { return (dir_.path() / "admin.sock").string(); }
  // How many times the command slept so far (safe to read from a server thread).
  int ticks() const { return ticks_.load(); }

  TempDir dir_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::map<std::string, std::string> vars_;
  std::map<std::string, std::string> files_;
  std::size_t log_chunk_bytes_ = 1 << 20;
  std::chrono::steady_clock::time_point now_{};
  std::vector<std::chrono::milliseconds> sleeps_;
  std::atomic<int> ticks_{0};
};

}  // namespace gsk::cli::testing
