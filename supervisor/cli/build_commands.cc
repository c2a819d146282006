// The client subcommands about environment builds: `kernels logs`, `kernels rebuild`, and the
// `--wait` loop that `kernels create` shares.
#include <charconv>
#include <cstdio>
#include <ostream>
#include <thread>

#include "supervisor/cli/commands.h"
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

// One page of GET .../build-log, with the headers that say where the log stands.
struct LogPage {
  std::string text;
  uint64_t size = 0;         // X-Log-Size: bytes in the log now
  uint64_t next_offset = 0;  // X-Next-Offset
  bool complete = true;      // X-Build-Complete; a daemon without it must not keep -f polling
};

uint64_t HeaderNumber(const HttpReply& reply, std::string_view name, uint64_t fallback) {
  std::optional<std::string> text = reply.Header(name);
  if (!text) return fallback;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  return ec == std::errc() && end == text->data() + text->size() ? value : fallback;
}

int FetchLogPage(const HttpClient& client, const std::string& name, uint64_t offset,
                 const CommandEnv& env, LogPage* page) {
  std::string path = KernelPath(name) + "/build-log?offset=" + std::to_string(offset) +
                     "&limit=" + std::to_string(env.pacing.log_chunk_bytes);
  CallResult r = Call(client, "GET", path, {}, env, /*expect_json=*/false);
  if (r.exit_code != kExitOk) return r.exit_code;
  page->text = std::move(r.reply.body);
  uint64_t end = offset + page->text.size();
  page->next_offset = HeaderNumber(r.reply, "X-Next-Offset", end);
  page->size = HeaderNumber(r.reply, "X-Log-Size", end);
  page->complete = r.reply.Header("X-Build-Complete").value_or("true") != "false";
  return kExitOk;
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

void PrintLogText(const std::string& text, uint64_t offset, bool follow, bool json_output,
                  const CommandEnv& env) {
  if (!json_output) {
    *env.out << text << std::flush;
  } else if (follow) {
    *env.out << Dump(json{{"offset", offset}, {"text", text}}) << "\n" << std::flush;
  }
}

}  // namespace

Clock::time_point Now(const CommandEnv& env) {
  return env.pacing.now ? env.pacing.now() : Clock::now();
}

int KernelsLogs(const HttpClient& client, const std::string& name, bool follow, bool json_output,
                const CommandEnv& env) {
  uint64_t offset = 0;
  std::string all;  // --json without -f prints the whole text at the end
  bool explained = false;
  LogPage page;
  while (true) {
    if (int rc = FetchLogPage(client, name, offset, env, &page); rc != kExitOk) return rc;
    if (page.size < offset) {  // the file was truncated: a rebuild started a new log
      *env.err << "--- the build log restarted: a new build began ---\n";
      offset = 0;
      continue;
    }
    PrintLogText(page.text, offset, follow, json_output, env);
    if (json_output && !follow) all += page.text;
    offset = page.next_offset > offset ? page.next_offset : offset + page.text.size();
    if (offset < page.size && !page.text.empty()) continue;  // more is there: no need to wait
    if (!follow || page.complete) break;
    if (page.size == 0 && !explained) {
      explained = true;
      bool stop = false;
      if (int rc = ExplainEmptyLog(client, name, follow, env, &stop); rc != kExitOk) return rc;
      if (stop) break;
    }
    Sleep(env, env.pacing.log_poll);
  }
  if (!follow && page.size == 0 && !page.complete) {
    bool stop = false;
    if (int rc = ExplainEmptyLog(client, name, follow, env, &stop); rc != kExitOk) return rc;
  }
  if (json_output) {
    json doc = {{"name", name}, {"size", page.size}, {"complete", page.complete}};
    if (!follow) doc["text"] = all;
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
