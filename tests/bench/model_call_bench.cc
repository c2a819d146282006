// model_call_bench: the load generator of tests/bench/model_bench.py: model calls over
// keep-alive HTTP/1.1 (TCP_NODELAY, each request written with one send) or shim-protocol
// frames on an inherited, already registered Unix socket to a worker. Plain POSIX sockets, one
// thread; prints one JSON line. Not a test: run by run_model_bench.sh.
//
//   model_call_bench seq    --port P --path PATH [--token T] [--body FILE] [--warmup W]
//                           [--calls N] [--max-seconds S] [--first-out FILE]
//   model_call_bench load   --port P --path PATH [--token T] --body FILE [--connections C]
//                           [--seconds S] [--warmup-seconds W]
//   model_call_bench frames --fd N --body FILE [--warmup W] [--calls N] [--max-seconds S]
//                           [--first-out FILE]
//
// seq: one connection, one call at a time (POST with --body, else GET); a server that answers
// "Connection: close" is dialled again (counted, and part of that call's latency). load: C
// connections, each a closed loop, on epoll. frames: `predict` requests whose params are the
// body, one at a time, on descriptor N (a connection to a worker that the caller registered).
// --first-out writes the first measured answer's body (frames: the reply's payload) to FILE.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Options {
  std::string mode;
  int port = 0;
  std::string path = "/";
  std::string token;
  std::string body_file;
  int64_t warmup = 100;
  int64_t calls = 1000;
  int connections = 8;
  double seconds = 4;
  double warmup_seconds = 1;
  double max_seconds = 300;
  int fd = -1;
  std::string first_out;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "model_call_bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "model_call_bench: %s\n", what.c_str());
  std::exit(1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) Fail("cannot write " + path);
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

double Micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double k = static_cast<double>(sorted.size() - 1) * p / 100.0;
  auto lo = static_cast<size_t>(k);
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - static_cast<double>(lo));
}

Json Summary(std::vector<double> us) {
  Json j;
  j["n"] = us.size();
  if (us.empty()) return j;
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  j["p50"] = Percentile(us, 50);
  j["p90"] = Percentile(us, 90);
  j["p99"] = Percentile(us, 99);
  j["min"] = us.front();
  j["max"] = us.back();
  j["mean"] = sum / static_cast<double>(us.size());
  return j;
}

// --- sockets --------------------------------------------------------------------------------------

int Dial(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) Die("connect");
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) Die("TCP_NODELAY");
  return fd;
}

void WriteAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      Die("send");
    }
    off += static_cast<size_t>(n);
  }
}

std::vector<char> g_chunk(1 << 18);

// Reads what is there into `buf`; false at end of stream.
bool ReadSome(int fd, std::string& buf) {
  for (;;) {
    ssize_t n = ::recv(fd, g_chunk.data(), g_chunk.size(), 0);
    if (n > 0) {
      buf.append(g_chunk.data(), static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    if (errno == ECONNRESET) return false;
    Die("recv");
  }
}

// --- HTTP/1.1 -------------------------------------------------------------------------------------

std::string BuildRequest(const Options& o, const std::string* body) {
  std::string r;
  if (body == nullptr) {
    r = "GET " + o.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    return r;
  }
  r = "POST " + o.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + o.token +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body->size()) +
      "\r\n\r\n";
  r += *body;
  return r;
}

struct Answer {
  int status = 0;
  bool close = false;
  std::string body;
};

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Takes one complete answer (with a Content-Length: every server measured here sends one) off
// the front of `buf`; false while it is incomplete.
bool NextAnswer(std::string& buf, Answer& out) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string_view head(buf.data(), end);
  if (head.size() < 12) Fail("malformed status line");
  size_t length = 0;
  bool close = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(pos + 2, next == std::string_view::npos
                                                     ? std::string_view::npos
                                                     : next - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = Trim(line.substr(0, colon));
      std::string_view value = Trim(line.substr(colon + 1));
      if (IEquals(name, "content-length")) {
        length = static_cast<size_t>(std::strtoull(std::string(value).c_str(), nullptr, 10));
      } else if (IEquals(name, "connection")) {
        close = IEquals(value, "close");
      }
    }
    pos = next;
  }
  if (buf.size() < end + 4 + length) return false;
  out.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  out.close = close;
  out.body.assign(buf, end + 4, length);
  buf.erase(0, end + 4 + length);
  return true;
}

// The daemon's own "durationMs" and "queuedMs" (the last fields of its answer), or -1.
int64_t Field(const std::string& body, std::string_view key) {
  size_t i = body.rfind(key);
  if (i == std::string::npos) return -1;
  return std::strtoll(body.c_str() + i + key.size(), nullptr, 10);
}

Json ServerMs(std::vector<double> duration, std::vector<double> queued) {
  if (duration.empty()) return nullptr;
  std::sort(duration.begin(), duration.end());
  std::sort(queued.begin(), queued.end());
  return Json{{"n", duration.size()},
              {"duration_p50", Percentile(duration, 50)},
              {"duration_max", duration.back()},
              {"queued_p50", Percentile(queued, 50)},
              {"queued_max", queued.back()}};
}

Json RunSeq(const Options& o) {
  std::string body;
  if (!o.body_file.empty()) body = ReadFile(o.body_file);
  const std::string req = BuildRequest(o, o.body_file.empty() ? nullptr : &body);
  int fd = Dial(o.port);
  std::string buf;
  std::vector<double> lat, duration, queued;
  lat.reserve(static_cast<size_t>(o.calls));
  std::map<std::string, int64_t> statuses;
  int64_t reconnects = 0;
  double cpu0 = 0;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.max_seconds));
  bool wrote_first = false;
  for (int64_t i = 0; i < o.warmup + o.calls; ++i) {
    if (i == o.warmup) cpu0 = CpuSeconds();
    auto t0 = Clock::now();
    WriteAll(fd, req);
    Answer a;
    while (!NextAnswer(buf, a)) {
      if (!ReadSome(fd, buf)) Fail("the server closed the connection before answer " +
                                   std::to_string(i));
    }
    auto t1 = Clock::now();
    if (a.close) {
      ::close(fd);
      fd = Dial(o.port);
      buf.clear();
      ++reconnects;
    }
    if (i >= o.warmup) {
      lat.push_back(Micros(t1 - t0));
      ++statuses[std::to_string(a.status)];
      int64_t d = Field(a.body, "\"durationMs\":");
      if (d >= 0) {
        duration.push_back(static_cast<double>(d));
        queued.push_back(static_cast<double>(Field(a.body, "\"queuedMs\":")));
      }
      if (!wrote_first && !o.first_out.empty()) {
        WriteFile(o.first_out, a.body);
        wrote_first = true;
      }
    }
    if (t1 > deadline) break;
  }
  double cpu = CpuSeconds() - cpu0;
  ::close(fd);
  Json j;
  j["latency_us"] = Summary(lat);
  j["statuses"] = statuses;
  j["reconnects"] = reconnects;
  j["client_cpu_us_per_call"] = lat.empty() ? 0.0 : cpu * 1e6 / static_cast<double>(lat.size());
  j["server_ms"] = ServerMs(duration, queued);
  j["timed_out"] = static_cast<int64_t>(lat.size()) < o.calls;
  return j;
}

struct Conn {
  int fd = -1;
  std::string buf;
  Clock::time_point t0{};
};

Json RunLoad(const Options& o) {
  const std::string body = ReadFile(o.body_file);
  const std::string req = BuildRequest(o, &body);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  std::vector<Conn> conns(static_cast<size_t>(o.connections));
  auto open = [&](size_t i) {
    Conn& c = conns[i];
    c.fd = Dial(o.port);
    c.buf.clear();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) Die("epoll_ctl");
  };
  auto drop = [&](size_t i) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, conns[i].fd, nullptr);
    ::close(conns[i].fd);
  };
  auto send = [&](size_t i) {
    conns[i].t0 = Clock::now();
    WriteAll(conns[i].fd, req);
  };
  for (size_t i = 0; i < conns.size(); ++i) {
    open(i);
    send(i);
  }
  auto secs = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const auto start = Clock::now();
  const auto measure_from = start + secs(o.warmup_seconds);
  const auto end = measure_from + secs(o.seconds);
  bool measuring = false;
  double cpu0 = 0;
  std::vector<double> lat;
  std::map<std::string, int64_t> statuses;
  int64_t reconnects = 0, broken = 0;
  std::vector<epoll_event> events(conns.size());
  for (;;) {
    auto now = Clock::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      cpu0 = CpuSeconds();
    }
    if (now >= end) break;
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die("epoll_wait");
    }
    for (int k = 0; k < n; ++k) {
      auto i = static_cast<size_t>(events[static_cast<size_t>(k)].data.u64);
      Conn& c = conns[i];
      if (!ReadSome(c.fd, c.buf)) {
        ++broken;
        drop(i);
        open(i);
        send(i);
        continue;
      }
      Answer a;
      if (!NextAnswer(c.buf, a)) continue;
      auto t1 = Clock::now();
      if (measuring) {
        lat.push_back(Micros(t1 - c.t0));
        ++statuses[std::to_string(a.status)];
      }
      if (a.close) {
        ++reconnects;
        drop(i);
        open(i);
      }
      send(i);
    }
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - measure_from).count();
  double cpu = CpuSeconds() - cpu0;
  for (size_t i = 0; i < conns.size(); ++i) ::close(conns[i].fd);
  ::close(ep);
  auto count = static_cast<double>(lat.size());
  Json j;
  j["requests"] = lat.size();
  j["seconds"] = elapsed;
  j["rps"] = count / elapsed;
  j["latency_us"] = Summary(lat);
  j["statuses"] = statuses;
  j["reconnects"] = reconnects;
  j["broken"] = broken;
  j["client_cpu_share"] = cpu / elapsed;
  j["client_cpu_us_per_call"] = lat.empty() ? 0.0 : cpu * 1e6 / count;
  return j;
}

// --- shim frames ----------------------------------------------------------------------------------

std::string Frame(int64_t id, std::string_view params) {
  std::string payload = "{\"type\":\"request\",\"id\":\"c" + std::to_string(id) +
                        "\",\"method\":\"predict\",\"params\":";
  payload += params;
  payload += "}";
  auto n = static_cast<uint32_t>(payload.size());
  std::string frame(4, '\0');
  frame[0] = static_cast<char>((n >> 24) & 0xff);
  frame[1] = static_cast<char>((n >> 16) & 0xff);
  frame[2] = static_cast<char>((n >> 8) & 0xff);
  frame[3] = static_cast<char>(n & 0xff);
  return frame + payload;
}

// Takes one frame's payload off the front of `buf`; false while incomplete.
bool NextFrame(std::string& buf, std::string& payload) {
  if (buf.size() < 4) return false;
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(buf[i])); };
  size_t n = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
  if (buf.size() < 4 + n) return false;
  payload.assign(buf, 4, n);
  buf.erase(0, 4 + n);
  return true;
}

Json RunFrames(const Options& o) {
  std::string params = ReadFile(o.body_file);
  while (!params.empty() && (params.back() == '\n' || params.back() == ' ')) params.pop_back();
  std::vector<std::string> frames;
  frames.reserve(static_cast<size_t>(o.warmup + o.calls));
  for (int64_t i = 0; i < o.warmup + o.calls; ++i) frames.push_back(Frame(i, params));
  std::string buf, payload;
  std::vector<double> lat;
  int64_t errors = 0;
  double cpu0 = 0;
  bool wrote_first = false;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.max_seconds));
  for (int64_t i = 0; i < o.warmup + o.calls; ++i) {
    if (i == o.warmup) cpu0 = CpuSeconds();
    auto t0 = Clock::now();
    WriteAll(o.fd, frames[static_cast<size_t>(i)]);
    for (;;) {
      while (!NextFrame(buf, payload)) {
        if (!ReadSome(o.fd, buf)) Fail("the worker closed the connection");
      }
      if (payload.rfind("{\"type\":\"reply\"", 0) == 0) break;  // a heartbeat: skipped
    }
    auto t1 = Clock::now();
    if (i >= o.warmup) {
      lat.push_back(Micros(t1 - t0));
      if (payload.find("\"result\":") == std::string::npos) ++errors;
      if (!wrote_first && !o.first_out.empty()) {
        WriteFile(o.first_out, payload);
        wrote_first = true;
      }
    }
    if (t1 > deadline) break;
  }
  double cpu = CpuSeconds() - cpu0;
  Json j;
  j["latency_us"] = Summary(lat);
  j["errors"] = errors;
  j["client_cpu_us_per_call"] = lat.empty() ? 0.0 : cpu * 1e6 / static_cast<double>(lat.size());
  j["timed_out"] = static_cast<int64_t>(lat.size()) < o.calls;
  return j;
}

void Usage() {
  std::fprintf(stderr,
               "usage: model_call_bench seq|load|frames [--port P] [--path PATH] [--token T]\n"
               "         [--body FILE] [--warmup W] [--calls N] [--connections C] [--seconds S]\n"
               "         [--warmup-seconds S] [--max-seconds S] [--fd N] [--first-out FILE]\n");
}

bool ParseArgs(int argc, char** argv, Options& o) {
  if (argc < 2) return false;
  o.mode = argv[1];
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) return false;
    std::string_view flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--port") o.port = std::atoi(value.c_str());
    else if (flag == "--path") o.path = value;
    else if (flag == "--token") o.token = value;
    else if (flag == "--body") o.body_file = value;
    else if (flag == "--warmup") o.warmup = std::atoll(value.c_str());
    else if (flag == "--calls") o.calls = std::atoll(value.c_str());
    else if (flag == "--connections") o.connections = std::atoi(value.c_str());
    else if (flag == "--seconds") o.seconds = std::atof(value.c_str());
    else if (flag == "--warmup-seconds") o.warmup_seconds = std::atof(value.c_str());
    else if (flag == "--max-seconds") o.max_seconds = std::atof(value.c_str());
    else if (flag == "--fd") o.fd = std::atoi(value.c_str());
    else if (flag == "--first-out") o.first_out = value;
    else return false;
  }
  if (o.mode == "frames") return o.fd >= 0 && !o.body_file.empty();
  if (o.port <= 0) return false;
  if (o.mode == "seq") return true;
  return o.mode == "load" && !o.body_file.empty() && o.connections > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) {
    Usage();
    return 2;
  }
  Json out;
  if (o.mode == "seq") out = RunSeq(o);
  else if (o.mode == "load") out = RunLoad(o);
  else out = RunFrames(o);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
