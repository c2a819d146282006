// Internal to the store: opens the SQLite connection the Store runs on (file mode 0600, WAL,
// synchronous=NORMAL, foreign keys, busy timeout). Stateless; safe from any thread.
#pragma once

#include <filesystem>
#include <memory>

#include "base/result.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace gsk::store::internal {

// kFailedPrecondition naming `path` when the file cannot be created, opened or made private,
// is not a database, or refuses write-ahead logging.
Result<std::unique_ptr<SQLite::Database>> OpenConnection(const std::filesystem::path& path);

}  // namespace gsk::store::internal
