#include "supervisor/cli/log_follow.h"

#include <charconv>
#include <ostream>
#include <thread>

namespace gsk::cli {
namespace {

uint64_t HeaderNumber(const HttpReply& reply, std::string_view name, uint64_t fallback) {
  std::optional<std::string> text = reply.Header(name);
  if (!text) return fallback;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  return ec == std::errc() && end == text->data() + text->size() ? value : fallback;
}

struct Page {
  std::string text;
  uint64_t size = 0;
  uint64_t next_offset = 0;
  bool complete = true;  // a daemon that says nothing must not keep -f polling
};

int Fetch(const HttpClient& client, const std::string& path, uint64_t offset,
          const CommandEnv& env, Page* page) {
  std::string target = path + "?offset=" + std::to_string(offset) +
                       "&limit=" + std::to_string(env.pacing.log_chunk_bytes);
  CallResult r = Call(client, "GET", target, {}, env, /*expect_json=*/false);
  if (r.exit_code != kExitOk) return r.exit_code;
  page->text = std::move(r.reply.body);
  uint64_t end = offset + page->text.size();
  page->next_offset = HeaderNumber(r.reply, "X-Next-Offset", end);
  page->size = HeaderNumber(r.reply, "X-Log-Size", end);
  std::optional<std::string> complete = r.reply.Header("X-Log-Complete");
  if (!complete) complete = r.reply.Header("X-Build-Complete");  // daemons before 0.2
  page->complete = complete.value_or("true") != "false";
  return kExitOk;
}

void Pause(const CommandEnv& env) {
  if (env.pacing.sleep) {
    env.pacing.sleep(env.pacing.log_poll);
  } else {
    std::this_thread::sleep_for(env.pacing.log_poll);
  }
}

}  // namespace

int FollowLog(const HttpClient& client, const LogSource& source, bool follow, bool json_lines,
              bool quiet, const CommandEnv& env, LogEnd* end) {
  uint64_t offset = 0;
  bool asked_why = false;
  Page page;
  while (true) {
    if (int rc = Fetch(client, source.path, offset, env, &page); rc != kExitOk) {
      // The error is printed already; a worker deleted while followed is a normal end.
      return follow && source.gone_ends_follow && rc == kExitNotFound ? kExitOk : rc;
    }
    if (page.size < offset) {  // truncated or rotated: start again from the beginning
      if (!source.restart_notice.empty()) *env.err << source.restart_notice << "\n";
      offset = 0;
      continue;
    }
    if (!quiet && !page.text.empty()) {
      if (json_lines) {
        *env.out << Dump(nlohmann::json{{"offset", offset}, {"text", page.text}}) << "\n";
      } else {
        *env.out << page.text;
      }
      *env.out << std::flush;
    }
    if (end != nullptr) end->text += page.text;
    offset = page.next_offset > offset ? page.next_offset : offset + page.text.size();
    if (offset < page.size && !page.text.empty()) continue;  // more is there: no need to wait
    if (!follow || page.complete) break;
    if (page.size == 0 && !asked_why && source.on_empty) {
      asked_why = true;
      bool stop = false;
      if (int rc = source.on_empty(&stop); rc != kExitOk) return rc;
      if (stop) break;
    }
    Pause(env);
  }
  if (end != nullptr) {
    end->size = page.size;
    end->complete = page.complete;
  }
  return kExitOk;
}

}  // namespace gsk::cli
