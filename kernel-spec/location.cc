// Classification of requirement lines that are not name-based: URLs and local paths.
#include <algorithm>

#include "kernel-spec/parse_internal.h"

namespace gsk::spec::internal {

// "https://", "git+ssh://", ... (the scheme of a URL at the start of the text).
bool StartsWithUrlScheme(std::string_view text) {
  if (text.empty() || !IsAsciiAlpha(text.front())) return false;
  std::size_t i = 1;
  while (i < text.size() &&
         (IsAsciiAlnum(text[i]) || text[i] == '+' || text[i] == '.' || text[i] == '-')) {
    ++i;
  }
  return text.substr(i).starts_with("://");
}

bool IsFileUrl(std::string_view text) { return ToLower(text.substr(0, 5)) == "file:"; }

bool LooksLikeLocalPath(std::string_view text) {
  if (IsFileUrl(text) || text == "." || text == "..") return true;
  for (std::string_view prefix : {"./", "../", ".\\", "..\\", "/", "\\"}) {
    if (text.starts_with(prefix)) return true;
  }
  if (text.front() == '~' && (text.size() == 1 || text[1] != '=')) return true;
  if (text.size() >= 3 && IsAsciiAlpha(text[0]) && text[1] == ':' &&
      (text[2] == '\\' || text[2] == '/')) {
    return true;  // "C:\wheels\x.whl"
  }
  if (StartsWithUrlScheme(text)) return false;
  std::string first = ToLower(text.substr(0, text.find_first_of(" \t;@[<>=!~(")));
  if (first.find_first_of("/\\") != std::string::npos) return true;  // "dist/x.whl"
  for (std::string_view suffix : {".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"}) {
    if (first.ends_with(suffix)) return true;  // an archive file name is a path for pip
  }
  return false;
}

bool IsValidUrl(std::string_view url) {
  if (!StartsWithUrlScheme(url) && !(IsFileUrl(url) && url.size() > 5)) return false;
  static constexpr std::string_view kAllowed = "-._~:/?#[]@!$&'()*+,;=%";
  return std::all_of(url.begin(), url.end(), [](char c) {
    return IsAsciiAlnum(c) || kAllowed.find(c) != std::string_view::npos;
  });
}

}  // namespace gsk::spec::internal
