// The client subcommands about environment builds: `kernels logs`, `kernels rebuild`, and the
// `--wait` loop that `kernels create` shares.
#include <cstdio>
#include <ostream>
#include <thread>

#include "supervisor/cli/commands.h"
#include "supervisor/cli/log_follow.h"
#include "supervisor/cli/render.h"

namespace gsk::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

void Sleep(const CommandEnv& env, std::chrono::milliseconds d) {
  if (env.pacing.sleep) {
    env.pacing.sleep(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

std::string StringField(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Seconds(double seconds, const char* format) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, seconds);
  return buffer;
}

// Called when the log is still empty: says why on env.err. Sets *stop for a kernel that will
// never have a build log (unmanaged).
int ExplainEmptyLog(const HttpClient& client, const std::string& name, bool follow,
                    const CommandEnv& env, bool* stop) {
  CallResult r = Call(client, "GET", KernelPath(name), {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (StringField(r.body, "type") == "UNMANAGED") {
    *env.err << "kernel " << name << " is unmanaged: the supervisor builds no environment for "
             << "it, so it has no build log\n";
    *stop = true;
  } else if (follow) {
    *env.err << "waiting for the build of kernel " << name << " to start ("
             << BuildStatusLine(r.body) << ")\n";
  } else {
    *env.err << "the build log of kernel " << name << " is empty (" << BuildStatusLine(r.body)
             << "); follow it with: giskard-supervisor kernels logs " << name << " -f\n";
  }
  return kExitOk;
}

}  // namespace

Clock::time_point Now(const CommandEnv& env) {
  return env.pacing.now ? env.pacing.now() : Clock::now();
}

int KernelsLogs(const HttpClient& client, const std::string& name, bool follow, bool json_output,
                const CommandEnv& env) {
  LogSource source;
  source.path = KernelPath(name) + "/build-log";
  source.restart_notice = "--- the build log restarted: a new build began ---";
  source.on_empty = [&](bool* stop) { return ExplainEmptyLog(client, name, true, env, stop); };
  LogEnd end;
  // --json without -f prints one document at the end; with -f, one line per piece.
  bool quiet = json_output && !follow;
  if (int rc = FollowLog(client, source, follow, json_output, quiet, env, &end); rc != kExitOk) {
    return rc;
  }
  if (!follow && end.size == 0 && !end.complete) {
    bool stop = false;
    if (int rc = ExplainEmptyLog(client, name, follow, env, &stop); rc != kExitOk) return rc;
  }
  if (json_output) {
    json doc = {{"name", name}, {"size", end.size}, {"complete", end.complete}};
    if (!follow) doc["text"] = end.text;
    *env.out << Dump(doc) << "\n";
  }
  return kExitOk;
}

int KernelsRebuild(const HttpClient& client, const std::string& name, const WaitFlags& wait,
                   bool json_output, const CommandEnv& env) {
  Clock::time_point started = Now(env);
  CallResult r = Call(client, "POST", KernelPath(name) + "/rebuild", {}, env);
  if (r.exit_code != kExitOk) return r.exit_code;
  if (wait.wait) {
    if (!json_output) *env.out << "rebuilding kernel " << name << "\n" << std::flush;
    return WaitForBuild(client, r.body, started, wait, json_output, env);
  }
  if (json_output) {
    *env.out << Dump(r.body, 2) << "\n";
    return kExitOk;
  }
  *env.out << "rebuilding kernel " << name << ": " << BuildStatusLine(r.body) << "\n"
           << "follow it with: giskard-supervisor kernels logs " << name << " -f\n";
  return kExitOk;
}

int WaitForBuild(const HttpClient& client, const json& kernel, Clock::time_point started,
                 const WaitFlags& wait, bool json_output, const CommandEnv& env) {
  std::string name = StringField(kernel, "name");
  auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(wait.timeout_seconds));
  env.out->flush();  // "created kernel NAME" before the progress lines
  json current = kernel;
  std::string last_line;
  while (StringField(current, "type") != "UNMANAGED") {
    std::string status = StringField(current, "status");
    if (status == "ready" || status == "failed") break;
    std::string line = BuildStatusLine(current);
    if (line != last_line) *env.err << line << "\n" << std::flush;
    last_line = line;
    if (Now(env) - started >= timeout) {
      *env.err << "error: kernel " << name << " is still " << status << " after "
               << Seconds(wait.timeout_seconds, "%g s") << " (--wait-timeout); the daemon goes "
               << "on building it: follow it with `giskard-supervisor kernels logs " << name
               << " -f`\n";
      return kExitInternal;
    }
    Sleep(env, env.pacing.status_poll);
    CallResult r = Call(client, "GET", KernelPath(name), {}, env);
    if (r.exit_code != kExitOk) return r.exit_code;
    current = std::move(r.body);
  }
  if (json_output) *env.out << Dump(current, 2) << "\n";
  if (StringField(current, "type") == "UNMANAGED") {
    *env.err << "kernel " << name << " is unmanaged: there is no environment to wait for\n";
    return kExitOk;
  }
  if (StringField(current, "status") == "failed") {
    std::string reason = StringField(current, "lastError");
    *env.err << "failed: " << (reason.empty() ? "no reason recorded" : reason) << "\n"
             << "the whole pip output: giskard-supervisor kernels logs " << name << "\n";
    return kExitBuildFailed;
  }
  if (!json_output) {
    double elapsed = std::chrono::duration<double>(Now(env) - started).count();
    *env.out << "ready in " << Seconds(elapsed, "%.1f s") << "\n";
  }
  return kExitOk;
}

}  // namespace gsk::cli
