// Schema migrations. To change the schema, append a step to kMigrations with the next version
// number and never edit a step that has shipped: databases in the field have already run it.
// Each step runs in its own IMMEDIATE transaction together with its schema_migrations row, so
// a crash leaves the database at the previous version or the new one, never in between.
// PRAGMA foreign_keys cannot change inside a transaction: a step that must rebuild a table
// other tables reference needs a flag here to run with foreign keys off (and a foreign_key_check).
// Add a seeding function for the new version to store_test.cc (VersionFixtures) as well.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <chrono>
#include <cstdint>
#include <iterator>
#include <string>

#include "supervisor/store/sqlite_errors.h"
#include "supervisor/store/store.h"

namespace gsk::store {
namespace {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Times are milliseconds since the Unix epoch. Tables are STRICT so a wrong type is refused.
constexpr Migration kMigrations[] = {
    {1, "kernels and events", R"sql(
CREATE TABLE kernels (
  name        TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
  type        TEXT NOT NULL,
  spec_json   TEXT NOT NULL CHECK (json_valid(spec_json)),
  env_hash    TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('pending', 'building', 'ready', 'failed')),
  last_error  TEXT NOT NULL DEFAULT '',
  generation  INTEGER NOT NULL CHECK (generation >= 1),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX kernels_env_hash ON kernels (env_hash);

CREATE TABLE events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  ts          INTEGER NOT NULL,
  kind        TEXT NOT NULL CHECK (kind <> ''),
  subject     TEXT NOT NULL,
  actor       TEXT NOT NULL,
  detail_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail_json))
) STRICT;
CREATE INDEX events_subject_id ON events (subject, id);
)sql"},
    {2, "virtual environments", R"sql(
CREATE TABLE envs (
  hash                TEXT PRIMARY KEY NOT NULL CHECK (hash <> ''),
  python_version      TEXT NOT NULL,
  interpreter         TEXT NOT NULL DEFAULT '',
  interpreter_version TEXT NOT NULL DEFAULT '',
  path                TEXT NOT NULL,
  requirements        TEXT NOT NULL DEFAULT '',
  status              TEXT NOT NULL CHECK (status IN ('building', 'ready', 'failed')),
  last_error          TEXT NOT NULL DEFAULT '',
  size_bytes          INTEGER NOT NULL DEFAULT 0,
  attempts            INTEGER NOT NULL DEFAULT 0,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  last_used_at        INTEGER NOT NULL,
  build_started_at    INTEGER NOT NULL DEFAULT 0,
  build_finished_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX envs_status_last_used ON envs (status, last_used_at);
)sql"},
    // No foreign key to kernels: a worker row outlives its kernel's row while the process may
    // still be alive (stopping, or orphaned by a supervisor crash), so that the next supervisor
    // can find and stop it. The workers component deletes a row once its process is gone.
    {3, "workers, and whether a kernel's workers are stopped", R"sql(
CREATE TABLE workers (
  id                  TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
  kernel              TEXT NOT NULL CHECK (kernel <> ''),
  state               TEXT NOT NULL CHECK (state IN ('starting', 'running', 'backoff',
                                                     'stopping', 'stopped', 'exited', 'fatal')),
  pid                 INTEGER NOT NULL DEFAULT 0,
  process_start_ticks INTEGER NOT NULL DEFAULT 0,
  token_hash          TEXT NOT NULL DEFAULT '',
  restarts            INTEGER NOT NULL DEFAULT 0 CHECK (restarts >= 0),
  quick_failures      INTEGER NOT NULL DEFAULT 0 CHECK (quick_failures >= 0),
  exit_description    TEXT NOT NULL DEFAULT '',
  last_error          TEXT NOT NULL DEFAULT '',
  python_version      TEXT NOT NULL DEFAULT '',
  env_json            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(env_json)),
  log_file            TEXT NOT NULL DEFAULT '',
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  started_at          INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX workers_kernel ON workers (kernel, id);
ALTER TABLE kernels ADD COLUMN workers_stopped INTEGER NOT NULL DEFAULT 0
  CHECK (workers_stopped IN (0, 1));
)sql"},
    // A kernel's build status is its env's: the copy in the kernels table goes, and an env can be
    // "pending" (queued) so that the envs table alone says where every build stands. Neither
    // table is referenced by a foreign key, so both are rebuilt in place.
    {4, "kernel status derived from its env", R"sql(
CREATE TABLE kernels_v4 (
  name            TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
  type            TEXT NOT NULL CHECK (type IN ('PROCESS', 'UNMANAGED')),
  spec_json       TEXT NOT NULL CHECK (json_valid(spec_json)),
  env_hash        TEXT NOT NULL,
  generation      INTEGER NOT NULL CHECK (generation >= 1),
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  workers_stopped INTEGER NOT NULL DEFAULT 0 CHECK (workers_stopped IN (0, 1))
) STRICT;
INSERT INTO kernels_v4 (name, type, spec_json, env_hash, generation, created_at, updated_at,
                        workers_stopped)
  SELECT name, type, spec_json, env_hash, generation, created_at, updated_at, workers_stopped
  FROM kernels;
DROP TABLE kernels;
ALTER TABLE kernels_v4 RENAME TO kernels;
CREATE INDEX kernels_env_hash ON kernels (env_hash);

CREATE TABLE envs_v4 (
  hash                TEXT PRIMARY KEY NOT NULL CHECK (hash <> ''),
  python_version      TEXT NOT NULL,
  interpreter         TEXT NOT NULL DEFAULT '',
  interpreter_version TEXT NOT NULL DEFAULT '',
  path                TEXT NOT NULL,
  requirements        TEXT NOT NULL DEFAULT '',
  status              TEXT NOT NULL CHECK (status IN ('pending', 'building', 'ready', 'failed')),
  last_error          TEXT NOT NULL DEFAULT '',
  size_bytes          INTEGER NOT NULL DEFAULT 0,
  attempts            INTEGER NOT NULL DEFAULT 0,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  last_used_at        INTEGER NOT NULL,
  build_started_at    INTEGER NOT NULL DEFAULT 0,
  build_finished_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO envs_v4 SELECT hash, python_version, interpreter, interpreter_version, path,
  requirements, status, last_error, size_bytes, attempts, created_at, updated_at, last_used_at,
  build_started_at, build_finished_at FROM envs;
DROP TABLE envs;
ALTER TABLE envs_v4 RENAME TO envs;
CREATE INDEX envs_status_last_used ON envs (status, last_used_at);
)sql"},
    // Worker API keys: a key opens the worker endpoint only. Stored as a SHA-256 digest; the key
    // itself is shown once, at creation.
    {5, "worker API keys", R"sql(
CREATE TABLE keys (
  name          TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
  digest        TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
  created_at    INTEGER NOT NULL,
  last_used_at  INTEGER NOT NULL DEFAULT 0
) STRICT;
)sql"},
};

constexpr bool VersionsAreConsecutive() {
  int expected = 1;
  for (const Migration& m : kMigrations) {
    if (m.version != expected++) return false;
  }
  return true;
}
static_assert(VersionsAreConsecutive(), "kMigrations must be numbered 1, 2, 3, ... in order");

constexpr const char* kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT";
constexpr const char* kSelectVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
constexpr const char* kInsertVersion =
    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)";

int ReadVersion(SQLite::Database& db) { return db.execAndGet(kSelectVersion).getInt(); }

int64_t NowUnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Apply(SQLite::Database& db, const Migration& m) {
  std::string action = "applying schema migration " + std::to_string(m.version);
  return internal::Guarded(action, m.description, [&]() -> Status {
    SQLite::Transaction txn(db, SQLite::TransactionBehavior::IMMEDIATE);
    // Another process may have migrated between our read and our lock.
    if (ReadVersion(db) >= m.version) return Status::Ok();
    db.exec(m.sql);
    SQLite::Statement record(db, kInsertVersion);
    record.bind(1, m.version);
    record.bind(2, NowUnixMillis());
    record.exec();
    txn.commit();
    return Status::Ok();
  });
}

}  // namespace

int Store::LatestSchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

Result<int> Store::SchemaVersion() {
  return internal::Guarded("reading the schema version", "",
                           [&]() -> Result<int> { return ReadVersion(*db_); });
}

Status Store::Migrate(int target_version) {
  GSK_RETURN_IF_ERROR(internal::Guarded("creating schema_migrations", "", [&]() -> Status {
    db_->exec(kCreateMigrationsTable);
    return Status::Ok();
  }));
  GSK_ASSIGN_OR_RETURN(int current, SchemaVersion());
  if (current > LatestSchemaVersion()) {
    return FailedPrecondition("database schema version " + std::to_string(current) +
                              " is newer than this binary (" +
                              std::to_string(LatestSchemaVersion()) +
                              "); run a giskard-supervisor at least as recent as the one that "
                              "last wrote it, or restore a backup")
        .WithDetail("schemaVersion", std::to_string(current));
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= current || m.version > target_version) continue;
    GSK_RETURN_IF_ERROR(Apply(*db_, m));
  }
  return Status::Ok();
}

}  // namespace gsk::store
