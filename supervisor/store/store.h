// Store: the supervisor's durable state in one SQLite database (WAL, foreign keys on), with
// versioned schema migrations. Every write is one transaction. Not thread-safe: owned and used
// by the supervisor's core thread only. No exception escapes; failures come back as Status.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace SQLite {
class Database;
}

namespace gsk::store {

struct KernelRow {
  std::string name;
  std::string type;            // "PROCESS" | "UNMANAGED"
  std::string spec_json;       // the normalized kernel document (kernel-spec ToJson, unredacted)
  std::string env_hash;
  std::string status;          // "pending" | "building" | "ready" | "failed"
  std::string last_error;      // "" when none
  int64_t generation = 1;      // bumped whenever the document changes
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

struct Event {
  int64_t id = 0;              // assigned by the store
  int64_t ts_ms = 0;
  std::string kind;            // "kernel.created", "kernel.deleted", ...
  std::string subject;         // "kernel/NAME", "worker/ID", "supervisor"
  std::string actor;           // "rest", "admin-socket", "supervisor"
  std::string detail_json = "{}";
};

struct EventFilter {
  std::string subject;         // "" for all
  int64_t after_id = 0;        // only events with id > after_id
  int limit = 100;
};

class Store {
 public:
  // Opens or creates the database at `path`, applies pending migrations in one transaction
  // each, and checks that the schema is not newer than this binary understands
  // (kFailedPrecondition: "database schema version 7 is newer than this binary (5)").
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  static int LatestSchemaVersion();
  Result<int> SchemaVersion();

  // Inserts the kernel and its event atomically. kAlreadyExists if the name is taken.
  Status InsertKernel(const KernelRow& row, const Event& event);
  // Replaces the row with the same name and appends the event atomically. kNotFound if absent.
  Status UpdateKernel(const KernelRow& row, const Event& event);
  // Deletes the kernel and appends the event atomically. kNotFound if absent.
  Status DeleteKernel(const std::string& name, const Event& event);
  Result<std::optional<KernelRow>> GetKernel(const std::string& name);
  Result<std::vector<KernelRow>> ListKernels();  // ordered by name
  Result<int64_t> CountKernels();

  Status AppendEvent(const Event& event);
  Result<std::vector<Event>> ListEvents(const EventFilter& filter);  // ordered by id

  // Result of PRAGMA integrity_check: "ok" when the database is sound.
  Result<std::string> IntegrityCheck();

  // For tests of migrations: opens `path` and migrates only up to `version`.
  static Result<std::unique_ptr<Store>> OpenAtVersion(const std::filesystem::path& path,
                                                      int version);

 private:
  explicit Store(std::unique_ptr<SQLite::Database> db);
  Status Migrate(int target_version);

  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace gsk::store
