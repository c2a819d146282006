// ModelBlobs: the bytes of models that unmanaged workers load, named by their SHA-256. A worker
// on another machine cannot open a path of the supervisor's host: the call tells it the model's
// blob, and the worker fetches it once (GET /api/v1/model-blobs/{sha256}, with its key) and
// caches it by hash. A model file is its own blob; a model folder is packed into an
// uncompressed POSIX tar (sorted entries, zero times and owners: the same folder always gives
// the same bytes) kept under the cache directory. Only blobs described by this process can be
// fetched, so a key reaches no file that no call named. Described blobs are remembered by path,
// size and modification time (every file's, for a folder), so a model is hashed once while it
// does not change. Hashing runs on the caller's thread: a large model's first call pays it.
// Not thread-safe: the core thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace gsk::service {

struct BlobRef {
  std::string sha256;  // of the bytes served
  std::string format;  // "file" or "tar"
  std::string name;    // the model path's last component
  uint64_t size = 0;
};

class ModelBlobs {
 public:
  // Folders are packed under `cache_dir` (created when needed).
  explicit ModelBlobs(std::filesystem::path cache_dir) : cache_dir_(std::move(cache_dir)) {}

  // The blob of the model at `resolved` (an existing file or folder, symlinks resolved, checked
  // to lie under the model roots by the caller). kInvalidArgument for a folder holding anything
  // but files and folders, or names too long for tar; kUnavailable when it cannot be read or
  // packed. Costs one stat(2) for a file, and one lstat(2) per entry for a folder, while the
  // model is unchanged.
  Result<BlobRef> Describe(const std::filesystem::path& resolved);
  // The file holding blob `sha256` and its size. kNotFound when no call described it, or its
  // model changed since (then the worker's call fails and the next call describes it anew).
  Result<std::filesystem::path> Find(std::string_view sha256) const;

 private:
  struct Entry {
    std::string fingerprint;  // what the model looked like when described
    BlobRef ref;
    std::filesystem::path source;  // the model file, or the packed tar
    std::filesystem::path model;
  };
  Result<BlobRef> DescribeFile(const std::filesystem::path& path, std::string fingerprint);
  // Records the folder `path`'s freshly packed archive, dropping its previous one.
  BlobRef RememberPacked(const std::filesystem::path& path, std::string fingerprint, BlobRef ref);

  std::filesystem::path cache_dir_;
  std::map<std::string, Entry> by_path_;              // model path -> its blob
  std::map<std::string, std::string, std::less<>> by_hash_;  // sha256 -> model path
};

// The folder's fingerprint: every entry's relative path, kind, size and modification time (to
// the nanosecond), in order. kInvalidArgument when it holds other kinds of files than files and
// folders; kUnavailable when it cannot be read.
Result<std::string> FolderFingerprint(const std::filesystem::path& folder);

}  // namespace gsk::service
