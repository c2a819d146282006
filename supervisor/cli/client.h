// HttpClient: a synchronous HTTP/1.1 client for the supervisor's REST API over the local admin
// Unix socket (no token) or TCP (bearer token), one connection per request, every step bounded
// by a deadline. Beast and Asio stay in client.cc. Not thread-safe: one call at a time; each
// call blocks the calling thread until the answer, an error or the deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "supervisor/cli/connection.h"

namespace gsk::cli {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};   // resolve and connect
  std::chrono::milliseconds request_timeout{30000};  // write the request and read the answer
  std::size_t max_response_bytes = 64 << 20;
  std::string user_agent = "giskard-supervisor-cli";
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
};

class HttpClient {
 public:
  explicit HttpClient(ConnectionTarget target, ClientOptions options = {});

  // Sends `method` `path` (e.g. "/api/v1/kernels"; the URL's base path is prepended) with a JSON
  // body when `body` is non-empty, and returns whatever HTTP status the daemon answered.
  // Errors: kUnavailable when the daemon cannot be reached (no socket file, connection refused,
  // permission denied, unknown host); kDeadlineExceeded when a step outlives its timeout;
  // kInternal when the answer is not valid HTTP or exceeds max_response_bytes. The messages
  // name the socket or URL.
  Result<HttpReply> Send(std::string_view method, std::string_view path,
                         std::string_view body = {}) const;

  const ConnectionTarget& target() const { return target_; }

 private:
  ConnectionTarget target_;
  ClientOptions options_;
};

// Percent-encodes one path segment (a kernel name) for a request target.
std::string EncodePathSegment(std::string_view segment);

}  // namespace gsk::cli
