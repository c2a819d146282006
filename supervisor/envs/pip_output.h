// PipOutput: reads pip's output line by line and derives what a user wants to see about a build:
// the phase, which package is being handled, how many are done, and the reason of a failure
// ("No matching distribution found for foo==9.9"). Pure; not thread-safe (one per build).
#pragma once

#include <string>
#include <string_view>

namespace gsk::envs {

struct BuildProgress {
  std::string phase = "queued";  // queued, creating-venv, resolving, installing, verifying, done
  std::string current;           // the requirement being collected, e.g. "gsk-alpha==2.0.0"
  int collected = 0;             // distributions resolved so far
  int to_install = 0;            // from "Installing collected packages: a, b, c"
  int installed = 0;             // set when pip reports success
};

class PipOutput {
 public:
  void OnLine(std::string_view line);

  const BuildProgress& progress() const { return progress_; }
  BuildProgress& mutable_progress() { return progress_; }
  // The most telling error line pip printed, without the "ERROR: " prefix; "" if none.
  std::string FailureReason() const;

 private:
  BuildProgress progress_;
  std::string first_error_;
  std::string best_error_;  // "No matching distribution" and resolver conflicts win
};

}  // namespace gsk::envs
