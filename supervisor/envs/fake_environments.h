// FakeEnvironments: an Environments for unit tests that builds nothing. It records what was
// asked and lets the test set each env's state and fire the change notice. Not thread-safe: use
// it from the test thread.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "supervisor/envs/environments.h"

namespace gsk::envs {

class FakeEnvironments final : public Environments {
 public:
  void Ensure(const EnvRequest& request, bool retry_failed) override {
    ensured.push_back(request);
    EnvState& s = states[request.hash];
    if (s.status == EnvStatus::kFailed && !retry_failed) return;
    if (s.status != EnvStatus::kReady) s = EnvState{EnvStatus::kPending, "", BuildProgress{}};
  }
  void Release(const std::string& hash) override { released.push_back(hash); }
  Status Rebuild(const EnvRequest& request) override {
    if (!rebuild_status.ok()) return rebuild_status;
    rebuilt.push_back(request);
    states[request.hash] = EnvState{EnvStatus::kPending, "", BuildProgress{}};
    return Status::Ok();
  }
  EnvState State(const std::string& hash) const override {
    auto it = states.find(hash);
    return it == states.end() ? EnvState{} : it->second;
  }
  std::filesystem::path EnvPath(const std::string& hash) const override {
    return "/envs/" + hash.substr(0, 32);
  }
  std::filesystem::path LogPath(const std::string& hash) const override {
    return log_dir / (hash.substr(0, 32) + ".log");
  }
  void SetOnChange(std::function<void(const std::string& hash)> on_change) override {
    on_change_ = std::move(on_change);
  }

  // Sets the env's state and tells the listener, as a finished build would.
  void Finish(const std::string& hash, EnvStatus status, std::string error = "") {
    states[hash] = EnvState{status, std::move(error), std::nullopt};
    if (on_change_) on_change_(hash);
  }

  std::vector<EnvRequest> ensured;
  std::vector<std::string> released;
  std::vector<EnvRequest> rebuilt;
  std::map<std::string, EnvState> states;
  Status rebuild_status;
  std::filesystem::path log_dir = "/nonexistent";

 private:
  std::function<void(const std::string& hash)> on_change_;
};

}  // namespace gsk::envs
