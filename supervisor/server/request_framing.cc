#include "supervisor/server/request_framing.h"

#include <algorithm>
#include <cctype>

namespace gsk::server {
namespace {

std::string Trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

bool EqualsChunked(const std::string& value) {
  std::string v = Trim(value);
  return v.size() == 7 && std::equal(v.begin(), v.end(), "chunked", [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

std::string Quoted(const std::string& s) { return "\"" + s.substr(0, 64) + "\""; }

}  // namespace

Status CheckFraming(const FramingFields& f) {
  if (f.content_length.size() > 1) {
    return InvalidArgument("Content-Length appears " + std::to_string(f.content_length.size()) +
                           " times; send it once");
  }
  for (const std::string& cl : f.content_length) {
    bool digits = !cl.empty() && cl.size() <= 19 &&
                  std::all_of(cl.begin(), cl.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return InvalidArgument("Content-Length " + Quoted(cl) + " is not a number");
  }
  if (f.transfer_encoding.empty()) return Status::Ok();
  if (f.version < 11) {
    return InvalidArgument("Transfer-Encoding is not allowed in HTTP/1.0; send Content-Length");
  }
  if (f.transfer_encoding.size() > 1) {
    return InvalidArgument("Transfer-Encoding appears " +
                           std::to_string(f.transfer_encoding.size()) +
                           " times; send it once, as \"chunked\"");
  }
  if (!EqualsChunked(f.transfer_encoding[0])) {
    return InvalidArgument("Transfer-Encoding " + Quoted(f.transfer_encoding[0]) +
                           " is not supported; only \"chunked\" is");
  }
  if (!f.content_length.empty()) {
    return InvalidArgument("the request has both Transfer-Encoding and Content-Length; send one");
  }
  return Status::Ok();
}

}  // namespace gsk::server
