// SystemService: what the REST API says about the daemon itself: its status (version, uptime,
// paths, counts, interpreters) and the audit trail of events. Transport-free, so that the router
// reaches no store. Not thread-safe: core thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "supervisor/python/interpreters.h"
#include "supervisor/store/store.h"

namespace gsk::service {

// What the daemon knows about itself once it is set up.
struct DaemonFacts {
  std::string version;
  int pid = 0;
  int64_t started_at_ms = 0;     // Unix ms
  int64_t started_mono_ms = 0;   // Clock::MonotonicMillis at start, for the uptime
  std::string state_dir;
  std::string listen;            // HOST:PORT as bound
  std::string admin_socket;
  std::string worker_socket;
  std::vector<python::Interpreter> interpreters;
};

struct DaemonStatus {
  DaemonFacts facts;
  int64_t uptime_seconds = 0;
  int schema_version = -1;
  int64_t kernels = 0;
  int64_t workers = 0;
  int running_builds = 0;
};

// Counts that other components own, read when the status is asked.
struct StatusSources {
  std::function<int64_t()> kernels;
  std::function<int64_t()> workers;
  std::function<int()> running_builds;
};

class SystemService {
 public:
  // `store` and `clock` must outlive the service.
  SystemService(store::Store& store, const Clock& clock, DaemonFacts facts, StatusSources sources);

  DaemonStatus Describe();
  // The audit trail, oldest first. kInvalidArgument unless 1 <= limit <= Store::kMaxEventLimit.
  Result<std::vector<store::Event>> Events(const store::EventFilter& filter);
  // Appends a supervisor event ("supervisor.started", ...); failures are only logged.
  void Record(const std::string& kind, const std::string& detail_json);

  DaemonFacts& facts() { return facts_; }

 private:
  store::Store& store_;
  const Clock& clock_;
  DaemonFacts facts_;
  StatusSources sources_;
};

}  // namespace gsk::service
