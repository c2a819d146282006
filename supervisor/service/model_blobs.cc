#include "supervisor/service/model_blobs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "base/crypto.h"

namespace gsk::service {
namespace fs = std::filesystem;
namespace {

constexpr size_t kBlock = 512;

// What a fingerprint records of a file: its size and modification time (to the nanosecond).
std::string Stamp(const struct stat& st) {
  return std::to_string(st.st_size) + "@" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

std::string Stamp(const fs::path& p, std::error_code& ec) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    ec.assign(errno, std::generic_category());
    return "";
  }
  return Stamp(st);
}

// Writes `value` as octal, NUL-terminated, into `field` of `width` bytes.
bool Octal(char* field, size_t width, uint64_t value) {
  std::string text(width - 1, '0');
  for (size_t i = width - 1; i-- > 0;) {
    text[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  if (value != 0) return false;
  std::memcpy(field, text.data(), width - 1);
  field[width - 1] = '\0';
  return true;
}

// A ustar header for `name` ("dir/" for a folder). False when the name does not fit.
bool Header(const std::string& name, bool folder, uint64_t size, bool executable,
            std::array<char, kBlock>& block) {
  block.fill('\0');
  std::string prefix;
  std::string rest = name;
  if (rest.size() > 100) {  // split at a '/': prefix up to 155 bytes, name up to 100
    size_t cut = std::string::npos;
    for (size_t i = 0; i < rest.size() && i <= 155; ++i) {
      if (rest[i] == '/' && rest.size() - i - 1 <= 100 && i + 1 < rest.size()) {
        cut = i;
        break;
      }
    }
    if (cut == std::string::npos) return false;
    prefix = rest.substr(0, cut);
    rest = rest.substr(cut + 1);
  }
  std::memcpy(block.data(), rest.data(), rest.size());
  Octal(block.data() + 100, 8, folder ? 0755 : (executable ? 0755 : 0644));
  Octal(block.data() + 108, 8, 0);
  Octal(block.data() + 116, 8, 0);
  if (!Octal(block.data() + 124, 12, folder ? 0 : size)) return false;
  Octal(block.data() + 136, 12, 0);
  block[156] = folder ? '5' : '0';
  std::memcpy(block.data() + 257, "ustar", 6);
  std::memcpy(block.data() + 263, "00", 2);
  std::memcpy(block.data() + 345, prefix.data(), prefix.size());
  std::memset(block.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : block) sum += static_cast<unsigned char>(c);
  Octal(block.data() + 148, 7, sum);
  block[155] = ' ';
  return true;
}

struct Item {
  std::string relative;  // "dir/" for a folder
  fs::path path;
  bool folder = false;
  struct stat st {};  // lstat(2) of the entry, taken while listing
};

// The folder's entries, sorted, each with one lstat(2). Relative paths are the entries' paths
// with the folder's prefix cut: the iterator builds them as `folder / name`, so no
// fs::relative (a readlink per component of every entry) is needed.
Result<std::vector<Item>> ListFolder(const fs::path& folder) {
  std::vector<Item> items;
  std::string prefix = folder.native();
  if (prefix.empty() || prefix.back() != '/') prefix += '/';
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    Item item;
    item.path = it->path();
    const std::string& full = item.path.native();
    if (full.compare(0, prefix.size(), prefix) != 0) {  // cannot happen: see above
      return Internal("model folder " + folder.string() + " listed " + full + " outside it");
    }
    item.relative = full.substr(prefix.size());
    if (::lstat(full.c_str(), &item.st) != 0) {
      return Unavailable("cannot read " + full + ": " + std::strerror(errno));
    }
    if (S_ISDIR(item.st.st_mode)) {
      item.folder = true;
      item.relative += '/';
    } else if (!S_ISREG(item.st.st_mode)) {
      return InvalidArgument("model folder " + folder.string() + " holds " + item.relative +
                             ", which is neither a file nor a folder (a link?); a model sent to "
                             "an unmanaged worker may hold only files and folders");
    }
    items.push_back(std::move(item));
  }
  if (ec) return Unavailable("cannot read model folder " + folder.string() + ": " + ec.message());
  std::sort(items.begin(), items.end(),
            [](const Item& x, const Item& y) { return x.relative < y.relative; });
  return items;
}

// Packs `items` (of the folder `path`) into `cache_dir`/SHA256.tar, named by its hash.
Result<BlobRef> WriteTar(const fs::path& path, const std::vector<Item>& items,
                         const fs::path& cache_dir) {
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) return Unavailable("cannot create " + cache_dir.string() + ": " + ec.message());
  fs::path temp = cache_dir / ("packing-" + std::to_string(::getpid()) + ".tar");
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out) return Unavailable("cannot write " + temp.string());
  Sha256Stream hash;
  uint64_t size = 0;
  auto emit = [&](const char* data, size_t n) {
    out.write(data, static_cast<std::streamsize>(n));
    hash.Update(std::string_view(data, n));
    size += n;
  };
  std::array<char, kBlock> block{};
  std::vector<char> buffer(1 << 20);
  for (const Item& item : items) {
    uint64_t file_size = item.folder ? 0 : static_cast<uint64_t>(item.st.st_size);
    bool executable = (item.st.st_mode & S_IXUSR) != 0;
    if (!Header(item.relative, item.folder, file_size, executable, block)) {
      fs::remove(temp, ec);
      return InvalidArgument("model folder " + path.string() + " holds " + item.relative +
                             ", whose path is too long for a tar archive (256 bytes)");
    }
    emit(block.data(), block.size());
    if (item.folder) continue;
    std::ifstream in(item.path, std::ios::binary);
    uint64_t left = file_size;
    while (in && left > 0) {
      in.read(buffer.data(), static_cast<std::streamsize>(std::min<uint64_t>(buffer.size(), left)));
      auto n = static_cast<size_t>(in.gcount());
      if (n == 0) break;
      emit(buffer.data(), n);
      left -= n;
    }
    if (left != 0) {
      fs::remove(temp, ec);
      return Unavailable("model file " + item.path.string() + " changed while it was packed; retry");
    }
    block.fill('\0');
    if (size_t pad = (kBlock - file_size % kBlock) % kBlock; pad != 0) emit(block.data(), pad);
  }
  block.fill('\0');
  emit(block.data(), block.size());  // the end: two zero blocks
  emit(block.data(), block.size());
  out.close();
  if (!out) {
    fs::remove(temp, ec);
    return Unavailable("cannot write " + temp.string() + " (disk full?)");
  }
  BlobRef ref{HexEncode(hash.Finish()), "tar", path.filename().string(), size};
  fs::path packed = cache_dir / (ref.sha256 + ".tar");
  fs::rename(temp, packed, ec);
  if (ec) return Unavailable("cannot write " + packed.string() + ": " + ec.message());
  return ref;
}

std::string Fingerprint(const std::vector<Item>& items) {
  std::string out = "dir:";
  for (const Item& item : items) {
    out += item.relative + "\n";
    if (!item.folder) out += Stamp(item.st) + "\n";
  }
  return out;
}

}  // namespace

Result<std::string> FolderFingerprint(const fs::path& folder) {
  GSK_ASSIGN_OR_RETURN(std::vector<Item> items, ListFolder(folder));
  return Fingerprint(items);
}

Result<BlobRef> ModelBlobs::Describe(const fs::path& resolved) {
  struct stat st {};
  if (::stat(resolved.c_str(), &st) != 0) {
    return Unavailable("cannot read model " + resolved.string() + ": " + std::strerror(errno));
  }
  auto known = by_path_.find(resolved.string());
  if (S_ISDIR(st.st_mode)) {
    GSK_ASSIGN_OR_RETURN(std::vector<Item> items, ListFolder(resolved));
    std::string fingerprint = Fingerprint(items);
    // Reused while the folder is unchanged and its packed archive still there (the cache
    // directory may have been cleaned).
    std::error_code ec;
    if (known != by_path_.end() && known->second.fingerprint == fingerprint &&
        fs::exists(known->second.source, ec)) {
      return known->second.ref;
    }
    GSK_ASSIGN_OR_RETURN(BlobRef ref, WriteTar(resolved, items, cache_dir_));
    return RememberPacked(resolved, std::move(fingerprint), std::move(ref));
  }
  if (!S_ISREG(st.st_mode)) {
    return Unavailable("cannot read model " + resolved.string() +
                       ": neither a regular file nor a folder");
  }
  // A file is its own source: the stat above found it, no other check is needed.
  std::string fingerprint = "file:" + Stamp(st);
  if (known != by_path_.end() && known->second.fingerprint == fingerprint) {
    return known->second.ref;
  }
  return DescribeFile(resolved, std::move(fingerprint));
}

Result<BlobRef> ModelBlobs::DescribeFile(const fs::path& path, std::string fingerprint) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unavailable("cannot open model " + path.string());
  Sha256Stream hash;
  std::vector<char> buffer(1 << 20);
  uint64_t size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    auto n = static_cast<size_t>(in.gcount());
    hash.Update(std::string_view(buffer.data(), n));
    size += n;
  }
  if (in.bad()) return Unavailable("cannot read model " + path.string());
  BlobRef ref{HexEncode(hash.Finish()), "file", path.filename().string(), size};
  by_path_[path.string()] = {std::move(fingerprint), ref, path, path};
  by_hash_[ref.sha256] = path.string();
  return ref;
}

BlobRef ModelBlobs::RememberPacked(const fs::path& path, std::string fingerprint, BlobRef ref) {
  // The folder's previous blob is no longer named by any call.
  if (auto old = by_path_.find(path.string());
      old != by_path_.end() && old->second.ref.sha256 != ref.sha256) {
    by_hash_.erase(old->second.ref.sha256);
    std::error_code ec;
    if (old->second.source != old->second.model) fs::remove(old->second.source, ec);
  }
  fs::path packed = cache_dir_ / (ref.sha256 + ".tar");
  by_path_[path.string()] = {std::move(fingerprint), ref, std::move(packed), path};
  by_hash_[ref.sha256] = path.string();
  return ref;
}

Result<fs::path> ModelBlobs::Find(std::string_view sha256) const {
  auto h = by_hash_.find(sha256);
  if (h == by_hash_.end()) {
    return NotFound("no model blob " + std::string(sha256) + " was named by a call of this "
                    "supervisor");
  }
  const Entry& entry = by_path_.at(h->second);
  if (entry.ref.format == "file") {
    std::error_code ec;
    if ("file:" + Stamp(entry.source, ec) != entry.fingerprint || ec) {
      return NotFound("model " + entry.source.string() + " changed since blob " +
                      std::string(sha256) + " was named; the next call names the new one");
    }
  }
  return entry.source;
}

}  // namespace gsk::service
