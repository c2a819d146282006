#include "supervisor/service/system_service.h"

#include <spdlog/spdlog.h>

namespace gsk::service {

SystemService::SystemService(store::Store& store, const Clock& clock, DaemonFacts facts,
                             StatusSources sources)
    : store_(store), clock_(clock), facts_(std::move(facts)), sources_(std::move(sources)) {}

DaemonStatus SystemService::Describe() {
  DaemonStatus s;
  s.facts = facts_;
  s.uptime_seconds = (clock_.MonotonicMillis() - facts_.started_mono_ms) / 1000;
  Result<int> schema = store_.SchemaVersion();
  s.schema_version = schema.ok() ? *schema : -1;
  if (sources_.kernels) s.kernels = sources_.kernels();
  if (sources_.workers) s.workers = sources_.workers();
  if (sources_.running_builds) s.running_builds = sources_.running_builds();
  return s;
}

Result<std::vector<store::Event>> SystemService::Events(const store::EventFilter& filter) {
  return store_.ListEvents(filter);
}

void SystemService::Record(const std::string& kind, const std::string& detail_json) {
  store::Event e{0, clock_.NowUnixMillis(), kind, "supervisor", "supervisor", detail_json};
  if (gsk::Status s = store_.AppendEvent(e); !s.ok()) {
    spdlog::warn("event=store.write_failed kind={} error=\"{}\"", kind, s.message());
  }
}

}  // namespace gsk::service
