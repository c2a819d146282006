#include "supervisor/service/kernel_service.h"

#include <climits>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace gsk::service {
namespace {

// How documents stored by an earlier version are read when today's rules refuse them: whatever
// pip options, URLs or paths they hold, any worker count, any version label.
spec::ParseOptions Permissive() {
  spec::ParseOptions o;
  o.allow_pip_options = o.allow_direct_urls = o.allow_local_paths = true;
  o.max_workers = INT_MAX;
  o.keep_any_version = true;
  return o;
}

Status NotFoundKernel(const std::string& name) {
  return NotFound("kernel \"" + name + "\" does not exist").WithDetail("name", name);
}

}  // namespace

std::string_view KernelStatusName(KernelStatus status) {
  switch (status) {
    case KernelStatus::kPending: return "pending";
    case KernelStatus::kBuilding: return "building";
    case KernelStatus::kReady: return "ready";
    case KernelStatus::kFailed: return "failed";
  }
  return "pending";
}

KernelService::KernelService(store::Store& store, const Clock& clock, envs::Environments& envs,
                             ServiceOptions options)
    : store_(store), clock_(clock), envs_(envs), options_(std::move(options)) {}

Kernel KernelService::FromSpec(spec::KernelSpec spec) const {
  Kernel k;
  k.document = spec::ToJson(spec, /*redact_env=*/false).dump();
  k.env_hash = spec::EnvHash(spec, options_.index_fingerprint);
  k.spec = std::move(spec);
  return k;
}

Kernel KernelService::FromRow(const store::KernelRow& row) const {
  Result<spec::KernelSpec> spec = spec::ParseKernelDocument(row.spec_json, options_.parse);
  std::string problem;
  if (!spec.ok()) {
    problem = "the stored document breaks the rules of this supervisor (" +
              spec.status().message() + "); replace it (PUT) or delete the kernel";
    spec = spec::ParseKernelDocument(row.spec_json, Permissive());
  }
  Kernel k;
  if (spec.ok()) {
    k = FromSpec(std::move(spec).value());
  } else {
    k.spec.name = row.name;  // unreadable even leniently: keep what the row says
    k.spec.type = row.type == "UNMANAGED" ? spec::KernelType::kUnmanaged : spec::KernelType::kProcess;
    k.env_hash = row.env_hash;
  }
  k.problem = std::move(problem);
  if (!k.problem.empty()) k.document = row.spec_json;  // kept as it was written
  k.generation = row.generation;
  k.created_at_ms = row.created_at_ms;
  k.updated_at_ms = row.updated_at_ms;
  k.workers_stopped = row.workers_stopped;
  return k;
}

store::KernelRow KernelService::ToRow(const Kernel& k) const {
  store::KernelRow row;
  row.name = k.name();
  row.type = std::string(spec::KernelTypeName(k.spec.type));
  row.spec_json = k.document;
  row.env_hash = k.env_hash;
  row.generation = k.generation;
  row.created_at_ms = k.created_at_ms;
  row.updated_at_ms = k.updated_at_ms;
  row.workers_stopped = k.workers_stopped;
  return row;
}

store::Event KernelService::MakeEvent(std::string kind, const Kernel& k,
                                      const Caller& caller) const {
  nlohmann::json detail = {{"type", spec::KernelTypeName(k.spec.type)},
                           {"generation", k.generation}};
  if (!k.env_hash.empty()) detail["envHash"] = k.env_hash;
  return {0, clock_.NowUnixMillis(), std::move(kind), "kernel/" + k.name(), caller.actor,
          detail.dump()};
}

Status KernelService::Load() {
  GSK_ASSIGN_OR_RETURN(std::vector<store::KernelRow> rows, store_.ListKernels());
  kernels_.clear();
  std::vector<store::KernelRow> rewritten;
  for (const store::KernelRow& row : rows) {
    Kernel k = FromRow(row);
    if (!k.problem.empty()) {
      spdlog::warn("event=kernel.invalid kernel={} error=\"{}\"", row.name, k.problem);
    } else if (k.env_hash != row.env_hash || k.document != row.spec_json) {
      rewritten.push_back(ToRow(k));
    }
    std::string name = row.name;
    kernels_.emplace(std::move(name), std::move(k));
  }
  if (rewritten.empty()) return Status::Ok();
  nlohmann::json detail = {{"kernels", rewritten.size()},
                           {"reason", "the package index settings or the document rules changed"}};
  store::Event e{0, clock_.NowUnixMillis(), "kernels.rehashed", "supervisor", "supervisor",
                 detail.dump()};
  GSK_RETURN_IF_ERROR(store_.UpdateKernels(rewritten, e));
  spdlog::info("event=kernels.rehashed count={}", rewritten.size());
  return Status::Ok();
}

void KernelService::EnsureEnv(const Kernel& k, bool retry_failed) {
  if (!k.managed() || !k.problem.empty()) return;
  envs::EnvRequest request{k.env_hash, k.spec.python_version, {}};
  for (const auto& r : k.spec.EffectiveRequirements()) request.requirements.push_back(r.Canonical());
  envs_.Ensure(request, retry_failed);
}

void KernelService::ResumeEnvironments() {
  std::set<std::string> done;  // once per env: thousands of kernels may share one
  for (const auto& [name, k] : kernels_) {
    if (k.managed() && done.insert(k.env_hash).second) EnsureEnv(k, /*retry_failed=*/false);
  }
}

Kernel* KernelService::Find(const std::string& name) {
  auto it = kernels_.find(name);
  return it == kernels_.end() ? nullptr : &it->second;
}

Result<const Kernel*> KernelService::Get(const std::string& name) const {
  GSK_RETURN_IF_ERROR(spec::ValidateKernelName(name));
  auto it = kernels_.find(name);
  if (it == kernels_.end()) return NotFoundKernel(name);
  return &it->second;
}

std::vector<const Kernel*> KernelService::List() const {
  std::vector<const Kernel*> out;
  out.reserve(kernels_.size());
  for (const auto& [name, k] : kernels_) out.push_back(&k);
  return out;
}

Result<WriteOutcome> KernelService::Create(std::string_view body, const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(spec::KernelSpec spec, spec::ParseKernelDocument(body, options_.parse));
  GSK_RETURN_IF_ERROR(CheckModelPaths(spec));
  std::vector<std::string> warnings = std::move(spec.warnings);
  Kernel k = FromSpec(std::move(spec));
  if (const Kernel* existing = Find(k.name())) {
    if (existing->document == k.document) return WriteOutcome{existing, false, warnings};
    return AlreadyExists("kernel \"" + k.name() +
                         "\" already exists with a different document; delete it first or "
                         "replace it with PUT /api/v1/kernels/" + k.name())
        .WithDetail("field", "name");
  }
  if (static_cast<int64_t>(kernels_.size()) >= options_.max_kernels) {
    return ResourceExhausted("the supervisor already holds " + std::to_string(kernels_.size()) +
                             " kernels, the configured maximum; delete unused kernels or raise "
                             "[limits] max_kernels");
  }
  k.created_at_ms = k.updated_at_ms = clock_.NowUnixMillis();
  GSK_RETURN_IF_ERROR(store_.InsertKernel(ToRow(k), MakeEvent("kernel.created", k, caller)));
  std::string name = k.name();
  const Kernel& stored = kernels_.emplace(name, std::move(k)).first->second;
  EnsureEnv(stored, /*retry_failed=*/true);
  Changed(name);
  return WriteOutcome{&stored, true, std::move(warnings)};
}

Result<WriteOutcome> KernelService::Replace(const std::string& name, std::string_view body,
                                            const Caller& caller) {
  GSK_RETURN_IF_ERROR(spec::ValidateKernelName(name));
  const Kernel* existing = Find(name);
  if (existing == nullptr) {
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
  GSK_RETURN_IF_ERROR(CheckModelPaths(spec));
  std::vector<std::string> warnings = std::move(spec.warnings);
  return Write(FromSpec(std::move(spec)), *existing, std::move(warnings), caller);
}

Status KernelService::CheckModelPaths(const spec::KernelSpec& spec) const {
  if (!model_path_check_) return Status::Ok();
  for (size_t i = 0; i < spec.preload_models.size(); ++i) {
    Status s = model_path_check_(spec.preload_models[i]);
    if (s.ok()) continue;
    std::string field = "preloadModels[" + std::to_string(i) + "]";
    std::string why = s.message();
    if (why.rfind("model: ", 0) == 0) why.erase(0, 7);
    return InvalidArgument(field + ": " + why).WithDetail("field", field);
  }
  return Status::Ok();
}

// Stores `k` in place of `existing` (same name) as its next generation.
Result<WriteOutcome> KernelService::Write(Kernel k, const Kernel& existing,
                                          std::vector<std::string> warnings,
                                          const Caller& caller) {
  if (k.document == existing.document && existing.problem.empty()) {
    return WriteOutcome{&existing, false, std::move(warnings)};
  }
  k.created_at_ms = existing.created_at_ms;
  k.updated_at_ms = clock_.NowUnixMillis();
  k.generation = existing.generation + 1;
  k.workers_stopped = existing.workers_stopped;
  GSK_RETURN_IF_ERROR(store_.UpdateKernel(ToRow(k), MakeEvent("kernel.replaced", k, caller)));
  std::string old_hash = existing.env_hash;
  bool was_buildable = existing.managed() && existing.problem.empty();
  Kernel& stored = kernels_[existing.name()];  // `existing` is this very entry
  stored = std::move(k);
  // The environment only needs to be built again when what determines it changed.
  if (stored.env_hash != old_hash || !was_buildable) EnsureEnv(stored, /*retry_failed=*/true);
  if (stored.env_hash != old_hash) envs_.Release(old_hash);
  Changed(stored.name());
  return WriteOutcome{&stored, true, std::move(warnings)};
}

Status KernelService::Delete(const std::string& name, const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(const Kernel* k, Get(name));
  GSK_RETURN_IF_ERROR(store_.DeleteKernel(name, MakeEvent("kernel.deleted", *k, caller)));
  std::string hash = k->env_hash;
  bool managed = k->managed();
  kernels_.erase(name);
  if (managed) envs_.Release(hash);
  Changed(name);
  return Status::Ok();
}

Result<const Kernel*> KernelService::SetWorkersStopped(const std::string& name, bool stopped,
                                                       const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(const Kernel* found, Get(name));
  if (!found->managed()) {
    return FailedPrecondition("kernel \"" + name + "\" is unmanaged: its workers are started "
                              "by their users with `giskard worker start`");
  }
  Kernel& k = *Find(name);
  if (k.workers_stopped != stopped) {
    Kernel next = k;
    next.workers_stopped = stopped;
    next.updated_at_ms = clock_.NowUnixMillis();
    GSK_RETURN_IF_ERROR(store_.UpdateKernel(
        ToRow(next), MakeEvent(stopped ? "kernel.stopped" : "kernel.started", next, caller)));
    k = std::move(next);
  }
  Changed(name);
  return &k;
}

Result<const Kernel*> KernelService::SetWorkers(const std::string& name, int workers,
                                                const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(const Kernel* existing, Get(name));
  int max = options_.parse.max_workers;
  if (workers < 0 || workers > max) {
    return InvalidArgument("workers: must be between 0 and " + std::to_string(max) + ", not " +
                           std::to_string(workers) + " (raise [limits] max_workers_per_kernel)")
        .WithDetail("field", "workers");
  }
  if (!existing->problem.empty()) return FailedPrecondition(existing->problem);
  spec::KernelSpec spec = existing->spec;
  spec.workers = workers;
  spec.warnings.clear();
  GSK_ASSIGN_OR_RETURN(WriteOutcome out, Write(FromSpec(std::move(spec)), *existing, {}, caller));
  return out.kernel;
}

Result<const Kernel*> KernelService::Rebuild(const std::string& name, const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(const Kernel* k, Get(name));
  if (!k->managed()) {
    return FailedPrecondition("kernel \"" + name + "\" is unmanaged: its environment belongs to "
                              "the user who runs its workers");
  }
  if (!k->problem.empty()) return FailedPrecondition(k->problem);
  envs::EnvRequest request{k->env_hash, k->spec.python_version, {}};
  for (const auto& r : k->spec.EffectiveRequirements()) {
    request.requirements.push_back(r.Canonical());
  }
  GSK_RETURN_IF_ERROR(envs_.Rebuild(request));
  GSK_RETURN_IF_ERROR(store_.AppendEvent(MakeEvent("kernel.rebuild_requested", *k, caller)));
  Changed(name);
  return k;
}

KernelState KernelService::StateOf(const Kernel& k) const {
  if (!k.problem.empty()) return {KernelStatus::kFailed, k.problem, std::nullopt};
  // An unmanaged kernel's environment is its users' own: there is nothing to build.
  if (!k.managed()) return {KernelStatus::kReady, "", std::nullopt};
  envs::EnvState env = envs_.State(k.env_hash);
  KernelState state;
  state.last_error = std::move(env.last_error);
  state.progress = std::move(env.progress);
  switch (env.status) {
    case envs::EnvStatus::kPending: state.status = KernelStatus::kPending; break;
    case envs::EnvStatus::kBuilding: state.status = KernelStatus::kBuilding; break;
    case envs::EnvStatus::kReady: state.status = KernelStatus::kReady; break;
    case envs::EnvStatus::kFailed: state.status = KernelStatus::kFailed; break;
  }
  return state;
}

Result<LogChunk> KernelService::BuildLog(const std::string& name, uint64_t offset,
                                         uint64_t limit) const {
  GSK_ASSIGN_OR_RETURN(const Kernel* k, Get(name));
  KernelStatus status = StateOf(*k).status;
  bool complete = status == KernelStatus::kReady || status == KernelStatus::kFailed;
  if (!k->managed() || !k->problem.empty()) {
    LogChunk empty;
    empty.next_offset = offset;
    empty.complete = complete;
    return empty;
  }
  LogChunk chunk = ReadLogChunk(envs_.LogPath(k->env_hash), offset, limit);
  chunk.complete = complete;
  return chunk;
}

void KernelService::Changed(const std::string& name) {
  if (on_change_) on_change_(name);
}

}  // namespace gsk::service
