#include "supervisor/store/store.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <utility>

#include "supervisor/store/connection.h"
#include "supervisor/store/sqlite_errors.h"
#include "supervisor/store/write_with_event.h"

namespace gsk::store {
namespace {

using internal::Guarded;
using internal::ResetOnExit;

constexpr const char* kInsertKernel =
    "INSERT INTO kernels (name, type, spec_json, env_hash, generation, created_at, updated_at, "
    "workers_stopped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (name) DO NOTHING";
constexpr const char* kUpdateKernel =
    "UPDATE kernels SET type = ?2, spec_json = ?3, env_hash = ?4, generation = ?5, "
    "created_at = ?6, updated_at = ?7, workers_stopped = ?8 WHERE name = ?1";
constexpr const char* kDeleteKernel = "DELETE FROM kernels WHERE name = ?1";
constexpr const char* kSelectKernel =
    "SELECT name, type, spec_json, env_hash, generation, created_at, updated_at, "
    "workers_stopped FROM kernels WHERE name = ?1";
constexpr const char* kSelectKernels =
    "SELECT name, type, spec_json, env_hash, generation, created_at, updated_at, "
    "workers_stopped FROM kernels ORDER BY name";
constexpr const char* kCountKernels = "SELECT COUNT(*) FROM kernels";
constexpr const char* kInsertEvent =
    "INSERT INTO events (ts, kind, subject, actor, detail_json) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kSelectEvents =
    "SELECT id, ts, kind, subject, actor, detail_json FROM events WHERE id > ?1 "
    "ORDER BY id LIMIT ?2";
constexpr const char* kSelectSubjectEvents =
    "SELECT id, ts, kind, subject, actor, detail_json FROM events WHERE subject = ?3 AND "
    "id > ?1 ORDER BY id LIMIT ?2";

void BindKernel(SQLite::Statement& s, const KernelRow& row) {
  s.bind(1, row.name);
  s.bind(2, row.type);
  s.bind(3, row.spec_json);
  s.bind(4, row.env_hash);
  s.bind(5, row.generation);
  s.bind(6, row.created_at_ms);
  s.bind(7, row.updated_at_ms);
  s.bind(8, row.workers_stopped ? 1 : 0);
}

KernelRow ReadKernel(const SQLite::Statement& s) {
  KernelRow row;
  row.name = s.getColumn(0).getString();
  row.type = s.getColumn(1).getString();
  row.spec_json = s.getColumn(2).getString();
  row.env_hash = s.getColumn(3).getString();
  row.generation = s.getColumn(4).getInt64();
  row.created_at_ms = s.getColumn(5).getInt64();
  row.updated_at_ms = s.getColumn(6).getInt64();
  row.workers_stopped = s.getColumn(7).getInt() != 0;
  return row;
}

Event ReadEvent(const SQLite::Statement& s) {
  Event e;
  e.id = s.getColumn(0).getInt64();
  e.ts_ms = s.getColumn(1).getInt64();
  e.kind = s.getColumn(2).getString();
  e.subject = s.getColumn(3).getString();
  e.actor = s.getColumn(4).getString();
  e.detail_json = s.getColumn(5).getString();
  return e;
}

}  // namespace

Store::Store(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& path) {
  return OpenAtVersion(path, LatestSchemaVersion());
}

Result<std::unique_ptr<Store>> Store::OpenAtVersion(const std::filesystem::path& path,
                                                    int version) {
  if (version < 0 || version > LatestSchemaVersion()) {
    return InvalidArgument("schema version " + std::to_string(version) + " is not between 0 and " +
                           std::to_string(LatestSchemaVersion()));
  }
  GSK_ASSIGN_OR_RETURN(auto db, internal::OpenConnection(path));
  std::unique_ptr<Store> store(new Store(std::move(db)));
  Status migrated = store->Migrate(version);
  if (!migrated.ok()) return migrated.Annotate("database " + path.string());
  return store;
}

SQLite::Statement& Store::Prepared(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    auto statement = std::make_unique<SQLite::Statement>(*db_, sql);
    it = statements_.emplace(sql, std::move(statement)).first;
  }
  it->second->tryReset();
  return *it->second;
}

void Store::WriteEvent(const Event& event) {
  SQLite::Statement& insert = Prepared(kInsertEvent);
  ResetOnExit reset(insert);
  insert.bind(1, event.ts_ms);
  insert.bind(2, event.kind);
  insert.bind(3, event.subject);
  insert.bind(4, event.actor);
  insert.bind(5, event.detail_json);
  insert.exec();
}

Status Store::InsertKernel(const KernelRow& row, const Event& event) {
  return WriteWithEvent("inserting kernel", row.name, event, [&]() -> Status {
    SQLite::Statement& insert = Prepared(kInsertKernel);
    ResetOnExit reset(insert);
    BindKernel(insert, row);
    if (insert.exec() == 0) {
      return AlreadyExists("kernel \"" + row.name + "\" already exists").WithDetail("name", row.name);
    }
    return Status::Ok();
  });
}

Status Store::UpdateKernel(const KernelRow& row, const Event& event) {
  return UpdateKernels({row}, event);
}

Status Store::UpdateKernels(const std::vector<KernelRow>& rows, const Event& event) {
  std::string_view subject = rows.size() == 1 ? std::string_view(rows[0].name) : "";
  return WriteWithEvent("updating kernel", subject, event, [&]() -> Status {
    for (const KernelRow& row : rows) {
      SQLite::Statement& update = Prepared(kUpdateKernel);
      ResetOnExit reset(update);
      BindKernel(update, row);
      if (update.exec() == 0) {
        return NotFound("kernel \"" + row.name + "\" does not exist").WithDetail("name", row.name);
      }
    }
    return Status::Ok();
  });
}

Status Store::DeleteKernel(const std::string& name, const Event& event) {
  return WriteWithEvent("deleting kernel", name, event, [&]() -> Status {
    SQLite::Statement& remove = Prepared(kDeleteKernel);
    ResetOnExit reset(remove);
    remove.bind(1, name);
    if (remove.exec() == 0) {
      return NotFound("kernel \"" + name + "\" does not exist").WithDetail("name", name);
    }
    return Status::Ok();
  });
}

Result<std::optional<KernelRow>> Store::GetKernel(const std::string& name) {
  using Row = std::optional<KernelRow>;
  return Guarded("reading kernel", name, [&]() -> Result<Row> {
    SQLite::Statement& select = Prepared(kSelectKernel);
    ResetOnExit reset(select);
    select.bind(1, name);
    if (!select.executeStep()) return Row();
    return Row(ReadKernel(select));
  });
}

Result<std::vector<KernelRow>> Store::ListKernels() {
  return Guarded("listing kernels", "", [&]() -> Result<std::vector<KernelRow>> {
    SQLite::Statement& select = Prepared(kSelectKernels);
    ResetOnExit reset(select);
    std::vector<KernelRow> rows;
    while (select.executeStep()) rows.push_back(ReadKernel(select));
    return rows;
  });
}

Result<int64_t> Store::CountKernels() {
  return Guarded("counting kernels", "", [&]() -> Result<int64_t> {
    SQLite::Statement& count = Prepared(kCountKernels);
    ResetOnExit reset(count);
    count.executeStep();
    return count.getColumn(0).getInt64();
  });
}

Status Store::AppendEvent(const Event& event) {
  return WriteWithEvent("appending event", event.kind, event, [] { return Status::Ok(); });
}

Result<std::vector<Event>> Store::ListEvents(const EventFilter& filter) {
  if (filter.limit < 1 || filter.limit > kMaxEventLimit) {
    return InvalidArgument("event limit " + std::to_string(filter.limit) +
                           " is not between 1 and " + std::to_string(kMaxEventLimit));
  }
  return Guarded("listing events", filter.subject, [&]() -> Result<std::vector<Event>> {
    // Two statements rather than "?3 = '' OR subject = ?3", which would keep SQLite from using
    // the (subject, id) index.
    SQLite::Statement& select =
        Prepared(filter.subject.empty() ? kSelectEvents : kSelectSubjectEvents);
    ResetOnExit reset(select);
    select.bind(1, filter.after_id);
    select.bind(2, filter.limit);
    if (!filter.subject.empty()) select.bind(3, filter.subject);
    std::vector<Event> events;
    while (select.executeStep()) events.push_back(ReadEvent(select));
    return events;
  });
}

Result<std::string> Store::Pragma(std::string_view name) {
  if (name != "journal_mode" && name != "foreign_keys" && name != "synchronous" &&
      name != "busy_timeout") {
    return InvalidArgument("unknown setting \"" + std::string(name) +
                           "\"; use journal_mode, foreign_keys, synchronous or busy_timeout");
  }
  return Guarded("reading setting", name, [&]() -> Result<std::string> {
    return db_->execAndGet("PRAGMA " + std::string(name)).getString();
  });
}

Result<std::string> Store::IntegrityCheck() {
  return Guarded("checking integrity", "", [&]() -> Result<std::string> {
    SQLite::Statement check(*db_, "PRAGMA integrity_check");
    std::string report;
    while (check.executeStep()) {
      if (!report.empty()) report += '\n';
      report += check.getColumn(0).getString();
    }
    return report;
  });
}

}  // namespace gsk::store
