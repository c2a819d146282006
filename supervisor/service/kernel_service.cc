#include "supervisor/service/kernel_service.h"

#include "supervisor/service/file_chunk.h"

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

namespace gsk::service {

KernelService::KernelService(store::Store* store, const Clock* clock, ServiceOptions options,
                             envs::Environments* envs)
    : store_(store), clock_(clock), options_(std::move(options)), envs_(envs) {}

void KernelService::EnsureEnv(const spec::KernelSpec& spec, const std::string& hash,
                              bool retry_failed, bool every_kernel) {
  if (envs_ == nullptr || spec.type != spec::KernelType::kProcess) return;
  envs::EnvRequest request;
  request.hash = hash;
  if (!every_kernel) request.kernel = spec.name;
  request.python_minor = spec.python_version;
  for (const auto& r : spec.EffectiveRequirements()) request.requirements.push_back(r.Canonical());
  envs_->Ensure(request, retry_failed);
}

Result<store::KernelRow> KernelService::Reload(const std::string& name) {
  GSK_ASSIGN_OR_RETURN(auto row, store_->GetKernel(name));
  if (!row) return NotFound("kernel \"" + name + "\" was deleted meanwhile");
  return std::move(*row);
}

store::KernelRow KernelService::NewRow(const spec::KernelSpec& spec,
                                       std::string spec_json) const {
  store::KernelRow row;
  row.name = spec.name;
  row.type = std::string(spec::KernelTypeName(spec.type));
  row.spec_json = std::move(spec_json);
  row.env_hash = spec::EnvHash(spec, options_.index_fingerprint);
  row.status = "pending";
  row.generation = 1;
  row.created_at_ms = row.updated_at_ms = clock_->NowUnixMillis();
  return row;
}

store::Event KernelService::MakeEvent(std::string kind, const std::string& name,
                                      const Caller& caller, const store::KernelRow& row) const {
  store::Event e;
  e.ts_ms = clock_->NowUnixMillis();
  e.kind = std::move(kind);
  e.subject = "kernel/" + name;
  e.actor = caller.actor;
  nlohmann::json detail = {{"type", row.type}, {"generation", row.generation}};
  if (!row.env_hash.empty()) detail["envHash"] = row.env_hash;
  e.detail_json = detail.dump();
  return e;
}

Result<WriteOutcome> KernelService::Create(std::string_view body, const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(spec::KernelSpec spec, spec::ParseKernelDocument(body, options_.parse));
  std::string spec_json = spec::ToJson(spec, /*redact_env=*/false).dump();
  GSK_ASSIGN_OR_RETURN(auto existing, store_->GetKernel(spec.name));
  if (existing) {
    if (existing->spec_json == spec_json) {
      return WriteOutcome{std::move(*existing), false, spec.warnings};
    }
    return AlreadyExists("kernel \"" + spec.name +
                         "\" already exists with a different document; delete it first or "
                         "replace it with PUT /api/v1/kernels/" + spec.name)
        .WithDetail("field", "name");
  }
  GSK_ASSIGN_OR_RETURN(int64_t count, store_->CountKernels());
  if (count >= options_.max_kernels) {
    return ResourceExhausted("the supervisor already holds " + std::to_string(count) +
                             " kernels, the configured maximum; delete unused kernels or raise "
                             "[limits] max_kernels");
  }
  store::KernelRow row = NewRow(spec, std::move(spec_json));
  GSK_RETURN_IF_ERROR(store_->InsertKernel(row, MakeEvent("kernel.created", row.name, caller, row)));
  EnsureEnv(spec, row.env_hash, /*retry_failed=*/true);
  GSK_ASSIGN_OR_RETURN(row, Reload(row.name));  // the env may have been ready already
  Changed(row.name);
  return WriteOutcome{std::move(row), true, std::move(spec.warnings)};
}

Result<WriteOutcome> KernelService::Replace(const std::string& name, std::string_view body,
                                            const Caller& caller) {
  GSK_RETURN_IF_ERROR(spec::ValidateKernelName(name));
  GSK_ASSIGN_OR_RETURN(auto existing, store_->GetKernel(name));
  if (!existing) {
    return NotFound("kernel \"" + name + "\" does not exist; create it with POST /api/v1/kernels")
        .WithDetail("name", name);
  }
  // The name comes from the path; a body that names another kernel is a mistake, not a rename.
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    auto it = doc.find("name");
    if (it != doc.end() && !(it->is_string() && it->get<std::string>() == name)) {
      return InvalidArgument("name: the document names another kernel than the path (\"" + name +
                             "\"); kernels cannot be renamed, create a new one instead")
          .WithDetail("field", "name");
    }
    doc["name"] = name;
  }
  std::string patched = doc.is_object() ? doc.dump() : std::string(body);
  GSK_ASSIGN_OR_RETURN(spec::KernelSpec spec, spec::ParseKernelDocument(patched, options_.parse));
  std::string spec_json = spec::ToJson(spec, /*redact_env=*/false).dump();
  if (spec_json == existing->spec_json) {
    return WriteOutcome{std::move(*existing), false, std::move(spec.warnings)};
  }
  store::KernelRow row = NewRow(spec, std::move(spec_json));
  row.created_at_ms = existing->created_at_ms;
  row.generation = existing->generation + 1;
  row.workers_stopped = existing->workers_stopped;
  // The environment only needs to be built again when what determines it changed.
  if (row.env_hash == existing->env_hash) {
    row.status = existing->status;
    row.last_error = existing->last_error;
  }
  GSK_RETURN_IF_ERROR(store_->UpdateKernel(row, MakeEvent("kernel.replaced", name, caller, row)));
  if (row.env_hash != existing->env_hash) {
    EnsureEnv(spec, row.env_hash, /*retry_failed=*/true);
    if (envs_ != nullptr) envs_->Release(existing->env_hash);
    GSK_ASSIGN_OR_RETURN(row, Reload(name));
  }
  Changed(name);
  return WriteOutcome{std::move(row), true, std::move(spec.warnings)};
}

Result<store::KernelRow> KernelService::Get(const std::string& name) {
  GSK_RETURN_IF_ERROR(spec::ValidateKernelName(name));
  GSK_ASSIGN_OR_RETURN(auto row, store_->GetKernel(name));
  if (!row) return NotFound("kernel \"" + name + "\" does not exist").WithDetail("name", name);
  return std::move(*row);
}

Result<std::vector<store::KernelRow>> KernelService::List() { return store_->ListKernels(); }

Status KernelService::Delete(const std::string& name, const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(store::KernelRow row, Get(name));
  GSK_RETURN_IF_ERROR(store_->DeleteKernel(name, MakeEvent("kernel.deleted", name, caller, row)));
  if (envs_ != nullptr && row.type == "PROCESS") envs_->Release(row.env_hash);
  Changed(name);
  return Status::Ok();
}

Result<store::KernelRow> KernelService::SetWorkersStopped(const std::string& name, bool stopped,
                                                          const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(store::KernelRow row, Get(name));
  if (row.type != "PROCESS") {
    return FailedPrecondition("kernel \"" + name + "\" is unmanaged: its workers are started "
                              "by their users with `giskard worker start`");
  }
  if (row.workers_stopped != stopped) {
    row.workers_stopped = stopped;
    row.updated_at_ms = clock_->NowUnixMillis();
    GSK_RETURN_IF_ERROR(store_->UpdateKernel(
        row, MakeEvent(stopped ? "kernel.stopped" : "kernel.started", name, caller, row)));
  }
  Changed(name);
  return row;
}

void KernelService::Changed(const std::string& name) {
  if (on_change_) on_change_(name);
}

Result<store::KernelRow> KernelService::Rebuild(const std::string& name, const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(store::KernelRow row, Get(name));
  if (row.type != "PROCESS") {
    return FailedPrecondition("kernel \"" + name + "\" is unmanaged: its environment belongs to "
                              "the user who runs its workers");
  }
  if (envs_ == nullptr) return FailedPrecondition("environment builds are disabled");
  GSK_ASSIGN_OR_RETURN(spec::KernelSpec spec,
                       spec::ParseKernelDocument(row.spec_json, options_.parse));
  envs::EnvRequest request;
  request.hash = row.env_hash;
  request.python_minor = spec.python_version;
  for (const auto& r : spec.EffectiveRequirements()) request.requirements.push_back(r.Canonical());
  GSK_RETURN_IF_ERROR(envs_->Rebuild(request));
  GSK_RETURN_IF_ERROR(store_->AppendEvent(MakeEvent("kernel.rebuild_requested", name, caller, row)));
  Changed(name);
  return Reload(name);
}

Result<KernelService::LogChunk> KernelService::BuildLog(const std::string& name, uint64_t offset,
                                                        uint64_t limit) {
  GSK_ASSIGN_OR_RETURN(store::KernelRow row, Get(name));
  LogChunk chunk;
  chunk.next_offset = offset;
  chunk.complete = row.status == "ready" || row.status == "failed";
  if (envs_ == nullptr || row.type != "PROCESS") return chunk;
  FileChunk read = ReadFileChunk(envs_->LogPath(row.env_hash), offset, limit);
  chunk.text = std::move(read.text);
  chunk.next_offset = read.next_offset;
  chunk.size = read.size;
  return chunk;
}

void KernelService::ResumeEnvironments() {
  auto rows = store_->ListKernels();
  if (!rows.ok() || envs_ == nullptr) return;
  // Once per env: Ensure updates every kernel of the hash, so once per kernel would cost
  // O(kernels^2) at startup when thousands of kernels share an env.
  std::set<std::string> done;
  for (const auto& row : *rows) {
    if (row.type != "PROCESS" || done.count(row.env_hash) != 0) continue;
    auto spec = spec::ParseKernelDocument(row.spec_json, options_.parse);
    if (!spec.ok()) continue;
    done.insert(row.env_hash);
    EnsureEnv(*spec, row.env_hash, /*retry_failed=*/false, /*every_kernel=*/true);
  }
}

std::optional<envs::BuildProgress> KernelService::Progress(const store::KernelRow& row) const {
  if (envs_ == nullptr || row.status == "ready" || row.status == "failed") return std::nullopt;
  return envs_->Progress(row.env_hash);
}

std::string MaskSecret(std::string_view value) {
  if (value.size() >= 12) return std::string(value.substr(0, 3)) + "****";
  return "****";
}

nlohmann::json KernelToJson(const store::KernelRow& row,
                            const std::optional<envs::BuildProgress>& progress) {
  nlohmann::json doc = nlohmann::json::parse(row.spec_json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) doc = nlohmann::json::object({{"name", row.name}});
  if (auto env = doc.find("env"); env != doc.end() && env->is_object()) {
    for (auto& [key, value] : env->items()) {
      if (value.is_string()) value = MaskSecret(value.get<std::string>());
    }
  }
  doc["status"] = row.status;
  doc["envHash"] = row.env_hash;
  doc["lastError"] = row.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(row.last_error);
  doc["generation"] = row.generation;
  doc["started"] = !row.workers_stopped;
  doc["createdAt"] = FormatRfc3339(row.created_at_ms);
  doc["updatedAt"] = FormatRfc3339(row.updated_at_ms);
  if (progress) {
    doc["build"] = {{"phase", progress->phase},
                    {"current", progress->current},
                    {"collected", progress->collected},
                    {"toInstall", progress->to_install},
                    {"installed", progress->installed}};
  }
  return doc;
}

}  // namespace gsk::service
