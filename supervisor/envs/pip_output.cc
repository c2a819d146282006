#include "supervisor/envs/pip_output.h"

#include <algorithm>

namespace gsk::envs {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

int CountCommaList(std::string_view list) {
  if (Trim(list).empty()) return 0;
  return static_cast<int>(std::count(list.begin(), list.end(), ',')) + 1;
}

}  // namespace

void PipOutput::OnLine(std::string_view raw) {
  std::string_view line = Trim(raw);
  constexpr std::string_view kCollecting = "Collecting ";
  constexpr std::string_view kProcessing = "Processing ";
  constexpr std::string_view kInstalling = "Installing collected packages: ";
  constexpr std::string_view kSuccess = "Successfully installed ";
  constexpr std::string_view kError = "ERROR: ";
  if (StartsWith(line, kCollecting) || StartsWith(line, kProcessing)) {
    progress_.phase = "resolving";
    std::string_view what = line.substr(StartsWith(line, kCollecting) ? kCollecting.size()
                                                                      : kProcessing.size());
    progress_.current = std::string(what.substr(0, what.find(" (from")));
    ++progress_.collected;
  } else if (StartsWith(line, kInstalling)) {
    progress_.phase = "installing";
    progress_.current.clear();
    progress_.to_install = CountCommaList(line.substr(kInstalling.size()));
  } else if (StartsWith(line, kSuccess)) {
    std::string_view list = line.substr(kSuccess.size());
    progress_.installed =
        static_cast<int>(std::count(list.begin(), list.end(), ' ')) + (list.empty() ? 0 : 1);
  } else if (StartsWith(line, kError)) {
    std::string message(line.substr(kError.size()));
    if (first_error_.empty()) first_error_ = message;
    if (message.find("No matching distribution found") != std::string::npos ||
        message.find("conflicting dependencies") != std::string::npos ||
        message.find("ResolutionImpossible") != std::string::npos) {
      if (best_error_.empty() || best_error_.find("ResolutionImpossible") != std::string::npos) {
        best_error_ = message;
      }
    }
  }
}

std::string PipOutput::FailureReason() const {
  return best_error_.empty() ? first_error_ : best_error_;
}

}  // namespace gsk::envs
