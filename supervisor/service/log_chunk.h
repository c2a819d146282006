// LogChunk: a byte range of a log that a process may still be appending to (an env's build log,
// a worker's output), read the same way for every log the REST API serves. Thread-safe (no
// shared state).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace gsk::service {

struct LogChunk {
  std::string text;          // up to `limit` bytes from `offset`
  uint64_t next_offset = 0;  // where the next read starts
  uint64_t size = 0;         // the file's size now (0 if it does not exist yet)
  bool complete = false;     // set by the caller: no more bytes will come (a finished build)
};

// A missing file reads as empty; an offset past the end reads nothing (next_offset = size, so
// a caller sees that the file was truncated or rotated).
LogChunk ReadLogChunk(const std::filesystem::path& path, uint64_t offset, uint64_t limit);

}  // namespace gsk::service
