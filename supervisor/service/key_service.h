// KeyService: worker API keys, separate from the admin token. A key opens the worker endpoint
// (and the model bytes its workers fetch) and nothing else. It is shown once, at creation, and
// kept only as a SHA-256 digest, with the last time it was used. Not thread-safe: core thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/store/store.h"

namespace gsk::service {

struct NewKey {
  store::KeyRow row;
  std::string key;  // "gsk_" + 64 hex digits: the only time it is known
};

class KeyService {
 public:
  // `store` and `clock` must outlive the service.
  KeyService(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // kInvalidArgument for a name that is not a kernel-style name; kAlreadyExists if taken.
  Result<NewKey> Create(const std::string& name, const Caller& caller);
  Result<std::vector<store::KeyRow>> List();
  // kNotFound if there is no such key. Connections opened with it are closed (on_revoked).
  Status Revoke(const std::string& name, const Caller& caller);
  // The key `key` is, or kUnauthenticated (wrong or revoked). Records its use, at most once a
  // minute per key, so that a busy worker does not write for every call.
  Result<store::KeyRow> Authenticate(std::string_view key);

  void SetOnRevoked(std::function<void(const std::string& name)> on_revoked) {
    on_revoked_ = std::move(on_revoked);
  }

 private:
  store::Store& store_;
  const Clock& clock_;
  std::function<void(const std::string& name)> on_revoked_;
};

}  // namespace gsk::service
