// RunAndCapture: a real launcher on a private io_context, run until the process has exited.

#include <boost/asio/io_context.hpp>
#include <optional>

#include "supervisor/process/process_launcher.h"

namespace gsk::process {
namespace {

constexpr size_t kMaxCapturedBytes = size_t{1} << 20;
// After SIGKILL the group dies at once unless a member is stuck in the kernel.
constexpr std::chrono::seconds kReapAfterKill{5};

}  // namespace

Result<CapturedOutput> RunAndCapture(ProcessSpec spec, std::chrono::milliseconds timeout) {
  boost::asio::io_context io(1);
  std::unique_ptr<ProcessLauncher> launcher = MakeRealLauncher(io);
  CapturedOutput captured;
  spec.on_output = [&captured](std::string_view line) {
    if (captured.output.size() + line.size() + 1 > kMaxCapturedBytes) return;
    captured.output.append(line);
    captured.output.push_back('\n');
  };
  std::optional<ExitInfo> exit;
  std::string program = spec.argv.empty() ? "" : spec.argv[0];
  GSK_ASSIGN_OR_RETURN(
      ProcessHandle handle,
      launcher->Launch(std::move(spec), [&exit](const ExitInfo& info) { exit = info; }));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exit && io.run_one_until(deadline) > 0) {
  }
  if (exit) {
    captured.exit = *exit;
    return captured;
  }
  launcher->Kill(handle);
  auto reap_deadline = std::chrono::steady_clock::now() + kReapAfterKill;
  while (!exit && io.run_one_until(reap_deadline) > 0) {
  }
  // If it is still not gone, destroying the launcher kills and reaps it synchronously.
  return DeadlineExceeded(program + " did not finish within " + std::to_string(timeout.count()) +
                          " ms and was killed");
}

}  // namespace gsk::process
