#include "supervisor/cli/connection.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gsk::cli {
namespace {

constexpr std::string_view kSystemSocket = "/run/giskard-supervisor/admin.sock";
constexpr std::string_view kSystemStateDir = "/var/lib/giskard-supervisor";

std::string Trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// systemd passes several directories colon-separated; the first one is ours.
std::string FirstOfList(const std::string& value) { return value.substr(0, value.find(':')); }

std::vector<std::string> StateDirCandidates(const ConnectionFlags& flags,
                                            const HostEnvironment& env) {
  if (!flags.state_dir.empty()) return {flags.state_dir};
  std::vector<std::string> dirs;
  if (auto d = env.getenv("STATE_DIRECTORY")) dirs.push_back(FirstOfList(*d));
  if (auto x = env.getenv("XDG_STATE_HOME")) dirs.push_back(*x + "/giskard-supervisor");
  if (auto h = env.getenv("HOME")) dirs.push_back(*h + "/.local/state/giskard-supervisor");
  dirs.emplace_back(kSystemStateDir);
  return dirs;
}

Status FindToken(const ConnectionFlags& flags, const HostEnvironment& env, ConnectionTarget& t) {
  if (!flags.token.empty()) {
    t.token = flags.token;
    t.token_source = "--token";
    return Status::Ok();
  }
  if (auto v = env.getenv("GISKARD_SUPERVISOR_TOKEN")) {
    t.token = Trim(*v);
    t.token_source = "$GISKARD_SUPERVISOR_TOKEN";
    return Status::Ok();
  }
  if (!flags.token_file.empty()) {
    auto text = env.read_file(flags.token_file);
    if (!text)
      return InvalidArgument("cannot read --token-file " + flags.token_file +
                             " (missing or not readable by this user)");
    t.token = Trim(*text);
    if (t.token.empty()) return InvalidArgument("--token-file " + flags.token_file + " is empty");
    t.token_source = "--token-file " + flags.token_file;
    return Status::Ok();
  }
  for (const std::string& dir : StateDirCandidates(flags, env)) {
    std::string path = dir + "/api-token";
    if (auto text = env.read_file(path); text && !Trim(*text).empty()) {
      t.token = Trim(*text);
      t.token_source = path;
      return Status::Ok();
    }
  }
  return Status::Ok();  // no token: the daemon answers 401 and the CLI explains
}

ConnectionTarget UnixTarget(std::string path, std::string chosen_by) {
  ConnectionTarget t;
  t.kind = ConnectionTarget::Kind::kUnix;
  t.socket_path = std::move(path);
  t.chosen_by = std::move(chosen_by);
  return t;
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

}  // namespace

HostEnvironment RealHostEnvironment() {
  HostEnvironment env;
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  env.exists = [](const std::string& path) { return ::access(path.c_str(), F_OK) == 0; };
  env.read_file = ReadWholeFile;
  return env;
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("invalid --url \"" + std::string(url) + "\": " + std::string(why) +
                           " (expected http://HOST:PORT, e.g. http://127.0.0.1:40051)");
  };
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    return bad(
        "https is not supported by this client; use http:// (the daemon serves plain "
        "HTTP, on loopback by default)");
  }
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  if (rest.find("://") != std::string_view::npos) return bad("only http:// is supported");
  HttpUrl out;
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) out.base_path = std::string(rest.substr(slash));
  while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
  std::string_view port_text;
  if (authority.starts_with("[")) {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) return bad("junk after the IPv6 address");
    if (!after.empty()) port_text = after.substr(1);
  } else {
    std::size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return bad("bad port");
    }
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::string ConnectionTarget::Describe() const {
  if (kind == Kind::kUnix) return "unix socket " + socket_path;
  return url_text;
}

std::vector<std::string> DefaultSocketCandidates(const HostEnvironment& env) {
  std::vector<std::string> paths{std::string(kSystemSocket)};
  if (auto d = env.getenv("STATE_DIRECTORY")) paths.push_back(FirstOfList(*d) + "/admin.sock");
  if (auto x = env.getenv("XDG_STATE_HOME")) {
    paths.push_back(*x + "/giskard-supervisor/admin.sock");
  }
  if (auto h = env.getenv("HOME")) {
    paths.push_back(*h + "/.local/state/giskard-supervisor/admin.sock");
  }
  return paths;
}

Result<ConnectionTarget> SelectConnection(const ConnectionFlags& flags,
                                          const HostEnvironment& env) {
  std::optional<std::string> url;
  std::string url_source = "--url";
  if (!flags.url.empty()) {
    url = flags.url;
  } else if ((url = env.getenv("GISKARD_SUPERVISOR_URL"))) {
    url_source = "$GISKARD_SUPERVISOR_URL";
  }
  if (url) {
    ConnectionTarget t;
    t.kind = ConnectionTarget::Kind::kTcp;
    GSK_ASSIGN_OR_RETURN(t.url, ParseHttpUrl(*url));
    t.url_text = *url;
    t.chosen_by = url_source;
    GSK_RETURN_IF_ERROR(FindToken(flags, env, t));
    return t;
  }
  if (!flags.socket.empty()) return UnixTarget(flags.socket, "--socket");
  if (auto s = env.getenv("GISKARD_SUPERVISOR_SOCKET")) {
    return UnixTarget(*s, "$GISKARD_SUPERVISOR_SOCKET");
  }
  if (!flags.state_dir.empty()) return UnixTarget(flags.state_dir + "/admin.sock", "--state-dir");
  std::vector<std::string> candidates = DefaultSocketCandidates(env);
  std::string chosen = candidates.front();
  for (const std::string& path : candidates) {
    if (env.exists(path)) {
      chosen = path;
      break;
    }
  }
  ConnectionTarget t = UnixTarget(chosen, "default search");
  t.tried = std::move(candidates);
  return t;
}

}  // namespace gsk::cli
