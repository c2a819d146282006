// FollowLog: prints a log that the REST API serves in byte ranges (GET ...?offset=N&limit=M
// answering X-Log-Size, X-Next-Offset and X-Log-Complete): an env's build log or a worker's
// output. One reader for both; the pacing of -f comes from CommandEnv (fake in tests). Not
// thread-safe.
#pragma once

#include <functional>
#include <string>

#include "supervisor/cli/commands.h"

namespace gsk::cli {

struct LogSource {
  std::string path;  // "/api/v1/kernels/NAME/build-log", "/api/v1/workers/ID/logs"
  // Printed on env.err when the log starts over from its beginning (a new build, a rotation).
  std::string restart_notice;
  // Called once, with -f, while the log is still empty and not complete: may say why on
  // env.err and set *stop for a log that will never have bytes. Returns an exit code.
  std::function<int(bool* stop)> on_empty;
  // With -f, a 404 ends the follow with success (the worker was deleted).
  bool gone_ends_follow = false;
};

// What FollowLog saw last, for callers that report it.
struct LogEnd {
  uint64_t size = 0;
  bool complete = false;
  std::string text;  // everything printed, when `keep_text`
};

// Prints the log from its start. With `follow`, keeps asking for new bytes every
// pacing.log_poll until the log is complete (never, for a worker) or on_empty says stop. With
// `json_lines`, each piece is printed as {"offset","text"} on its own line instead of raw text;
// with `quiet`, nothing is printed (the caller uses `end`).
int FollowLog(const HttpClient& client, const LogSource& source, bool follow, bool json_lines,
              bool quiet, const CommandEnv& env, LogEnd* end);

}  // namespace gsk::cli
