#include "supervisor/service/model_blobs.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "base/crypto.h"

namespace gsk::service {
namespace fs = std::filesystem;
namespace {

constexpr size_t kBlock = 512;

std::string Stamp(const fs::path& p, std::error_code& ec) {
  auto size = fs::file_size(p, ec);
  if (ec) return "";
  auto time = fs::last_write_time(p, ec);
  if (ec) return "";
  return std::to_string(size) + "@" + std::to_string(time.time_since_epoch().count());
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
  std::string relative;
  fs::path path;
  bool folder = false;
};

Result<std::vector<Item>> ListFolder(const fs::path& folder) {
  std::vector<Item> items;
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    std::string rel = fs::relative(it->path(), folder, ec).generic_string();
    if (ec) break;
    if (fs::is_directory(st)) {
      items.push_back({rel + "/", it->path(), true});
    } else if (fs::is_regular_file(st)) {
      items.push_back({rel, it->path(), false});
    } else {
      return InvalidArgument("model folder " + folder.string() + " holds " + rel +
                             ", which is neither a file nor a folder (a link?); a model sent to "
                             "an unmanaged worker may hold only files and folders");
    }
  }
  if (ec) return Unavailable("cannot read model folder " + folder.string() + ": " + ec.message());
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.relative < b.relative; });
  return items;
}

}  // namespace

std::string FolderFingerprint(const fs::path& folder, std::string* error) {
  Result<std::vector<Item>> items = ListFolder(folder);
  if (!items.ok()) {
    *error = items.status().message();
    return "";
  }
  std::string out = "dir:";
  for (const Item& item : *items) {
    std::error_code ec;
    out += item.relative + "\n";
    if (!item.folder) out += Stamp(item.path, ec) + "\n";
    if (ec) {
      *error = "cannot read " + item.path.string() + ": " + ec.message();
      return "";
    }
  }
  return out;
}

Result<BlobRef> ModelBlobs::Describe(const fs::path& resolved) {
  std::error_code ec;
  bool folder = fs::is_directory(resolved, ec);
  std::string fingerprint;
  if (folder) {
    std::string error;
    fingerprint = FolderFingerprint(resolved, &error);
    if (fingerprint.empty()) {
      return error.find("neither") != std::string::npos ? InvalidArgument(error) : Unavailable(error);
    }
  } else {
    fingerprint = "file:" + Stamp(resolved, ec);
    if (ec) return Unavailable("cannot read model " + resolved.string() + ": " + ec.message());
  }
  auto it = by_path_.find(resolved.string());
  // Reused while the model is unchanged and its packed archive still there (the cache
  // directory may have been cleaned).
  if (it != by_path_.end() && it->second.fingerprint == fingerprint &&
      fs::exists(it->second.source, ec)) {
    return it->second.ref;
  }
  return folder ? PackFolder(resolved, std::move(fingerprint))
                : DescribeFile(resolved, std::move(fingerprint));
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

Result<BlobRef> ModelBlobs::PackFolder(const fs::path& path, std::string fingerprint) {
  GSK_ASSIGN_OR_RETURN(std::vector<Item> items, ListFolder(path));
  std::error_code ec;
  fs::create_directories(cache_dir_, ec);
  if (ec) return Unavailable("cannot create " + cache_dir_.string() + ": " + ec.message());
  fs::path temp = cache_dir_ / ("packing-" + std::to_string(::getpid()) + ".tar");
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
    uint64_t file_size = item.folder ? 0 : fs::file_size(item.path, ec);
    if (ec) return Unavailable("cannot read " + item.path.string() + ": " + ec.message());
    fs::perms perms = fs::status(item.path, ec).permissions();
    bool executable = (perms & fs::perms::owner_exec) != fs::perms::none;
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
  fs::path packed = cache_dir_ / (ref.sha256 + ".tar");
  fs::rename(temp, packed, ec);
  if (ec) return Unavailable("cannot write " + packed.string() + ": " + ec.message());
  // The folder's previous blob is no longer named by any call.
  if (auto old = by_path_.find(path.string()); old != by_path_.end() && old->second.ref.sha256 != ref.sha256) {
    by_hash_.erase(old->second.ref.sha256);
    if (old->second.source != old->second.model) fs::remove(old->second.source, ec);
  }
  by_path_[path.string()] = {std::move(fingerprint), ref, packed, path};
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
