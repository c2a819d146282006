// The Store's keys table: worker API keys, by name, stored as digests.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "supervisor/store/sqlite_errors.h"
#include "supervisor/store/store.h"
#include "supervisor/store/write_with_event.h"

namespace gsk::store {
namespace {

using internal::Guarded;
using internal::ResetOnExit;

constexpr const char* kInsertKey =
    "INSERT INTO keys (name, digest, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (name) DO NOTHING";
constexpr const char* kDeleteKey = "DELETE FROM keys WHERE name = ?1";
constexpr const char* kSelectKeys =
    "SELECT name, digest, created_at, last_used_at FROM keys ORDER BY name";
constexpr const char* kSelectKeyByDigest =
    "SELECT name, digest, created_at, last_used_at FROM keys WHERE digest = ?1";
constexpr const char* kTouchKey = "UPDATE keys SET last_used_at = ?2 WHERE name = ?1";

KeyRow ReadKey(const SQLite::Statement& s) {
  return {s.getColumn(0).getString(), s.getColumn(1).getString(), s.getColumn(2).getInt64(),
          s.getColumn(3).getInt64()};
}

}  // namespace

Status Store::InsertKey(const KeyRow& row, const Event& event) {
  return WriteWithEvent("creating key", row.name, event, [&]() -> Status {
    SQLite::Statement& insert = Prepared(kInsertKey);
    ResetOnExit reset(insert);
    insert.bind(1, row.name);
    insert.bind(2, row.digest);
    insert.bind(3, row.created_at_ms);
    insert.bind(4, row.last_used_at_ms);
    if (insert.exec() == 0) {
      return AlreadyExists("key \"" + row.name + "\" already exists").WithDetail("name", row.name);
    }
    return Status::Ok();
  });
}

Status Store::DeleteKey(const std::string& name, const Event& event) {
  return WriteWithEvent("revoking key", name, event, [&]() -> Status {
    SQLite::Statement& remove = Prepared(kDeleteKey);
    ResetOnExit reset(remove);
    remove.bind(1, name);
    if (remove.exec() == 0) {
      return NotFound("key \"" + name + "\" does not exist").WithDetail("name", name);
    }
    return Status::Ok();
  });
}

Result<std::vector<KeyRow>> Store::ListKeys() {
  return Guarded("listing keys", "", [&]() -> Result<std::vector<KeyRow>> {
    SQLite::Statement& select = Prepared(kSelectKeys);
    ResetOnExit reset(select);
    std::vector<KeyRow> out;
    while (select.executeStep()) out.push_back(ReadKey(select));
    return out;
  });
}

Result<std::optional<KeyRow>> Store::FindKeyByDigest(const std::string& digest) {
  using Row = std::optional<KeyRow>;
  return Guarded("reading key", "", [&]() -> Result<Row> {
    SQLite::Statement& select = Prepared(kSelectKeyByDigest);
    ResetOnExit reset(select);
    select.bind(1, digest);
    if (!select.executeStep()) return Row();
    return Row(ReadKey(select));
  });
}

Status Store::TouchKey(const std::string& name, int64_t used_at_ms) {
  return Guarded("touching key", name, [&]() -> Status {
    SQLite::Statement& touch = Prepared(kTouchKey);
    ResetOnExit reset(touch);
    touch.bind(1, name);
    touch.bind(2, used_at_ms);
    touch.exec();
    return Status::Ok();
  });
}

}  // namespace gsk::store
