// Internal to request_framing.h: FramingOf, a template over Beast's header type so that
// request_framing.h itself includes no Beast header.
#pragma once

#include <string>

namespace gsk::server {

template <typename Header>
FramingFields FramingOf(const Header& header) {
  FramingFields f;
  f.version = header.version();
  auto te = header.equal_range("Transfer-Encoding");
  for (auto it = te.first; it != te.second; ++it) f.transfer_encoding.emplace_back(it->value());
  auto cl = header.equal_range("Content-Length");
  for (auto it = cl.first; it != cl.second; ++it) f.content_length.emplace_back(it->value());
  return f;
}

}  // namespace gsk::server
