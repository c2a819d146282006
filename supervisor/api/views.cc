#include "supervisor/api/views.h"

#include <nlohmann/json.hpp>

#include "base/clock.h"

namespace gsk::api {
namespace {

using nlohmann::json;

json Time(int64_t ms) { return ms > 0 ? json(FormatRfc3339(ms)) : json(); }

json TextOrNull(const std::string& text) { return text.empty() ? json() : json(text); }

// The document of a kernel kept with a problem is shown as it was stored, env values masked.
json StoredDocument(const service::Kernel& k) {
  json doc = json::parse(k.document, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return json::object({{"name", k.name()}});
  if (auto env = doc.find("env"); env != doc.end() && env->is_object()) {
    for (auto& [key, value] : env->items()) {
      if (value.is_string()) value = spec::MaskSecret(value.get<std::string>());
    }
  }
  return doc;
}

}  // namespace

json KernelView(const service::Kernel& k, const service::KernelState& state,
                int running_workers) {
  json doc = k.problem.empty() ? spec::ToJson(k.spec, /*redact_env=*/true) : StoredDocument(k);
  doc["status"] = service::KernelStatusName(state.status);
  doc["envHash"] = k.env_hash;
  doc["lastError"] = TextOrNull(state.last_error);
  doc["generation"] = k.generation;
  doc["started"] = !k.workers_stopped;
  doc["runningWorkers"] = running_workers;
  doc["createdAt"] = FormatRfc3339(k.created_at_ms);
  doc["updatedAt"] = FormatRfc3339(k.updated_at_ms);
  if (state.progress) {
    const envs::BuildProgress& p = *state.progress;
    doc["build"] = {{"phase", p.phase},
                    {"current", p.current},
                    {"collected", p.collected},
                    {"toInstall", p.to_install},
                    {"installed", p.installed}};
  }
  return doc;
}

json WorkerView(const workers::WorkerInfo& w, bool environment, int64_t now_ms) {
  bool running = w.state == workers::WorkerState::kRunning;
  json j = {{"id", w.id},
            {"kernel", w.kernel},
            {"managed", true},
            {"state", workers::StateName(w.state)},
            {"pid", w.pid},
            {"connected", w.connected},
            {"restarts", w.restarts},
            {"quickFailures", w.quick_failures},
            {"exit", w.exit_description},
            {"lastError", TextOrNull(w.last_error)},
            {"pythonVersion", w.python_version},
            {"uptimeSeconds", running && w.started_at_ms > 0 ? (now_ms - w.started_at_ms) / 1000 : 0},
            {"startedAt", Time(running ? w.started_at_ms : 0)},
            {"createdAt", Time(w.created_at_ms)},
            {"updatedAt", Time(w.updated_at_ms)},
            {"logFile", w.log_file}};
  if (environment) {
    json env = json::parse(w.env_json, nullptr, /*allow_exceptions=*/false);
    j["environment"] = env.is_object() ? env : json::object();
  }
  return j;
}

json RemoteWorkerView(const relay::RemoteWorkerInfo& w, bool environment, int64_t now_ms) {
  json j = {{"id", w.hello.worker_id},
            {"kernel", w.hello.name},
            {"managed", false},
            {"state", "running"},
            {"active", w.active},
            {"pid", w.pid},
            {"connected", true},
            {"restarts", 0},
            {"quickFailures", 0},
            {"exit", ""},
            {"lastError", nullptr},
            {"pythonVersion", w.hello.python_version},
            {"uptimeSeconds", w.connected_at_ms > 0 ? (now_ms - w.connected_at_ms) / 1000 : 0},
            {"startedAt", Time(w.connected_at_ms)},
            {"createdAt", Time(w.connected_at_ms)},
            {"updatedAt", Time(w.last_seen_ms)},
            {"logFile", ""},
            {"remoteAddress", w.hello.remote},
            {"hostname", w.hostname},
            {"keyName", w.hello.key_name}};
  if (environment) {
    json env = json::parse(w.hello.env_json, nullptr, /*allow_exceptions=*/false);
    j["environment"] = env.is_object() ? env : json::object();
  }
  return j;
}

json KeyView(const store::KeyRow& k) {
  return {{"name", k.name}, {"createdAt", Time(k.created_at_ms)}, {"lastUsedAt", Time(k.last_used_at_ms)}};
}

json EventsView(const std::vector<store::Event>& events) {
  json out = json::array();
  for (const auto& e : events) {
    json detail = json::parse(e.detail_json, nullptr, /*allow_exceptions=*/false);
    if (detail.is_discarded()) detail = json::object();
    out.push_back({{"id", e.id},
                   {"time", FormatRfc3339(e.ts_ms)},
                   {"kind", e.kind},
                   {"subject", e.subject},
                   {"actor", e.actor},
                   {"detail", std::move(detail)}});
  }
  return out;
}

std::string PredictView(service::PredictAnswer a) {
  // The result object without its closing brace (nor the blanks before it), where it lies in
  // the reply frame; then ours. Only the short head of the frame moves: no new allocation
  // (the decoder left room to grow) and no copy of the predictions elsewhere.
  std::string out = std::move(a.reply);
  std::string_view result = std::string_view(out).substr(a.result_begin, a.result_size);
  size_t close = result.rfind('}');
  size_t last = close == std::string_view::npos || close == 0
                    ? std::string_view::npos
                    : result.find_last_not_of(" \t\r\n", close - 1);
  bool empty = last == std::string_view::npos || result[last] == '{';
  if (last == std::string_view::npos) {
    out = "{";
  } else {
    out.resize(a.result_begin + last + 1);
    out.erase(0, a.result_begin);
  }
  std::string worker = json(a.worker).dump();
  out.reserve(out.size() + worker.size() + 64);
  out += empty ? "\"worker\":" : ",\"worker\":";
  out += worker;
  out += ",\"durationMs\":" + std::to_string(a.duration_ms);
  out += ",\"queuedMs\":" + std::to_string(a.queued_ms) + "}";
  return out;
}

json LoadView(const service::LoadAnswer& a) {
  json workers = json::array();
  int loaded = 0;
  for (const service::WorkerLoad& w : a.workers) {
    json entry = w.status.ok() ? json::parse(w.result, nullptr, false) : json::object();
    if (!entry.is_object()) entry = json::object();
    entry["worker"] = w.worker;
    if (w.status.ok()) {
      ++loaded;
    } else {
      std::vector<Status::Detail> details = w.status.details();
      entry["error"] = ErrorView(StatusCodeName(w.status.code()), w.status.message(), details)["error"];
    }
    workers.push_back(std::move(entry));
  }
  return {{"model", a.model}, {"loaded", loaded}, {"workers", std::move(workers)}};
}

json StatusView(const service::DaemonStatus& s) {
  json interpreters = json::array();
  for (const auto& it : s.facts.interpreters) {
    json j = {{"version", it.version},
              {"path", it.path.string()},
              {"source", it.source},
              {"usable", it.usable()}};
    if (!it.usable()) j["problem"] = it.problem;
    interpreters.push_back(std::move(j));
  }
  return {{"version", s.facts.version},
          {"pid", s.facts.pid},
          {"startedAt", FormatRfc3339(s.facts.started_at_ms)},
          {"uptimeSeconds", s.uptime_seconds},
          {"stateDir", s.facts.state_dir},
          {"listen", s.facts.listen},
          {"adminSocket", s.facts.admin_socket},
          {"workerSocket", s.facts.worker_socket},
          {"workers", s.workers},
          {"schemaVersion", s.schema_version},
          {"kernels", s.kernels},
          {"runningBuilds", s.running_builds},
          {"interpreters", std::move(interpreters)}};
}

json ErrorView(std::string_view code, std::string_view message,
               const std::vector<Status::Detail>& details) {
  json d = json::object();
  for (const auto& [key, value] : details) d[key] = value;
  return {{"error", {{"code", code}, {"message", message}, {"details", std::move(d)}}}};
}

}  // namespace gsk::api
