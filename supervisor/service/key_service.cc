#include "supervisor/service/key_service.h"

#include <nlohmann/json.hpp>

#include "base/crypto.h"

namespace gsk::service {
namespace {

constexpr int64_t kTouchEveryMs = 60'000;

store::Event KeyEvent(std::string kind, const std::string& name, const Caller& caller,
                      int64_t now) {
  return {0, now, std::move(kind), "key/" + name, caller.actor, "{}"};
}

}  // namespace

Result<NewKey> KeyService::Create(const std::string& name, const Caller& caller) {
  if (!spec::ValidateKernelName(name).ok()) {
    return InvalidArgument("name: \"" + name + "\" is not a valid key name; use 1 to 63 "
                           "characters from A-Z, a-z, 0-9, '.', '_' and '-', starting with a "
                           "letter or digit")
        .WithDetail("field", "name");
  }
  GSK_ASSIGN_OR_RETURN(std::string random, RandomHex(32));
  NewKey created;
  created.key = "gsk_" + random;
  int64_t now = clock_.NowUnixMillis();
  created.row = {name, Sha256Hex(created.key), now, 0};
  GSK_RETURN_IF_ERROR(store_.InsertKey(created.row, KeyEvent("key.created", name, caller, now)));
  return created;
}

Result<std::vector<store::KeyRow>> KeyService::List() { return store_.ListKeys(); }

Status KeyService::Revoke(const std::string& name, const Caller& caller) {
  GSK_RETURN_IF_ERROR(
      store_.DeleteKey(name, KeyEvent("key.revoked", name, caller, clock_.NowUnixMillis())));
  if (on_revoked_) on_revoked_(name);
  return Status::Ok();
}

Result<store::KeyRow> KeyService::Authenticate(std::string_view key) {
  if (key.empty()) return Unauthenticated("no API key");
  GSK_ASSIGN_OR_RETURN(std::optional<store::KeyRow> row, store_.FindKeyByDigest(Sha256Hex(key)));
  if (!row) {
    return Unauthenticated("this API key is not known (wrong, or revoked); create one with "
                           "`giskard-supervisor keys create NAME`");
  }
  int64_t now = clock_.NowUnixMillis();
  if (now - row->last_used_at_ms >= kTouchEveryMs && store_.TouchKey(row->name, now).ok()) {
    row->last_used_at_ms = now;
  }
  return *row;
}

}  // namespace gsk::service
