// Internal to the store: Store::WriteWithEvent, the one writer of "a change plus its audit
// event", shared by the tables' source files. Core thread only, like the Store.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>

#include <string_view>
#include <utility>

#include "supervisor/store/sqlite_errors.h"
#include "supervisor/store/store.h"

namespace gsk::store {

template <typename Change>
Status Store::WriteWithEvent(std::string_view action, std::string_view subject,
                             const Event& event, Change&& change) {
  return internal::Guarded(action, subject, [&]() -> Status {
    SQLite::Transaction txn(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    GSK_RETURN_IF_ERROR(std::forward<Change>(change)());  // rolls back: txn is not committed
    WriteEvent(event);
    txn.commit();
    return Status::Ok();
  });
}

}  // namespace gsk::store
