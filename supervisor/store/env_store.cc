// The Store's envs table: one row per virtual environment.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "supervisor/store/sqlite_errors.h"
#include "supervisor/store/store.h"
#include "supervisor/store/write_with_event.h"

namespace gsk::store {
namespace {

using internal::Guarded;
using internal::ResetOnExit;

constexpr const char* kPutEnv =
    "INSERT OR REPLACE INTO envs (hash, python_version, interpreter, interpreter_version, path, "
    "requirements, status, last_error, size_bytes, attempts, created_at, updated_at, "
    "last_used_at, build_started_at, build_finished_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
constexpr const char* kSelectEnv =
    "SELECT hash, python_version, interpreter, interpreter_version, path, requirements, status, "
    "last_error, size_bytes, attempts, created_at, updated_at, last_used_at, build_started_at, "
    "build_finished_at FROM envs WHERE hash = ?1";
constexpr const char* kSelectEnvs =
    "SELECT hash, python_version, interpreter, interpreter_version, path, requirements, status, "
    "last_error, size_bytes, attempts, created_at, updated_at, last_used_at, build_started_at, "
    "build_finished_at FROM envs ORDER BY hash";
constexpr const char* kDeleteEnv = "DELETE FROM envs WHERE hash = ?1";
constexpr const char* kTouchEnv = "UPDATE envs SET last_used_at = ?2 WHERE hash = ?1";
constexpr const char* kCountKernelsWithEnv = "SELECT COUNT(*) FROM kernels WHERE env_hash = ?1";

EnvRow ReadEnv(const SQLite::Statement& s) {
  EnvRow e;
  e.hash = s.getColumn(0).getString();
  e.python_version = s.getColumn(1).getString();
  e.interpreter = s.getColumn(2).getString();
  e.interpreter_version = s.getColumn(3).getString();
  e.path = s.getColumn(4).getString();
  e.requirements = s.getColumn(5).getString();
  e.status = s.getColumn(6).getString();
  e.last_error = s.getColumn(7).getString();
  e.size_bytes = s.getColumn(8).getInt64();
  e.attempts = s.getColumn(9).getInt64();
  e.created_at_ms = s.getColumn(10).getInt64();
  e.updated_at_ms = s.getColumn(11).getInt64();
  e.last_used_at_ms = s.getColumn(12).getInt64();
  e.build_started_at_ms = s.getColumn(13).getInt64();
  e.build_finished_at_ms = s.getColumn(14).getInt64();
  return e;
}

}  // namespace

Status Store::PutEnv(const EnvRow& env, const Event& event) {
  return WriteWithEvent("writing env", env.hash, event, [&]() -> Status {
    SQLite::Statement& put = Prepared(kPutEnv);
    ResetOnExit reset(put);
    put.bind(1, env.hash);
    put.bind(2, env.python_version);
    put.bind(3, env.interpreter);
    put.bind(4, env.interpreter_version);
    put.bind(5, env.path);
    put.bind(6, env.requirements);
    put.bind(7, env.status);
    put.bind(8, env.last_error);
    put.bind(9, env.size_bytes);
    put.bind(10, env.attempts);
    put.bind(11, env.created_at_ms);
    put.bind(12, env.updated_at_ms);
    put.bind(13, env.last_used_at_ms);
    put.bind(14, env.build_started_at_ms);
    put.bind(15, env.build_finished_at_ms);
    put.exec();
    return Status::Ok();
  });
}

Result<std::optional<EnvRow>> Store::GetEnv(const std::string& hash) {
  using Row = std::optional<EnvRow>;
  return Guarded("reading env", hash, [&]() -> Result<Row> {
    SQLite::Statement& select = Prepared(kSelectEnv);
    ResetOnExit reset(select);
    select.bind(1, hash);
    if (!select.executeStep()) return Row();
    return Row(ReadEnv(select));
  });
}

Result<std::vector<EnvRow>> Store::ListEnvs() {
  return Guarded("listing envs", "", [&]() -> Result<std::vector<EnvRow>> {
    SQLite::Statement& select = Prepared(kSelectEnvs);
    ResetOnExit reset(select);
    std::vector<EnvRow> out;
    while (select.executeStep()) out.push_back(ReadEnv(select));
    return out;
  });
}

Status Store::DeleteEnv(const std::string& hash, const Event& event) {
  return WriteWithEvent("deleting env", hash, event, [&]() -> Status {
    SQLite::Statement& remove = Prepared(kDeleteEnv);
    ResetOnExit reset(remove);
    remove.bind(1, hash);
    remove.exec();
    return Status::Ok();
  });
}

Status Store::TouchEnv(const std::string& hash, int64_t used_at_ms) {
  return Guarded("touching env", hash, [&]() -> Status {
    SQLite::Statement& touch = Prepared(kTouchEnv);
    ResetOnExit reset(touch);
    touch.bind(1, hash);
    touch.bind(2, used_at_ms);
    touch.exec();
    return Status::Ok();
  });
}

Result<int64_t> Store::CountKernelsWithEnv(const std::string& hash) {
  return Guarded("counting kernels of env", hash, [&]() -> Result<int64_t> {
    SQLite::Statement& count = Prepared(kCountKernelsWithEnv);
    ResetOnExit reset(count);
    count.bind(1, hash);
    count.executeStep();
    return count.getColumn(0).getInt64();
  });
}

}  // namespace gsk::store
