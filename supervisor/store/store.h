// Store: the supervisor's durable state in one SQLite database (WAL, foreign keys on), with
// versioned schema migrations. Every write is one transaction. Not thread-safe: owned and used
// by the supervisor's core thread only. No exception escapes; failures come back as Status.
// The schema version is MAX(version) of the table schema_migrations(version, applied_at); see
// migrations.cc for the ordered list of steps and how to append one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace gsk::store {

// What a kernel owns. Its build status is not here: it is its env's (EnvRow::status).
struct KernelRow {
  std::string name;
  std::string type;       // "PROCESS" | "UNMANAGED"
  std::string spec_json;  // the normalized kernel document (kernel-spec ToJson, unredacted)
  std::string env_hash;
  int64_t generation = 1;  // bumped whenever the document changes
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  bool workers_stopped = false;  // POST /kernels/{name}/stop: no workers until /start
};

// A virtual environment, keyed by the kernel-spec env hash; shared by every kernel with that hash.
struct EnvRow {
  std::string hash;
  std::string python_version;       // "3.11" as requested
  std::string interpreter;          // the interpreter it was built with
  std::string interpreter_version;  // "3.11.2"
  std::string path;                 // the venv directory
  std::string requirements;         // the requirement lines installed, "\n"-joined
  std::string status;               // "pending" (queued) | "building" | "ready" | "failed"
  std::string last_error;
  int64_t size_bytes = 0;
  int64_t attempts = 0;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t last_used_at_ms = 0;
  int64_t build_started_at_ms = 0;
  int64_t build_finished_at_ms = 0;
};

// A worker process (supervisor/workers), as last reported by its state machine.
struct WorkerRow {
  std::string id;
  std::string kernel;
  std::string state;  // "starting" | "running" | "backoff" | "stopping" | "stopped" | "exited"
                      // | "fatal" (supervisord's states)
  int64_t pid = 0;    // 0 when no process
  int64_t process_start_ticks = 0;  // /proc/<pid>/stat field 22, with pid the process identity
  std::string token_hash;           // hex SHA-256 of the one-time token; never the token
  int64_t restarts = 0;
  int64_t quick_failures = 0;     // consecutive early exits (backoff, then fatal)
  std::string exit_description;   // the last exit: "exited with code 1", "killed by signal 9 ..."
  std::string last_error;         // "" when none
  std::string python_version;     // from the worker's hello, "" before it registered
  std::string env_json = "{}";    // the hello's env object (packages, platform, pid, ...)
  std::string log_file;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t started_at_ms = 0;  // running since (0 when not running)
};

// A worker API key, as stored: its digest, never the key.
struct KeyRow {
  std::string name;
  std::string digest;  // hex SHA-256 of the key
  int64_t created_at_ms = 0;
  int64_t last_used_at_ms = 0;  // 0: never used
};

struct Event {
  int64_t id = 0;  // assigned by the store
  int64_t ts_ms = 0;
  std::string kind;     // "kernel.created", "kernel.deleted", ...
  std::string subject;  // "kernel/NAME", "worker/ID", "supervisor"
  std::string actor;    // "rest", "admin-socket", "supervisor"
  std::string detail_json = "{}";
};

struct EventFilter {
  std::string subject;   // "" for all
  int64_t after_id = 0;  // only events with id > after_id
  int limit = 100;
};

class Store {
 public:
  // Opens or creates the database at `path`, applies pending migrations in one transaction
  // each, and checks that the schema is not newer than this binary understands
  // (kFailedPrecondition: "database schema version 7 is newer than this binary (5)").
  // REQUIRES: the parent directory exists (the caller creates the state directory); otherwise,
  // or when the file cannot be opened as a database, kFailedPrecondition naming the path.
  // The database file (and its -wal/-shm files) get mode 0600; WAL, foreign keys,
  // synchronous=NORMAL and a 5 s busy timeout are set on the connection.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  static int LatestSchemaVersion();
  Result<int> SchemaVersion();

  // Writes fail with kInvalidArgument when a value breaks a schema rule (an unknown status, an
  // empty name or event kind, spec_json/detail_json that is not JSON); nothing is written then.

  // Inserts the kernel and its event atomically. kAlreadyExists if the name is taken.
  Status InsertKernel(const KernelRow& row, const Event& event);
  // Replaces the row with the same name (every column) and appends the event atomically.
  // kNotFound if absent.
  Status UpdateKernel(const KernelRow& row, const Event& event);
  // Deletes the kernel and appends the event atomically. kNotFound if absent.
  Status DeleteKernel(const std::string& name, const Event& event);
  Result<std::optional<KernelRow>> GetKernel(const std::string& name);
  Result<std::vector<KernelRow>> ListKernels();  // ordered by name
  Result<int64_t> CountKernels();

  // Replaces the rows with the same names (every column) in one transaction with one event;
  // kNotFound (nothing written) if one is absent. For changes to many kernels at once.
  Status UpdateKernels(const std::vector<KernelRow>& rows, const Event& event);

  // Envs (env_store.cc). PutEnv inserts or replaces the row and appends the event atomically.
  Status PutEnv(const EnvRow& env, const Event& event);
  Result<std::optional<EnvRow>> GetEnv(const std::string& hash);
  Result<std::vector<EnvRow>> ListEnvs();  // ordered by hash
  // Deletes the env row (if present) and appends the event. Kernels keep their env_hash.
  Status DeleteEnv(const std::string& hash, const Event& event);
  Status TouchEnv(const std::string& hash, int64_t used_at_ms);
  // Number of kernels whose env_hash is `hash`.
  Result<int64_t> CountKernelsWithEnv(const std::string& hash);

  Status AppendEvent(const Event& event);  // event.id is ignored; the store assigns it
  // Ordered by id. kInvalidArgument unless 1 <= filter.limit <= kMaxEventLimit.
  Result<std::vector<Event>> ListEvents(const EventFilter& filter);
  static constexpr int kMaxEventLimit = 10000;

  // The value of one of the connection's settings: "journal_mode", "foreign_keys",
  // "synchronous" or "busy_timeout" (kInvalidArgument for any other name). For status pages.
  Result<std::string> Pragma(std::string_view name);

  // Result of PRAGMA integrity_check: "ok" when the database is sound.
  Result<std::string> IntegrityCheck();

  // For tests of migrations: opens `path` and migrates only up to `version` (never down; a
  // database already past `version` is opened as it is). kInvalidArgument unless
  // 0 <= version <= LatestSchemaVersion(). Version 0 is an empty database.
  static Result<std::unique_ptr<Store>> OpenAtVersion(const std::filesystem::path& path,
                                                      int version);

  // Worker API keys (key_store.cc). InsertKey: kAlreadyExists if the name is taken.
  Status InsertKey(const KeyRow& row, const Event& event);
  Status DeleteKey(const std::string& name, const Event& event);  // kNotFound if absent
  Result<std::vector<KeyRow>> ListKeys();                          // ordered by name
  Result<std::optional<KeyRow>> FindKeyByDigest(const std::string& digest);
  Status TouchKey(const std::string& name, int64_t used_at_ms);

  // Workers (worker_store.cc). Rows are kept after their kernel is deleted (no foreign key):
  // the process may still be alive, and the row is how a restarted supervisor finds it.
  // PutWorker inserts or replaces the row (every column) and appends the event atomically.
  Status PutWorker(const WorkerRow& row, const Event& event);
  Result<std::optional<WorkerRow>> GetWorker(const std::string& id);
  // Ordered by id; only the workers of `kernel` unless it is empty.
  Result<std::vector<WorkerRow>> ListWorkers(const std::string& kernel = "");
  // Deletes the row and appends the event atomically. kNotFound if absent.
  Status DeleteWorker(const std::string& id, const Event& event);

 private:
  explicit Store(std::unique_ptr<SQLite::Database> db);
  Status Migrate(int target_version);  // defined in migrations.cc
  // The cached prepared statement for `sql`, reset; `sql` must be a static string (its address
  // is the cache key). Throws SQLite::Exception.
  SQLite::Statement& Prepared(const char* sql);
  // The one writer of "a change plus its audit event": runs `change` (which may throw
  // SQLite::Exception, or return a non-OK Status to roll back) and appends `event`, in one
  // IMMEDIATE transaction. Failures are reported as "<action> <subject>: ...".
  template <typename Change>
  Status WriteWithEvent(std::string_view action, std::string_view subject, const Event& event,
                        Change&& change);
  void WriteEvent(const Event& event);  // throws SQLite::Exception

  std::unique_ptr<SQLite::Database> db_;
  // Declared after db_ so that the statements are finalized before the connection closes.
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> statements_;
};

}  // namespace gsk::store
