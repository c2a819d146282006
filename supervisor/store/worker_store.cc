// The Store's workers table: one row per worker process of a kernel, written with its event in
// one transaction.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "supervisor/store/sqlite_errors.h"
#include "supervisor/store/store.h"
#include "supervisor/store/write_with_event.h"

namespace gsk::store {
namespace {

using internal::Guarded;
using internal::ResetOnExit;

constexpr const char* kPutWorker =
    "INSERT OR REPLACE INTO workers (id, kernel, state, pid, process_start_ticks, token_hash, "
    "restarts, quick_failures, exit_description, last_error, python_version, env_json, "
    "log_file, created_at, updated_at, started_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
#define GSK_WORKER_COLUMNS                                                                     \
  "SELECT id, kernel, state, pid, process_start_ticks, token_hash, restarts, quick_failures, " \
  "exit_description, last_error, python_version, env_json, log_file, created_at, updated_at, " \
  "started_at FROM workers "
constexpr const char* kSelectWorker = GSK_WORKER_COLUMNS "WHERE id = ?1";
constexpr const char* kSelectWorkers = GSK_WORKER_COLUMNS "ORDER BY id";
constexpr const char* kSelectKernelWorkers = GSK_WORKER_COLUMNS "WHERE kernel = ?1 ORDER BY id";
#undef GSK_WORKER_COLUMNS
constexpr const char* kDeleteWorker = "DELETE FROM workers WHERE id = ?1";

void BindWorker(SQLite::Statement& s, const WorkerRow& w) {
  s.bind(1, w.id);
  s.bind(2, w.kernel);
  s.bind(3, w.state);
  s.bind(4, w.pid);
  s.bind(5, w.process_start_ticks);
  s.bind(6, w.token_hash);
  s.bind(7, w.restarts);
  s.bind(8, w.quick_failures);
  s.bind(9, w.exit_description);
  s.bind(10, w.last_error);
  s.bind(11, w.python_version);
  s.bind(12, w.env_json);
  s.bind(13, w.log_file);
  s.bind(14, w.created_at_ms);
  s.bind(15, w.updated_at_ms);
  s.bind(16, w.started_at_ms);
}

WorkerRow ReadWorker(const SQLite::Statement& s) {
  WorkerRow w;
  w.id = s.getColumn(0).getString();
  w.kernel = s.getColumn(1).getString();
  w.state = s.getColumn(2).getString();
  w.pid = s.getColumn(3).getInt64();
  w.process_start_ticks = s.getColumn(4).getInt64();
  w.token_hash = s.getColumn(5).getString();
  w.restarts = s.getColumn(6).getInt64();
  w.quick_failures = s.getColumn(7).getInt64();
  w.exit_description = s.getColumn(8).getString();
  w.last_error = s.getColumn(9).getString();
  w.python_version = s.getColumn(10).getString();
  w.env_json = s.getColumn(11).getString();
  w.log_file = s.getColumn(12).getString();
  w.created_at_ms = s.getColumn(13).getInt64();
  w.updated_at_ms = s.getColumn(14).getInt64();
  w.started_at_ms = s.getColumn(15).getInt64();
  return w;
}

}  // namespace

Status Store::PutWorker(const WorkerRow& row, const Event& event) {
  return WriteWithEvent("writing worker", row.id, event, [&]() -> Status {
    SQLite::Statement& put = Prepared(kPutWorker);
    ResetOnExit reset(put);
    BindWorker(put, row);
    put.exec();
    return Status::Ok();
  });
}

Result<std::optional<WorkerRow>> Store::GetWorker(const std::string& id) {
  using Row = std::optional<WorkerRow>;
  return Guarded("reading worker", id, [&]() -> Result<Row> {
    SQLite::Statement& select = Prepared(kSelectWorker);
    ResetOnExit reset(select);
    select.bind(1, id);
    if (!select.executeStep()) return Row();
    return Row(ReadWorker(select));
  });
}

Result<std::vector<WorkerRow>> Store::ListWorkers(const std::string& kernel) {
  return Guarded("listing workers of kernel", kernel, [&]() -> Result<std::vector<WorkerRow>> {
    SQLite::Statement& select = Prepared(kernel.empty() ? kSelectWorkers : kSelectKernelWorkers);
    ResetOnExit reset(select);
    if (!kernel.empty()) select.bind(1, kernel);
    std::vector<WorkerRow> out;
    while (select.executeStep()) out.push_back(ReadWorker(select));
    return out;
  });
}

Status Store::DeleteWorker(const std::string& id, const Event& event) {
  return WriteWithEvent("deleting worker", id, event, [&]() -> Status {
    SQLite::Statement& remove = Prepared(kDeleteWorker);
    ResetOnExit reset(remove);
    remove.bind(1, id);
    if (remove.exec() == 0) {
      return NotFound("worker \"" + id + "\" does not exist").WithDetail("id", id);
    }
    return Status::Ok();
  });
}

}  // namespace gsk::store
