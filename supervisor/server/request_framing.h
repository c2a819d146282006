// Request framing checks: whether the length of a request is unambiguous. A request that a
// proxy in front could read with another length than ours (the shape of request smuggling) is
// refused before its body is read. Pure functions over plain values (no Beast types), tested
// and fuzzed without sockets; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace gsk::server {

struct FramingFields {
  unsigned version = 11;                       // 10 for HTTP/1.0, 11 for HTTP/1.1
  std::vector<std::string> transfer_encoding;  // the value of each Transfer-Encoding field
  std::vector<std::string> content_length;     // the value of each Content-Length field
};

// OK, or kInvalidArgument saying what is ambiguous: Transfer-Encoding other than exactly
// "chunked" (case aside), sent twice, sent in HTTP/1.0 or together with Content-Length; or a
// Content-Length sent twice or that is not a plain decimal number.
Status CheckFraming(const FramingFields& fields);

// The FramingFields of a Beast request header (any Fields type with `equal_range`).
template <typename Header>
FramingFields FramingOf(const Header& header);

}  // namespace gsk::server

#include "supervisor/server/request_framing_impl.h"
