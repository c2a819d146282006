#include "supervisor/store/store.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace gsk::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

KernelRow MakeKernel(const std::string& name, int64_t generation = 1) {
  KernelRow row;
  row.name = name;
  row.type = "PROCESS";
  row.spec_json = R"({"name":")" + name + R"(","pythonVersion":"3.11"})";
  row.env_hash = "hash-" + name;
  row.generation = generation;
  row.created_at_ms = 1000;
  row.updated_at_ms = 1000;
  return row;
}

Event MakeEvent(const std::string& kind, const std::string& subject) {
  Event e;
  e.ts_ms = 2000;
  e.kind = kind;
  e.subject = subject;
  e.actor = "rest";
  e.detail_json = R"({"generation":1})";
  return e;
}

std::vector<std::string> Kinds(const std::vector<Event>& events) {
  std::vector<std::string> kinds;
  for (const Event& e : events) kinds.push_back(e.kind);
  return kinds;
}

std::vector<int64_t> Ids(const std::vector<Event>& events) {
  std::vector<int64_t> ids;
  for (const Event& e : events) ids.push_back(e.id);
  return ids;
}

mode_t ModeOf(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gsk-store-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ / "supervisor.db";
    Reopen();
  }

  // Every test leaves store_ open on path_ so that the database it wrote is checked here.
  void TearDown() override {
    if (store_ == nullptr) {
      ADD_FAILURE() << "the test left no open store to check";
    } else {
      Result<std::string> check = store_->IntegrityCheck();
      EXPECT_TRUE(check.ok()) << check.status().ToString();
      if (check.ok()) {
        EXPECT_EQ(*check, "ok");
      }
    }
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void Reopen() {
    store_.reset();
    Result<std::unique_ptr<Store>> store = Store::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::vector<Event> AllEvents() {
    EventFilter filter;
    filter.limit = Store::kMaxEventLimit;
    Result<std::vector<Event>> events = store_->ListEvents(filter);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    return events.ok() ? *events : std::vector<Event>{};
  }

  int64_t Count() {
    Result<int64_t> count = store_->CountKernels();
    EXPECT_TRUE(count.ok()) << count.status().ToString();
    return count.ok() ? *count : -1;
  }

  fs::path dir_;
  fs::path path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, OpenCreatesDatabaseAtLatestVersion) {
  EXPECT_TRUE(fs::exists(path_));
  EXPECT_GE(Store::LatestSchemaVersion(), 1);
  Result<int> version = store_->SchemaVersion();
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, Store::LatestSchemaVersion());
  EXPECT_EQ(Count(), 0);
  EXPECT_TRUE(AllEvents().empty());
}

TEST_F(StoreTest, ConnectionUsesWalForeignKeysAndBusyTimeout) {
  EXPECT_EQ(store_->Pragma("journal_mode").value(), "wal");
  EXPECT_EQ(store_->Pragma("foreign_keys").value(), "1");
  EXPECT_EQ(store_->Pragma("synchronous").value(), "1");  // NORMAL
  EXPECT_EQ(store_->Pragma("busy_timeout").value(), "5000");
  EXPECT_EQ(store_->Pragma("user_version; DROP TABLE kernels").status().code(),
            StatusCode::kInvalidArgument);

  // WAL is a property of the file: another connection sees it too.
  SQLite::Database other(path_.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(other.execAndGet("PRAGMA journal_mode").getString(), "wal");
}

TEST_F(StoreTest, DatabaseFilesAreOwnerOnlyWhateverTheUmask) {
  EXPECT_EQ(ModeOf(path_), 0600u);
  EXPECT_EQ(ModeOf(path_.string() + "-wal"), 0600u);
  EXPECT_EQ(ModeOf(path_.string() + "-shm"), 0600u);

  mode_t old_umask = ::umask(0);
  fs::path other = dir_ / "other.db";
  Result<std::unique_ptr<Store>> store = Store::Open(other);
  ::umask(old_umask);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(
      (*store)->InsertKernel(MakeKernel("a"), MakeEvent("kernel.created", "kernel/a")).ok());
  EXPECT_EQ(ModeOf(other), 0600u);
  EXPECT_EQ(ModeOf(other.string() + "-wal"), 0600u);
  EXPECT_EQ(ModeOf(other.string() + "-shm"), 0600u);
}

TEST_F(StoreTest, OpenTightensAnExistingWorldReadableDatabase) {
  store_.reset();
  fs::permissions(path_, fs::perms(0644));
  Reopen();
  EXPECT_EQ(ModeOf(path_), 0600u);
}

TEST_F(StoreTest, OpenFailsClearlyWhenTheDirectoryIsMissing) {
  fs::path missing = dir_ / "no-such-dir" / "supervisor.db";
  Result<std::unique_ptr<Store>> store = Store::Open(missing);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(missing.string()));
  EXPECT_THAT(store.status().message(), HasSubstr("create the state directory first"));
  EXPECT_FALSE(fs::exists(missing.parent_path()));
}

TEST_F(StoreTest, OpenFailsClearlyOnAFileThatIsNotADatabase) {
  fs::path junk = dir_ / "junk.db";
  std::ofstream(junk) << std::string(8192, 'x');
  Result<std::unique_ptr<Store>> store = Store::Open(junk);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(junk.string()));
  EXPECT_THAT(store.status().message(), HasSubstr("not a database"));
}

TEST_F(StoreTest, OpenFailsClearlyOnADirectory) {
  fs::create_directory(dir_ / "dir.db");
  Result<std::unique_ptr<Store>> store = Store::Open(dir_ / "dir.db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr((dir_ / "dir.db").string()));
}

TEST_F(StoreTest, InsertGetListUpdateDeleteWithEvents) {
  ASSERT_TRUE(
      store_->InsertKernel(MakeKernel("beta"), MakeEvent("kernel.created", "kernel/beta")).ok());
  ASSERT_TRUE(
      store_->InsertKernel(MakeKernel("alpha"), MakeEvent("kernel.created", "kernel/alpha")).ok());

  Result<std::optional<KernelRow>> got = store_->GetKernel("alpha");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  const KernelRow& alpha = **got;
  EXPECT_EQ(alpha.name, "alpha");
  EXPECT_EQ(alpha.type, "PROCESS");
  EXPECT_EQ(alpha.spec_json, MakeKernel("alpha").spec_json);
  EXPECT_EQ(alpha.env_hash, "hash-alpha");
  EXPECT_EQ(alpha.generation, 1);
  EXPECT_FALSE(alpha.workers_stopped);
  EXPECT_EQ(alpha.created_at_ms, 1000);
  EXPECT_EQ(alpha.updated_at_ms, 1000);

  Result<std::vector<KernelRow>> listed = store_->ListKernels();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "alpha");
  EXPECT_EQ((*listed)[1].name, "beta");

  KernelRow changed = MakeKernel("alpha", 2);
  changed.env_hash = "hash-other";
  changed.workers_stopped = true;
  changed.updated_at_ms = 3000;
  ASSERT_TRUE(store_->UpdateKernel(changed, MakeEvent("kernel.replaced", "kernel/alpha")).ok());
  got = store_->GetKernel("alpha");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->env_hash, "hash-other");
  EXPECT_TRUE((*got)->workers_stopped);
  EXPECT_EQ((*got)->generation, 2);
  EXPECT_EQ((*got)->created_at_ms, 1000);
  EXPECT_EQ((*got)->updated_at_ms, 3000);

  ASSERT_TRUE(store_->DeleteKernel("beta", MakeEvent("kernel.deleted", "kernel/beta")).ok());
  got = store_->GetKernel("beta");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(Count(), 1);

  std::vector<Event> events = AllEvents();
  EXPECT_THAT(Kinds(events),
              ElementsAre("kernel.created", "kernel.created", "kernel.replaced", "kernel.deleted"));
  EXPECT_EQ(events[0].subject, "kernel/beta");
  EXPECT_EQ(events[0].actor, "rest");
  EXPECT_EQ(events[0].ts_ms, 2000);
  EXPECT_EQ(events[0].detail_json, R"({"generation":1})");
  EXPECT_LT(events[0].id, events[1].id);
}

TEST_F(StoreTest, DuplicateInsertIsAlreadyExistsAndWritesNothing) {
  ASSERT_TRUE(store_->InsertKernel(MakeKernel("a"), MakeEvent("kernel.created", "kernel/a")).ok());
  KernelRow other = MakeKernel("a", 7);
  Status s = store_->InsertKernel(other, MakeEvent("kernel.created", "kernel/a"));
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("\"a\""));
  EXPECT_EQ(store_->GetKernel("a").value()->generation, 1);
  EXPECT_EQ(AllEvents().size(), 1u);
}

TEST_F(StoreTest, InsertWhoseEventFailsLeavesNoRow) {
  Event bad = MakeEvent("kernel.created", "kernel/a");
  bad.detail_json = "{not json";
  Status s = store_->InsertKernel(MakeKernel("a"), bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("inserting kernel \"a\""));

  Event no_kind = MakeEvent("", "kernel/a");
  EXPECT_EQ(store_->InsertKernel(MakeKernel("a"), no_kind).code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(Count(), 0);
  EXPECT_FALSE(store_->GetKernel("a").value().has_value());
  EXPECT_TRUE(AllEvents().empty());
}

TEST_F(StoreTest, InsertOfAnInvalidRowLeavesNoEvent) {
  KernelRow bad_type = MakeKernel("a");
  bad_type.type = "DOCKER";
  Status s = store_->InsertKernel(bad_type, MakeEvent("kernel.created", "k/a"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  KernelRow bad_json = MakeKernel("b");
  bad_json.spec_json = "not json";
  EXPECT_EQ(store_->InsertKernel(bad_json, MakeEvent("kernel.created", "k/b")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->InsertKernel(MakeKernel(""), MakeEvent("kernel.created", "k/")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Count(), 0);
  EXPECT_TRUE(AllEvents().empty());
}

TEST_F(StoreTest, UpdateAndDeleteOfAMissingKernelAreNotFoundAndWriteNothing) {
  Status update = store_->UpdateKernel(MakeKernel("ghost"), MakeEvent("kernel.replaced", "k/g"));
  EXPECT_EQ(update.code(), StatusCode::kNotFound) << update.ToString();
  EXPECT_THAT(update.message(), HasSubstr("\"ghost\""));
  Status remove = store_->DeleteKernel("ghost", MakeEvent("kernel.deleted", "k/g"));
  EXPECT_EQ(remove.code(), StatusCode::kNotFound) << remove.ToString();
  EXPECT_TRUE(AllEvents().empty());
  EXPECT_EQ(Count(), 0);
}

TEST_F(StoreTest, UpdateOrDeleteWhoseEventFailsKeepsTheOldRow) {
  ASSERT_TRUE(store_->InsertKernel(MakeKernel("a"), MakeEvent("kernel.created", "kernel/a")).ok());
  Event bad = MakeEvent("kernel.replaced", "kernel/a");
  bad.detail_json = "[";
  EXPECT_EQ(store_->UpdateKernel(MakeKernel("a", 2), bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->DeleteKernel("a", bad).code(), StatusCode::kInvalidArgument);
  Result<std::optional<KernelRow>> got = store_->GetKernel("a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->generation, 1);
  EXPECT_EQ(AllEvents().size(), 1u);
}

TEST_F(StoreTest, DataSurvivesReopen) {
  ASSERT_TRUE(store_->InsertKernel(MakeKernel("a"), MakeEvent("kernel.created", "kernel/a")).ok());
  ASSERT_TRUE(store_->AppendEvent(MakeEvent("supervisor.started", "supervisor")).ok());
  Reopen();
  Result<std::optional<KernelRow>> got = store_->GetKernel("a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->env_hash, "hash-a");
  EXPECT_THAT(Kinds(AllEvents()), ElementsAre("kernel.created", "supervisor.started"));
  EXPECT_EQ(store_->SchemaVersion().value(), Store::LatestSchemaVersion());
}

TEST_F(StoreTest, TenThousandKernels) {
  constexpr int kKernels = 10000;
  for (int i = 0; i < kKernels; ++i) {
    std::string name = "k" + std::to_string(i);
    Status s =
        store_->InsertKernel(MakeKernel(name), MakeEvent("kernel.created", "kernel/" + name));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ(Count(), kKernels);
  Result<std::vector<KernelRow>> rows = store_->ListKernels();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), static_cast<size_t>(kKernels));
  for (size_t i = 1; i < rows->size(); ++i) {
    ASSERT_LT((*rows)[i - 1].name, (*rows)[i].name);
  }
  EXPECT_EQ(store_->GetKernel("k9999").value()->env_hash, "hash-k9999");
  EXPECT_EQ(AllEvents().size(), static_cast<size_t>(kKernels));
}

TEST_F(StoreTest, ListEventsBySubjectAfterIdAndLimit) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->AppendEvent(MakeEvent("e" + std::to_string(i), "kernel/a")).ok());
    ASSERT_TRUE(store_->AppendEvent(MakeEvent("f" + std::to_string(i), "kernel/b")).ok());
  }
  std::vector<Event> all = AllEvents();
  ASSERT_EQ(all.size(), 10u);

  EventFilter by_subject;
  by_subject.subject = "kernel/a";
  std::vector<Event> a = store_->ListEvents(by_subject).value();
  EXPECT_THAT(Kinds(a), ElementsAre("e0", "e1", "e2", "e3", "e4"));

  EventFilter after = by_subject;
  after.after_id = a[1].id;
  after.limit = 2;
  EXPECT_THAT(Kinds(store_->ListEvents(after).value()), ElementsAre("e2", "e3"));

  EventFilter any;
  any.after_id = all[7].id;
  EXPECT_THAT(Ids(store_->ListEvents(any).value()), ElementsAre(all[8].id, all[9].id));
  any.after_id = 0;
  any.limit = 3;
  EXPECT_THAT(Kinds(store_->ListEvents(any).value()), ElementsAre("e0", "f0", "e1"));

  EventFilter nobody;
  nobody.subject = "kernel/none";
  EXPECT_TRUE(store_->ListEvents(nobody).value().empty());

  for (int bad : {0, -1, Store::kMaxEventLimit + 1}) {
    EventFilter f;
    f.limit = bad;
    EXPECT_EQ(store_->ListEvents(f).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(StoreTest, ReadsLeaveNoSnapshotOpen) {
  for (int i = 0; i < 3; ++i) {
    std::string name = "k" + std::to_string(i);
    ASSERT_TRUE(store_->InsertKernel(MakeKernel(name), MakeEvent("kernel.created", name)).ok());
  }
  // Reads that stop before the last row would pin a WAL snapshot if the statement stayed open.
  ASSERT_TRUE(store_->GetKernel("k1").value().has_value());
  EventFilter one;
  one.limit = 1;
  ASSERT_EQ(store_->ListEvents(one).value().size(), 1u);

  SQLite::Database other(path_.string(), SQLite::OPEN_READWRITE);
  SQLite::Statement checkpoint(other, "PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_TRUE(checkpoint.executeStep());
  EXPECT_EQ(checkpoint.getColumn(0).getInt(), 0) << "a reader blocked the checkpoint";
}

TEST_F(StoreTest, RefusesASchemaNewerThanTheBinary) {
  ASSERT_TRUE(store_->InsertKernel(MakeKernel("a"), MakeEvent("kernel.created", "kernel/a")).ok());
  store_.reset();
  const int newer = Store::LatestSchemaVersion() + 1;
  {
    SQLite::Database raw(path_.string(), SQLite::OPEN_READWRITE);
    raw.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (" +
             std::to_string(newer) + ", 0)");
  }
  Result<std::unique_ptr<Store>> refused = Store::Open(path_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("database schema version " + std::to_string(newer) +
                        " is newer than this binary (" +
                        std::to_string(Store::LatestSchemaVersion()) + ")"));
  EXPECT_THAT(refused.status().message(), HasSubstr(path_.string()));
  EXPECT_FALSE(Store::OpenAtVersion(path_, 0).ok());

  // The refusal changed nothing: back at a known version, the data is all there.
  {
    SQLite::Database raw(path_.string(), SQLite::OPEN_READWRITE);
    raw.exec("DELETE FROM schema_migrations WHERE version = " + std::to_string(newer));
  }
  Reopen();
  EXPECT_TRUE(store_->GetKernel("a").value().has_value());
}

TEST_F(StoreTest, OpenAtVersionRejectsUnknownVersions) {
  EXPECT_EQ(Store::OpenAtVersion(dir_ / "x.db", -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Store::OpenAtVersion(dir_ / "x.db", Store::LatestSchemaVersion() + 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, AFailedMigrationLeavesTheDatabaseAtItsVersion) {
  fs::path path = dir_ / "clash.db";
  {
    Result<std::unique_ptr<Store>> empty = Store::OpenAtVersion(path, 0);
    ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  }
  {
    // A table in the way makes migration 1 fail halfway through its SQL.
    SQLite::Database raw(path.string(), SQLite::OPEN_READWRITE);
    raw.exec("CREATE TABLE events (x INTEGER)");
  }
  Result<std::unique_ptr<Store>> failed = Store::Open(path);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr(path.string()));
  EXPECT_THAT(failed.status().message(), HasSubstr("schema migration 1"));
  SQLite::Database raw(path.string(), SQLite::OPEN_READONLY);
  EXPECT_FALSE(raw.tableExists("kernels"));
  EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM schema_migrations").getInt(), 0);
}

// Seeds a database at schema version v with raw SQL written for that version (the Store's own
// statements follow the latest schema), and checks through the Store after the upgrade that the
// data is intact. Adding a migration means adding an entry here.
struct VersionFixture {
  std::function<void(SQLite::Database&)> seed;
  std::function<void(Store&)> verify;
};

std::vector<VersionFixture> VersionFixtures() {
  return {
      // v0: an empty database; nothing to keep.
      {[](SQLite::Database&) {}, [](Store&) {}},
      // v1: kernels and events.
      {[](SQLite::Database& db) {
         db.exec(R"sql(
INSERT INTO kernels (name, type, spec_json, env_hash, status, last_error, generation,
                     created_at, updated_at)
VALUES ('old', 'PROCESS', '{"name":"old"}', 'h1', 'ready', '', 3, 10, 20);
INSERT INTO events (ts, kind, subject, actor, detail_json)
VALUES (30, 'kernel.created', 'kernel/old', 'rest', '{}');
)sql");
       },
       [](Store& store) {
         Result<std::optional<KernelRow>> old = store.GetKernel("old");
         ASSERT_TRUE(old.ok() && old->has_value()) << old.status().ToString();
         EXPECT_EQ((*old)->env_hash, "h1");
         EXPECT_EQ((*old)->generation, 3);
         EXPECT_EQ((*old)->updated_at_ms, 20);
         EventFilter filter;
         filter.subject = "kernel/old";
         std::vector<Event> events = store.ListEvents(filter).value();
         ASSERT_EQ(events.size(), 1u);
         EXPECT_EQ(events[0].ts_ms, 30);
       }},
      // v2: envs.
      {[](SQLite::Database& db) {
         db.exec(R"sql(
INSERT INTO envs (hash, python_version, path, status, size_bytes, created_at, updated_at,
                  last_used_at)
VALUES ('h1', '3.11', '/x/envs/h1', 'ready', 1234, 1, 2, 3);
)sql");
       },
       [](Store& store) {
         Result<std::optional<EnvRow>> env = store.GetEnv("h1");
         ASSERT_TRUE(env.ok() && env->has_value()) << env.status().ToString();
         EXPECT_EQ((*env)->status, "ready");
         EXPECT_EQ((*env)->size_bytes, 1234);
         EXPECT_EQ((*env)->last_used_at_ms, 3);
       }},
      // v3: workers.
      {[](SQLite::Database& db) {
         db.exec(R"sql(
INSERT INTO workers (id, kernel, state, pid, process_start_ticks, token_hash, restarts,
                     env_json, created_at, updated_at, started_at)
VALUES ('old-w1', 'old', 'running', 321, 4567, 'abcd', 2, '{"pythonVersion":"3.11.2"}',
        5, 6, 7);
)sql");
       },
       [](Store& store) {
         Result<std::optional<WorkerRow>> w = store.GetWorker("old-w1");
         ASSERT_TRUE(w.ok() && w->has_value()) << w.status().ToString();
         EXPECT_EQ((*w)->state, "running");
         EXPECT_EQ((*w)->pid, 321);
         EXPECT_EQ((*w)->process_start_ticks, 4567);
         EXPECT_EQ((*w)->restarts, 2);
         EXPECT_EQ((*w)->started_at_ms, 7);
       }},
      // v4: kernels without a status of their own; envs may be pending.
      {[](SQLite::Database& db) {
         db.exec(R"sql(
INSERT INTO kernels (name, type, spec_json, env_hash, generation, created_at, updated_at,
                     workers_stopped)
VALUES ('v4', 'UNMANAGED', '{"name":"v4"}', '', 1, 40, 41, 1);
INSERT INTO envs (hash, python_version, path, status, created_at, updated_at, last_used_at)
VALUES ('h4', '3.12', '/x/envs/h4', 'pending', 1, 2, 3);
)sql");
       },
       [](Store& store) {
         KernelRow k = store.GetKernel("v4").value().value();
         EXPECT_EQ(k.type, "UNMANAGED");
         EXPECT_TRUE(k.workers_stopped);
         EXPECT_EQ(store.GetEnv("h4").value().value().status, "pending");
       }},
      // v5: worker API keys.
      {[](SQLite::Database& db) {
         db.exec("INSERT INTO keys (name, digest, created_at) VALUES ('laptop', '" +
                 std::string(64, 'd') + "', 50)");
       },
       [](Store& store) {
         auto key = store.FindKeyByDigest(std::string(64, 'd')).value();
         ASSERT_TRUE(key.has_value());
         EXPECT_EQ(key->name, "laptop");
         EXPECT_EQ(key->last_used_at_ms, 0);
       }},
  };
}

TEST_F(StoreTest, KeysAreStoredAsDigestsFoundByDigestAndRevoked) {
  KeyRow k{"laptop", std::string(64, 'a'), 10, 0};
  ASSERT_TRUE(store_->InsertKey(k, MakeEvent("key.created", "key/laptop")).ok());
  EXPECT_EQ(store_->InsertKey(k, MakeEvent("key.created", "key/laptop")).code(),
            StatusCode::kAlreadyExists);
  KeyRow bad{"short", "abc", 10, 0};
  EXPECT_EQ(store_->InsertKey(bad, MakeEvent("key.created", "key/short")).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->TouchKey("laptop", 99).ok());
  auto found = store_->FindKeyByDigest(std::string(64, 'a')).value();
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->last_used_at_ms, 99);
  EXPECT_FALSE(store_->FindKeyByDigest(std::string(64, 'b')).value().has_value());
  EXPECT_EQ(store_->ListKeys().value().size(), 1u);
  ASSERT_TRUE(store_->DeleteKey("laptop", MakeEvent("key.revoked", "key/laptop")).ok());
  EXPECT_EQ(store_->DeleteKey("laptop", MakeEvent("key.revoked", "key/laptop")).code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(store_->FindKeyByDigest(std::string(64, 'a')).value().has_value());
  EXPECT_THAT(Kinds(AllEvents()), ElementsAre("key.created", "key.revoked"));
}

TEST_F(StoreTest, EnvRowsAreWrittenWithTheirEventAndLeaveKernelsAlone) {
  KernelRow a = MakeKernel("a");
  KernelRow b = MakeKernel("b");
  b.env_hash = a.env_hash;
  KernelRow c = MakeKernel("c");
  for (const KernelRow* k : {&a, &b, &c}) {
    ASSERT_TRUE(store_->InsertKernel(*k, MakeEvent("kernel.created", "kernel/" + k->name)).ok());
  }
  EXPECT_EQ(store_->CountKernelsWithEnv(a.env_hash).value(), 2);
  EnvRow env;
  env.hash = a.env_hash;
  env.python_version = "3.11";
  env.path = "/envs/x";
  env.status = "pending";
  env.created_at_ms = env.updated_at_ms = env.last_used_at_ms = 5000;
  ASSERT_TRUE(store_->PutEnv(env, MakeEvent("env.queued", "env/" + env.hash)).ok());
  env.status = "failed";
  env.last_error = "No matching distribution found for foo==9.9";
  ASSERT_TRUE(store_->PutEnv(env, MakeEvent("env.failed", "env/" + env.hash)).ok());
  EXPECT_EQ(store_->GetEnv(a.env_hash).value()->last_error, env.last_error);
  EXPECT_EQ(store_->GetKernel("a").value()->updated_at_ms, 1000);  // kernels hold no copy
  env.status = "bogus";
  EXPECT_EQ(store_->PutEnv(env, MakeEvent("env.x", "env/x")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetEnv(a.env_hash).value()->status, "failed");  // nothing half-written
  ASSERT_TRUE(store_->TouchEnv(a.env_hash, 9000).ok());
  EXPECT_EQ(store_->GetEnv(a.env_hash).value()->last_used_at_ms, 9000);
  ASSERT_EQ(store_->ListEnvs().value().size(), 1u);
  ASSERT_TRUE(store_->DeleteEnv(a.env_hash, MakeEvent("env.deleted", "env/x")).ok());
  EXPECT_FALSE(store_->GetEnv(a.env_hash).value().has_value());
  EXPECT_THAT(Kinds(AllEvents()), ElementsAre("kernel.created", "kernel.created",
                                              "kernel.created", "env.queued", "env.failed",
                                              "env.deleted"));
}

TEST_F(StoreTest, UpdateKernelsWritesAllOrNothingWithOneEvent) {
  for (const char* name : {"a", "b"}) {
    ASSERT_TRUE(store_->InsertKernel(MakeKernel(name), MakeEvent("kernel.created", "k")).ok());
  }
  KernelRow a = MakeKernel("a", 2);
  KernelRow ghost = MakeKernel("ghost", 2);
  EXPECT_EQ(store_->UpdateKernels({a, ghost}, MakeEvent("kernels.rehashed", "supervisor")).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetKernel("a").value()->generation, 1);  // rolled back
  KernelRow b = MakeKernel("b", 5);
  ASSERT_TRUE(store_->UpdateKernels({a, b}, MakeEvent("kernels.rehashed", "supervisor")).ok());
  EXPECT_EQ(store_->GetKernel("a").value()->generation, 2);
  EXPECT_EQ(store_->GetKernel("b").value()->generation, 5);
  EXPECT_THAT(Kinds(AllEvents()),
              ElementsAre("kernel.created", "kernel.created", "kernels.rehashed"));
}

TEST_F(StoreTest, EveryVersionUpgradesToLatestKeepingItsData) {
  std::vector<VersionFixture> fixtures = VersionFixtures();
  ASSERT_EQ(static_cast<int>(fixtures.size()), Store::LatestSchemaVersion() + 1)
      << "add a VersionFixture for the new schema version";
  for (int v = 0; v < Store::LatestSchemaVersion(); ++v) {
    SCOPED_TRACE("from version " + std::to_string(v));
    fs::path path = dir_ / ("v" + std::to_string(v) + ".db");
    // Each fixture's rows are written at its own version, then the database moves up one step.
    for (int seeded = 0; seeded <= v; ++seeded) {
      {
        Result<std::unique_ptr<Store>> old = Store::OpenAtVersion(path, seeded);
        ASSERT_TRUE(old.ok()) << old.status().ToString();
        ASSERT_EQ((*old)->SchemaVersion().value(), seeded);
      }
      SQLite::Database raw(path.string(), SQLite::OPEN_READWRITE);
      fixtures[static_cast<size_t>(seeded)].seed(raw);
    }
    Result<std::unique_ptr<Store>> upgraded = Store::Open(path);
    ASSERT_TRUE(upgraded.ok()) << upgraded.status().ToString();
    Store& store = **upgraded;
    EXPECT_EQ(store.SchemaVersion().value(), Store::LatestSchemaVersion());
    for (int seeded = 0; seeded <= v; ++seeded) fixtures[static_cast<size_t>(seeded)].verify(store);
    // The upgraded database takes writes like a new one.
    ASSERT_TRUE(store.InsertKernel(MakeKernel("new"), MakeEvent("kernel.created", "k/new")).ok());
    EXPECT_TRUE(store.GetKernel("new").value().has_value());
    EXPECT_EQ(store.IntegrityCheck().value(), "ok");
  }
}

TEST_F(StoreTest, OpeningAnUpToDateDatabaseAppliesNothing) {
  store_.reset();
  {
    SQLite::Database raw(path_.string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM schema_migrations").getInt(),
              Store::LatestSchemaVersion());
  }
  Reopen();
  SQLite::Database raw(path_.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM schema_migrations").getInt(),
            Store::LatestSchemaVersion());
}

}  // namespace
}  // namespace gsk::store
