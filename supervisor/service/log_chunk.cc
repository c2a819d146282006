#include "supervisor/service/log_chunk.h"

#include <algorithm>
#include <fstream>

namespace gsk::service {

LogChunk ReadLogChunk(const std::filesystem::path& path, uint64_t offset, uint64_t limit) {
  LogChunk chunk;
  chunk.next_offset = offset;
  std::ifstream in(path, std::ios::binary);
  if (!in) return chunk;
  in.seekg(0, std::ios::end);
  chunk.size = static_cast<uint64_t>(in.tellg());
  if (offset >= chunk.size) {
    chunk.next_offset = chunk.size;
    return chunk;
  }
  uint64_t n = std::min(limit, chunk.size - offset);
  chunk.text.resize(n);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(chunk.text.data(), static_cast<std::streamsize>(n));
  chunk.text.resize(static_cast<size_t>(in.gcount()));
  chunk.next_offset = offset + chunk.text.size();
  return chunk;
}

}  // namespace gsk::service
