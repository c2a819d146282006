// One-time worker tokens: random, given to a worker in its environment at launch, kept by the
// supervisor only as a SHA-256 digest. Thread-safe.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace gsk::workers {

using TokenDigest = std::array<unsigned char, 32>;

// 32 random bytes from the OS CSPRNG, as 64 lowercase hex characters. kInternal if none.
Result<std::string> NewToken();
// 8 random lowercase hex characters, for worker ids.
Result<std::string> RandomSuffix();
TokenDigest DigestOf(std::string_view token);
std::string Hex(const TokenDigest& digest);
// The digest of 64 hex characters (as Hex writes them); nullopt for anything else.
std::optional<TokenDigest> DigestFromHex(std::string_view hex);
// Compares digests in constant time.
bool DigestsEqual(const TokenDigest& a, const TokenDigest& b);

}  // namespace gsk::workers
