// Crypto: SHA-256 digests, hex text, random tokens and constant-time comparison. The project's
// only wrapper of OpenSSL; every other component uses these. Stateless and thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace gsk {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest Sha256(std::string_view data);
// Lowercase hex of the SHA-256 of `data` (64 characters).
std::string Sha256Hex(std::string_view data);

// SHA-256 of data given in pieces (files, archives being written). Not copyable.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::string_view data);
  // The digest of everything given; the stream is then spent.
  Sha256Digest Finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// Lowercase hex of `size` bytes.
std::string HexEncode(const unsigned char* data, size_t size);
inline std::string HexEncode(const Sha256Digest& digest) {
  return HexEncode(digest.data(), digest.size());
}
// The digest written as 64 lowercase hex characters (as HexEncode writes it); nullopt otherwise.
std::optional<Sha256Digest> DigestFromHex(std::string_view hex);

// Compares in constant time.
bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b);
// Whether `given` equals `expected`, in a time that depends on neither (both are hashed first).
// An empty `expected` never matches.
bool SecretsEqual(std::string_view given, std::string_view expected);

// `bytes` random bytes from the OS CSPRNG, as 2 * bytes lowercase hex characters. kInternal if
// the generator fails.
Result<std::string> RandomHex(size_t bytes);

}  // namespace gsk
