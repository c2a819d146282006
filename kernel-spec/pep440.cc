#include "kernel-spec/pep440.h"

#include <array>

#include "kernel-spec/text.h"

namespace gsk::spec {
namespace {

using internal::IsAsciiAlnum;
using internal::IsAsciiDigit;
using internal::Scanner;

std::string StripLeadingZeros(std::string_view digits) {
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  return std::string(digits);
}

std::string TakeNumber(Scanner& s) { return StripLeadingZeros(s.TakeWhile(IsAsciiDigit)); }

bool IsSeparator(char c) { return c == '-' || c == '_' || c == '.'; }

void SkipSeparator(Scanner& s) {
  if (IsSeparator(s.Peek())) s.Advance();
}

// The first of `labels` that the text continues with ("alpha" is tried before "a").
template <std::size_t N>
std::string_view ConsumeLabel(Scanner& s, const std::array<std::string_view, N>& labels) {
  for (std::string_view label : labels) {
    if (s.Consume(label)) return label;
  }
  return {};
}

// "[-_.]?label[-_.]?N?": a number that is left out counts as 0.
bool ParseLabeledNumber(Scanner& s, std::string_view& label, std::string& number,
                        const auto& labels) {
  std::size_t start = s.pos();
  SkipSeparator(s);
  label = ConsumeLabel(s, labels);
  if (label.empty()) {
    s.Reset(start);
    return false;
  }
  SkipSeparator(s);
  number = IsAsciiDigit(s.Peek()) ? TakeNumber(s) : "0";
  return true;
}

void ParsePre(Scanner& s, Pep440Version& v) {
  static constexpr std::array<std::string_view, 8> kLabels = {"alpha", "beta", "preview", "pre",
                                                              "rc",    "a",    "b",       "c"};
  std::string_view label;
  if (!ParseLabeledNumber(s, label, v.pre_number, kLabels)) return;
  if (label == "alpha" || label == "a") {
    v.pre_label = "a";
  } else if (label == "beta" || label == "b") {
    v.pre_label = "b";
  } else {
    v.pre_label = "rc";
  }
}

void ParsePost(Scanner& s, Pep440Version& v) {
  static constexpr std::array<std::string_view, 3> kLabels = {"post", "rev", "r"};
  if (s.Peek() == '-' && IsAsciiDigit(s.Peek(1))) {  // "1.0-1" is an implicit post-release
    s.Advance();
    v.post = TakeNumber(s);
    return;
  }
  std::string_view label;
  std::string number;
  if (ParseLabeledNumber(s, label, number, kLabels)) v.post = number;
}

void ParseDev(Scanner& s, Pep440Version& v) {
  static constexpr std::array<std::string_view, 1> kLabels = {"dev"};
  std::string_view label;
  std::string number;
  if (ParseLabeledNumber(s, label, number, kLabels)) v.dev = number;
}

bool ParseLocal(Scanner& s, Pep440Version& v) {
  do {
    std::string_view part = s.TakeWhile(IsAsciiAlnum);
    if (part.empty()) return false;
    bool numeric = part.find_first_not_of("0123456789") == std::string_view::npos;
    v.local.push_back(numeric ? StripLeadingZeros(part) : std::string(part));
  } while (IsSeparator(s.Peek()) && (s.Advance(), true));
  return true;
}

int CompareNumbers(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

int CompareRelease(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    int c = CompareNumbers(i < a.size() ? a[i] : "0", i < b.size() ? b[i] : "0");
    if (c != 0) return c;
  }
  return 0;
}

int PreRank(const Pep440Version& v) {
  if (v.pre_label.empty()) return (!v.post && v.dev) ? -1 : 3;  // "1.0.dev0" < "1.0a0"
  return v.pre_label == "a" ? 0 : (v.pre_label == "b" ? 1 : 2);
}

// Missing parts sort first (-1) or last (+1) according to PEP 440.
int CompareOptional(const std::optional<std::string>& a, const std::optional<std::string>& b,
                    int missing) {
  if (a && b) return CompareNumbers(*a, *b);
  if (!a && !b) return 0;
  return a ? -missing : missing;
}

int CompareLocal(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  auto numeric = [](const std::string& s) {
    return IsAsciiDigit(s.front()) && s.find_first_not_of("0123456789") == std::string::npos;
  };
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    bool na = numeric(a[i]);
    bool nb = numeric(b[i]);
    if (na != nb) return na ? 1 : -1;  // numeric parts sort after alphanumeric ones
    int c = na ? CompareNumbers(a[i], b[i]) : a[i].compare(b[i]);
    if (c != 0) return c < 0 ? -1 : 1;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

}  // namespace

std::string Pep440Version::ToString() const {
  std::string out;
  if (epoch != "0") out += epoch + "!";
  for (std::size_t i = 0; i < release.size(); ++i) {
    if (i > 0) out += '.';
    out += release[i];
  }
  if (!pre_label.empty()) out += pre_label + pre_number;
  if (post) out += ".post" + *post;
  if (dev) out += ".dev" + *dev;
  for (std::size_t i = 0; i < local.size(); ++i) out += (i == 0 ? "+" : ".") + local[i];
  return out;
}

bool Pep440Version::HasOnlyRelease() const {
  return pre_label.empty() && !post && !dev && local.empty();
}

std::optional<Pep440Version> ParseVersion(std::string_view text) {
  std::string lower = internal::ToLower(text);
  Scanner s(lower);
  Pep440Version v;
  s.Consume('v');
  std::string number = TakeNumber(s);
  if (number.empty()) return std::nullopt;
  if (s.Consume('!')) {
    v.epoch = number;
    number = TakeNumber(s);
    if (number.empty()) return std::nullopt;
  }
  v.release.push_back(number);
  while (s.Peek() == '.' && IsAsciiDigit(s.Peek(1))) {
    s.Advance();
    v.release.push_back(TakeNumber(s));
  }
  ParsePre(s, v);
  ParsePost(s, v);
  ParseDev(s, v);
  if (s.Consume('+') && !ParseLocal(s, v)) return std::nullopt;
  if (!s.AtEnd()) return std::nullopt;
  return v;
}

int CompareVersions(const Pep440Version& a, const Pep440Version& b) {
  if (int c = CompareNumbers(a.epoch, b.epoch); c != 0) return c;
  if (int c = CompareRelease(a.release, b.release); c != 0) return c;
  int rank_a = PreRank(a);
  int rank_b = PreRank(b);
  if (rank_a != rank_b) return rank_a < rank_b ? -1 : 1;
  if (rank_a >= 0 && rank_a <= 2) {
    if (int c = CompareNumbers(a.pre_number, b.pre_number); c != 0) return c;
  }
  if (int c = CompareOptional(a.post, b.post, -1); c != 0) return c;
  if (int c = CompareOptional(a.dev, b.dev, 1); c != 0) return c;
  return CompareLocal(a.local, b.local);
}

bool MatchesPin(const Pep440Version& pinned, const Pep440Version& version) {
  if (!pinned.local.empty()) return CompareVersions(pinned, version) == 0;
  Pep440Version public_part = version;
  public_part.local.clear();
  return CompareVersions(pinned, public_part) == 0;
}

}  // namespace gsk::spec
