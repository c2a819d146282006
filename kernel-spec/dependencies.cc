// requestedDependencies and frozenDependencies: splitting (array or "\n"-joined string),
// per-line parsing, duplicates within a list, and requested pins against frozen pins.
#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "kernel-spec/kernel_internal.h"
#include "kernel-spec/pep440.h"
#include "kernel-spec/text.h"

namespace gsk::spec::internal {
namespace {

constexpr std::string_view kRequested = "requestedDependencies";
constexpr std::string_view kFrozen = "frozenDependencies";

struct Line {
  std::size_t index;  // array index, or line number from 0 in a "\n"-joined string
  std::string_view text;
};

struct Indexed {
  std::string field;  // "frozenDependencies[3]"
  Requirement req;
};

std::string ItemField(std::string_view field, std::size_t index) {
  return std::string(field) + "[" + std::to_string(index) + "]";
}

bool IsBlankOrComment(std::string_view text) { return Trim(StripRequirementComment(text)).empty(); }

Status AddLine(std::string_view field, std::size_t index, std::string_view text,
               std::vector<Line>& lines) {
  text = Trim(text);  // also the "\r" of "\r\n" line ends
  if (IsBlankOrComment(text)) return Status::Ok();
  if (lines.size() == kMaxRequirementsPerField) {
    return FieldError(std::string(field), "more than " + std::to_string(kMaxRequirementsPerField) +
                                              " requirements; at most " +
                                              std::to_string(kMaxRequirementsPerField) +
                                              " are allowed per field");
  }
  lines.push_back({index, text});
  return Status::Ok();
}

// Views into `value`, which must outlive the result.
Result<std::vector<Line>> SplitLines(const Json* value, std::string_view field) {
  std::vector<Line> lines;
  if (value == nullptr || value->is_null()) return lines;
  if (value->is_string()) {
    std::string_view text = value->get_ref<const std::string&>();
    for (std::size_t index = 0;; ++index) {
      std::size_t end = text.find('\n');
      GSK_RETURN_IF_ERROR(AddLine(field, index, text.substr(0, end), lines));
      if (end == std::string_view::npos) break;
      text.remove_prefix(end + 1);
    }
    return lines;
  }
  if (!value->is_array()) {
    return FieldError(std::string(field),
                      "expected an array of requirement strings (or one "
                      "\"\\n\"-joined string), got " +
                          TypeNameWithArticle(*value));
  }
  for (std::size_t i = 0; i < value->size(); ++i) {
    const Json& item = (*value)[i];
    if (!item.is_string()) {
      return FieldError(ItemField(field, i),
                        "expected a requirement string such as "
                        "\"numpy==1.26.4\", got " +
                            TypeNameWithArticle(item));
    }
    std::string_view text = item.get_ref<const std::string&>();
    if (Trim(text).find('\n') != std::string_view::npos) {
      return FieldError(ItemField(field, i),
                        "contains a line break; put each requirement in "
                        "its own array element");
    }
    GSK_RETURN_IF_ERROR(AddLine(field, i, text, lines));
  }
  return lines;
}

std::string MergedLine(const Requirement& a, const Requirement& b) {
  Requirement merged = a;
  merged.extras.insert(merged.extras.end(), b.extras.begin(), b.extras.end());
  std::sort(merged.extras.begin(), merged.extras.end());
  merged.extras.erase(std::unique(merged.extras.begin(), merged.extras.end()), merged.extras.end());
  std::vector<std::string> clauses;
  for (const std::string* spec : {&a.specifier, &b.specifier}) {
    for (std::size_t start = 0; start < spec->size();) {
      std::size_t end = std::min(spec->find(',', start), spec->size());
      clauses.push_back(spec->substr(start, end - start));
      start = end + 1;
    }
  }
  std::sort(clauses.begin(), clauses.end());
  clauses.erase(std::unique(clauses.begin(), clauses.end()), clauses.end());
  merged.specifier.clear();
  for (const std::string& c : clauses)
    merged.specifier += (merged.specifier.empty() ? "" : ",") + c;
  return merged.Canonical();
}

bool SamePin(const std::string& a, const std::string& b) {
  auto va = ParseVersion(a);
  auto vb = ParseVersion(b);
  return va && vb ? CompareVersions(*va, *vb) == 0 : a == b;
}

Status CheckDuplicates(const std::vector<Indexed>& items) {
  std::map<std::pair<std::string, std::string>, const Indexed*> seen;
  for (const Indexed& item : items) {
    const Requirement& r = item.req;
    auto key = r.name.empty() ? std::make_pair(std::string(), r.Canonical())
                              : std::make_pair(r.name, r.marker);
    auto [it, inserted] = seen.emplace(key, &item);
    if (inserted) continue;
    const Indexed& first = *it->second;
    std::string pin_a = first.req.PinnedVersion();
    std::string pin_b = r.PinnedVersion();
    if (!pin_a.empty() && !pin_b.empty() && !SamePin(pin_a, pin_b)) {
      return FieldError(item.field, "conflicting pins: " + Quote(r.original) + " and " +
                                        Quote(first.req.original) + " (" + first.field +
                                        "); keep only the version you want");
    }
    std::string hint =
        r.url.empty() && first.req.url.empty() && !r.name.empty()
            ? "; combine them into one line such as " + Quote(MergedLine(first.req, r))
            : "; keep only one of them";
    return FieldError(item.field, Quote(r.original) + " lists " +
                                      Quote(r.name.empty() ? r.Canonical() : r.name) +
                                      " twice (also " + first.field + ")" + hint);
  }
  return Status::Ok();
}

Result<std::vector<Indexed>> ParseList(const Json* value, std::string_view field,
                                       const ParseOptions& options) {
  GSK_ASSIGN_OR_RETURN(std::vector<Line> lines, SplitLines(value, field));
  std::vector<Indexed> items;
  items.reserve(lines.size());
  for (const Line& line : lines) {
    std::string item_field = ItemField(field, line.index);
    auto req = ParseRequirement(line.text, options);
    if (!req.ok()) return FieldError(item_field, req.status().message());
    if (field == kFrozen && (req->name.empty() || req->PinnedVersion().empty())) {
      return FieldError(
          item_field, Quote(req->original) +
                          " is not an exact pin; each "
                          "frozenDependencies line is name==version as importlib.metadata reports "
                          "it (e.g. numpy==1.26.4)");
    }
    items.push_back({std::move(item_field), std::move(req).value()});
  }
  GSK_RETURN_IF_ERROR(CheckDuplicates(items));
  return items;
}

// Requested pins must agree with the frozen pin of the same package (when the markers could
// both apply); requested packages absent from a non-empty frozen list are reported.
Status CrossCheck(const std::vector<Indexed>& requested, const std::vector<Indexed>& frozen,
                  KernelSpec& spec) {
  if (frozen.empty()) return Status::Ok();
  for (const Indexed& r : requested) {
    if (r.req.name.empty()) continue;
    bool found = false;
    for (const Indexed& f : frozen) {
      if (f.req.name != r.req.name) continue;
      found = true;
      bool overlap = r.req.marker.empty() || f.req.marker.empty() || r.req.marker == f.req.marker;
      auto want = ParseVersion(r.req.PinnedVersion());
      auto have = ParseVersion(f.req.PinnedVersion());
      if (overlap && want && have && !MatchesPin(*want, *have)) {
        return FieldError(r.field, Quote(r.req.original) + " conflicts with " + f.field + " " +
                                       Quote(f.req.original) + "; make the two versions agree");
      }
    }
    if (!found && r.req.marker.empty()) {
      AddWarning(spec, r.field + ": " + Quote(r.req.original) + " is not in " +
                           std::string(kFrozen) + "; the environment is built from " +
                           std::string(kFrozen) + " only");
    }
  }
  return Status::Ok();
}

std::vector<Requirement> InCanonicalOrder(std::vector<Indexed> items) {
  std::vector<Requirement> out;
  out.reserve(items.size());
  for (Indexed& item : items) out.push_back(std::move(item.req));
  std::sort(out.begin(), out.end(), [](const Requirement& a, const Requirement& b) {
    return std::make_pair(a.name, a.Canonical()) < std::make_pair(b.name, b.Canonical());
  });
  return out;
}

}  // namespace

Status ParseDependencyFields(const Json* requested, const Json* frozen, const ParseOptions& options,
                             KernelSpec& spec) {
  GSK_ASSIGN_OR_RETURN(std::vector<Indexed> req_items, ParseList(requested, kRequested, options));
  GSK_ASSIGN_OR_RETURN(std::vector<Indexed> frozen_items, ParseList(frozen, kFrozen, options));
  GSK_RETURN_IF_ERROR(CrossCheck(req_items, frozen_items, spec));
  spec.requested = InCanonicalOrder(std::move(req_items));
  spec.frozen = InCanonicalOrder(std::move(frozen_items));
  return Status::Ok();
}

}  // namespace gsk::spec::internal
