// kernel_registry_bench: a load generator for the supervisor's kernel registry REST API.
// Boost.Beast synchronous client, one keep-alive connection per thread; prints one JSON line
// with the request rate and latency percentiles. Not a test: run by run_registry_bench.sh.
//
//   kernel_registry_bench --port P [--host H] [--token T] --op create|list|show|health
//       [--requests N] [--max-seconds S] [--connections C] [--warmup W]
//       [--prefix bench-] [--start N] [--name NAME] [--doc FILE] [--label TEXT]
//
// create posts --doc's JSON document (default: the Giskard Hub's example kernel) under the
// names PREFIX000000, PREFIX000001, ...; show gets --name; list gets all kernels.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string token;
  std::string op = "show";
  int64_t requests = 10000;
  double max_seconds = 10;
  int connections = 1;
  int64_t warmup = 100;
  std::string prefix = "bench-";
  int64_t start = 0;
  std::string name = "bench-000000";
  std::string doc_file;
  std::string label;
  nlohmann::json doc;  // the create template, loaded from doc_file or the Hub's example
};

struct ThreadResult {
  std::vector<double> latencies_us;
  int64_t errors = 0;
  int64_t reconnects = 0;
  int64_t bytes = 0;
  std::string first_error;
  Clock::time_point begin{}, finish{};  // the measured part, after the warm-up
};

void Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --port P [--host H] [--token T] --op create|list|show|health\n"
               "          [--requests N] [--max-seconds S] [--connections C] [--warmup W]\n"
               "          [--prefix P] [--start N] [--name NAME] [--doc FILE] [--label TEXT]\n",
               argv0);
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) return false;
    std::string value = argv[++i];
    if (flag == "--host") o.host = value;
    else if (flag == "--port") o.port = value;
    else if (flag == "--token") o.token = value;
    else if (flag == "--op") o.op = value;
    else if (flag == "--requests") o.requests = std::stoll(value);
    else if (flag == "--max-seconds") o.max_seconds = std::stod(value);
    else if (flag == "--connections") o.connections = std::stoi(value);
    else if (flag == "--warmup") o.warmup = std::stoll(value);
    else if (flag == "--prefix") o.prefix = value;
    else if (flag == "--start") o.start = std::stoll(value);
    else if (flag == "--name") o.name = value;
    else if (flag == "--doc") o.doc_file = value;
    else if (flag == "--label") o.label = value;
    else return false;
  }
  bool op_ok = o.op == "create" || o.op == "list" || o.op == "show" || o.op == "health";
  return !o.port.empty() && op_ok && o.requests > 0 && o.connections > 0 && o.max_seconds > 0;
}

std::string KernelName(const Options& o, int64_t index) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(index));
  return o.prefix + digits;
}

// The create template: --doc FILE, else the Giskard Hub's example document.
nlohmann::json LoadDocument(const std::string& path) {
  if (path.empty()) {
    return {{"pythonVersion", "3.11"},
            {"requestedDependencies", {"giskard[llm]>=2.14", "scikit-learn==1.3.2"}},
            {"frozenDependencies", "joblib==1.3.2\nnumpy==1.26.4\nscikit-learn==1.3.2"},
            {"type", "PROCESS"},
            {"version", "2.14.0"},
            {"workers", 0}};  // the registry, not worker processes
  }
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read --doc " + path);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str());
  if (!doc.is_object()) throw std::runtime_error("--doc " + path + " is not a JSON object");
  return doc;
}

// The template with a distinct name per request.
std::string CreateBody(const Options& o, const std::string& name) {
  nlohmann::json doc = o.doc;
  doc["name"] = name;
  return doc.dump();
}

http::request<http::string_body> MakeRequest(const Options& o, int64_t index) {
  http::request<http::string_body> req;
  req.version(11);
  req.set(http::field::host, o.host);
  if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
  if (o.op == "create") {
    req.method(http::verb::post);
    req.target("/api/v1/kernels");
    req.set(http::field::content_type, "application/json");
    req.body() = CreateBody(o, KernelName(o, index));
  } else {
    req.method(http::verb::get);
    if (o.op == "list") req.target("/api/v1/kernels");
    if (o.op == "show") req.target("/api/v1/kernels/" + o.name);
    if (o.op == "health") req.target("/healthz");
  }
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

class Connection {
 public:
  explicit Connection(const Options& o) : options_(o), socket_(io_) {}

  // One exchange on the kept-alive connection (reconnecting once if the server closed it).
  // Returns the HTTP status, or 0 on a transport error (message in `error`).
  int Exchange(http::request<http::string_body>& req, ThreadResult& r) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      beast::error_code ec;
      if (!socket_.is_open()) {
        if (connected_once_) ++r.reconnects;
        connected_once_ = true;
        Connect(ec);
      }
      if (!ec) http::write(socket_, req, ec);
      http::response<http::string_body> res;
      if (!ec) http::read(socket_, buffer_, res, ec);
      if (ec) {
        socket_.close(ec);
        buffer_.clear();
        if (r.first_error.empty()) r.first_error = ec.message();
        continue;
      }
      r.bytes += static_cast<int64_t>(res.body().size());
      if (!res.keep_alive()) socket_.close(ec);
      return static_cast<int>(res.result_int());
    }
    return 0;
  }

 private:
  void Connect(beast::error_code& ec) {
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(options_.host, options_.port, ec);
    if (ec) return;
    asio::connect(socket_, endpoints, ec);
    if (!ec) socket_.set_option(tcp::no_delay(true), ec);
  }

  const Options& options_;
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  bool connected_once_ = false;
};

bool StatusOk(const Options& o, int status) {
  if (o.op == "create") return status == 201 || status == 200;
  return status == 200;
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

void RunThread(const Options& o, std::atomic<int64_t>& next, int64_t end, ThreadResult& r) {
  Connection conn(o);
  // Warm-up exchanges (not measured, at most one second) open the connection and fill caches.
  auto warmup_end = Clock::now() + Seconds(1);
  for (int64_t i = 0; i < o.warmup && o.op != "create" && Clock::now() < warmup_end; ++i) {
    auto req = MakeRequest(o, 0);
    conn.Exchange(req, r);
  }
  r.reconnects = 0;
  r.bytes = 0;
  r.latencies_us.reserve(static_cast<size_t>(std::min<int64_t>(end, 1'000'000)));
  r.begin = Clock::now();
  auto stop = r.begin + Seconds(o.max_seconds);
  while (Clock::now() < stop) {
    int64_t index = next.fetch_add(1);
    if (index >= end) break;
    auto req = MakeRequest(o, index);
    auto t0 = Clock::now();
    int status = conn.Exchange(req, r);
    auto t1 = Clock::now();
    if (!StatusOk(o, status)) {
      ++r.errors;
      if (r.first_error.empty()) r.first_error = "HTTP " + std::to_string(status);
      continue;
    }
    r.latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  r.finish = Clock::now();
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

nlohmann::json Summarize(const Options& o, std::vector<ThreadResult>& results) {
  std::vector<double> all;
  Clock::time_point begin = results.front().begin, finish = results.front().finish;
  int64_t errors = 0, reconnects = 0, bytes = 0;
  std::string first_error;
  for (auto& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    errors += r.errors;
    reconnects += r.reconnects;
    bytes += r.bytes;
    if (first_error.empty()) first_error = r.first_error;
    begin = std::min(begin, r.begin);
    finish = std::max(finish, r.finish);
  }
  double seconds = std::chrono::duration<double>(finish - begin).count();
  std::sort(all.begin(), all.end());
  double ok = static_cast<double>(all.size());
  return {{"label", o.label},       {"op", o.op},
          {"connections", o.connections},
          {"requests", all.size()}, {"errors", errors},
          {"reconnects", reconnects},
          {"seconds", seconds},     {"rps", seconds > 0 ? ok / seconds : 0.0},
          {"p50_us", Percentile(all, 50)}, {"p90_us", Percentile(all, 90)},
          {"p99_us", Percentile(all, 99)}, {"max_us", all.empty() ? 0.0 : all.back()},
          {"bytes_per_response", ok > 0 ? static_cast<double>(bytes) / ok : 0.0},
          {"first_error", first_error}};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    if (!ParseArgs(argc, argv, o)) {
      Usage(argv[0]);
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bad argument: %s\n", e.what());
    Usage(argv[0]);
    return 2;
  }
  try {
    o.doc = LoadDocument(o.doc_file);
    std::atomic<int64_t> next{o.start};
    int64_t end = o.start + o.requests;
    std::vector<ThreadResult> results(static_cast<size_t>(o.connections));
    std::vector<std::thread> threads;
    for (auto& r : results) {
      threads.emplace_back([&o, &next, end, &r] { RunThread(o, next, end, r); });
    }
    for (auto& t : threads) t.join();
    std::cout << Summarize(o, results).dump() << std::endl;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_registry_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
