#include "supervisor/service/model_service.h"

#include <sys/stat.h>

#include <charconv>
#include <cmath>
#include <memory>

#include <nlohmann/json.hpp>

#include "supervisor/protocol/json_envelope.h"
#include "supervisor/relay/messages.h"

namespace gsk::service {
namespace {

namespace fs = std::filesystem;
using protocol::JsonKind;

Status BadInput(const std::string& field, const std::string& message) {
  return InvalidArgument(message).WithDetail("reason", "invalid_input").WithDetail("field", field);
}

bool Under(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

std::string RootsText(const std::vector<fs::path>& roots) {
  std::string out;
  for (const fs::path& r : roots) out += (out.empty() ? "" : ", ") + r.string();
  return out;
}

// The error a worker replied with, as the Status the API maps to HTTP.
Status WorkerError(std::string_view error_json) {
  nlohmann::json e = nlohmann::json::parse(error_json, nullptr, /*allow_exceptions=*/false);
  std::string type = e.is_object() ? e.value("type", "Error") : "Error";
  std::string message = e.is_object() ? e.value("message", "") : "";
  std::string traceback = e.is_object() ? e.value("traceback", "") : "";
  if (type == "InvalidInput") return InvalidArgument(message).WithDetail("reason", "invalid_input");
  if (type == "WorkerShuttingDown") {
    return Unavailable("the worker is stopping: " + message + "; retry")
        .WithDetail("retryAfterSeconds", "1");
  }
  if (type == "MethodNotFound" || type == "InvalidRequest") {
    return Internal("the worker refused the call (" + type + ": " + message +
                    "); is its worker shim older than this supervisor? rebuild the kernel");
  }
  if (type == "ModelFetchError") {
    return Unavailable("the worker could not get the model's bytes from this supervisor: " +
                       message)
        .WithDetail("reason", "model_fetch_error");
  }
  std::string reason = type == "ModelLoadError" ? "model_load_error" : "model_error";
  return InvalidArgument(type + ": " + message)
      .WithDetail("reason", reason)
      .WithDetail("type", type)
      .WithDetail("traceback", traceback);
}

}  // namespace

Result<std::string_view> ReplyResult(std::string_view reply_frame) {
  GSK_ASSIGN_OR_RETURN(relay::Frame frame, relay::ParseFrame(reply_frame));
  if (!frame.error.empty()) return WorkerError(frame.error);
  if (frame.result.empty()) return Internal("the worker's reply has neither result nor error");
  return frame.result;
}

namespace {

int64_t CtimeNanos(const struct stat& st) {
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
}

}  // namespace

ModelRoots::ModelRoots(std::vector<fs::path> configured, const Clock& clock)
    : configured_(std::move(configured)), clock_(clock) {}

Status ModelRoots::Init() {
  roots_.clear();
  written_.clear();
  known_.clear();
  for (const fs::path& root : configured_) {
    std::error_code ec;
    fs::create_directories(root, ec);
    fs::path real = fs::canonical(root, ec);
    if (ec) {
      return FailedPrecondition("model root " + root.string() + " cannot be used: " +
                                ec.message() + " (fix [models] roots)");
    }
    roots_.push_back(real);
    fs::path written = fs::absolute(root).lexically_normal();
    if (!written.has_filename()) written = written.parent_path();  // "/x/models/"
    written_.push_back(written);
  }
  if (roots_.empty()) return FailedPrecondition("no model root is configured ([models] roots)");
  return Status::Ok();
}

Result<fs::path> ModelRoots::Resolve(const std::string& text) {
  if (text.empty() || text.find('\0') != std::string::npos) {
    return BadInput("model", "model: give the path of a model file or folder under " +
                                 RootsText(roots_));
  }
  fs::path asked(text);
  if (asked.is_relative()) asked = written_.front() / asked;
  asked = asked.lexically_normal();
  // A resolution costs a readlink per component. One made less than kReuseMillis ago is
  // reused while a single stat of the path finds the same device, inode and ctime. That is
  // safe because workers are sent `real`, never the path as asked: a symlink retargeted since
  // cannot take them elsewhere, and the stat notices at once a path that now leads to another
  // file (or to a new one that reuses the inode: its ctime differs). What it cannot notice is
  // the very same file whose folder was moved out of the roots and replaced by a symlink to
  // its new place: `real` then leads there, for kReuseMillis at most. That takes write access
  // to the roots, which already lets one put any model there (the README's threat model), and
  // the check was never atomic with the worker's open anyway (a call may wait in the queue).
  auto it = known_.find(asked.native());
  if (it != known_.end()) {
    const Known& k = it->second;
    struct stat st {};
    if (clock_.MonotonicMillis() - k.resolved_ms < kReuseMillis &&
        ::stat(asked.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_dev) == k.device &&
        static_cast<uint64_t>(st.st_ino) == k.inode && CtimeNanos(st) == k.ctime_ns) {
      return k.real;
    }
    known_.erase(it);
  }
  Result<fs::path> real = ResolveAfresh(text, asked);
  if (real.ok()) Remember(asked.native(), *real);
  return real;
}

Result<fs::path> ModelRoots::ResolveAfresh(const std::string& text, const fs::path& asked) {
  auto forbidden = [&](const fs::path& where) {
    return FailedPrecondition("model: " + text + " is outside the model roots (" +
                              RootsText(roots_) + (where == asked ? "" : "; it leads to " +
                                                                             where.string()) +
                              "); put the model under a root or add its folder to [models] roots")
        .WithDetail("reason", "forbidden")
        .WithDetail("field", "model");
  };
  // As written, the path must already be under a root, in either spelling of it (the root may
  // itself be, or sit under, a symlink); then, resolved, under a resolved root.
  bool lexically_inside = false;
  for (const auto* roots : {&roots_, &written_}) {
    for (const fs::path& root : *roots) lexically_inside = lexically_inside || Under(asked, root);
  }
  if (!lexically_inside) return forbidden(asked);  // not even looked at
  std::error_code ec;
  fs::path real = fs::canonical(asked, ec);
  if (ec) {
    return NotFound("model: " + text + " does not exist (" + ec.message() + ")")
        .WithDetail("field", "model");
  }
  for (const fs::path& root : roots_) {
    if (Under(real, root)) return real;
  }
  return forbidden(real);  // a symlink out of the roots
}

// The stat comes after the resolution: should the file change in between, the entry holds the
// newer identity with the older resolution, for kReuseMillis at most (see Resolve).
void ModelRoots::Remember(const std::string& key, const fs::path& real) {
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) return;
  if (known_.size() >= kMaxRemembered) known_.clear();  // many paths: start over
  known_[key] = Known{real, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                      CtimeNanos(st), clock_.MonotonicMillis()};
}

struct ModelService::Envelope {
  fs::path model;
  std::chrono::milliseconds timeout;
  std::string params;  // what the worker gets
};

ModelService::ModelService(KernelService& kernels, workers::WorkerPool& pool, relay::Relay& relay,
                           ModelOptions options)
    : kernels_(kernels),
      pool_(pool),
      relay_(relay),
      options_(std::move(options)),
      roots_(options_.roots, clock_) {
  relay_.SetServable([this](const std::string& kernel) { return Servable(kernel); });
}

Status ModelService::Init() { return roots_.Init(); }

Status ModelService::Servable(const std::string& kernel) const {
  GSK_ASSIGN_OR_RETURN(const Kernel* k, kernels_.Get(kernel));
  if (!k->managed()) {
    if (!relay_.Reachable(kernel).empty()) return Status::Ok();
    return Unavailable("kernel \"" + kernel + "\" is unmanaged and none of its workers is "
                       "connected; start one with `giskard worker start --name " + kernel + "`");
  }
  KernelState state = kernels_.StateOf(*k);
  if (state.status == KernelStatus::kFailed) {
    return Unavailable("the environment of kernel \"" + kernel + "\" failed to build (" +
                       state.last_error + "); fix its requirements and rebuild it");
  }
  if (k->workers_stopped) {
    return Unavailable("kernel \"" + kernel + "\" is stopped; start it with "
                       "`giskard-supervisor kernels start " + kernel + "`");
  }
  if (k->spec.workers == 0) {
    return Unavailable("kernel \"" + kernel + "\" asks for no workers (\"workers\": 0); give it "
                       "some with `giskard-supervisor kernels start " + kernel + " --workers 1`");
  }
  std::vector<workers::WorkerInfo> all = pool_.List(kernel);
  bool all_fatal = !all.empty();
  for (const workers::WorkerInfo& w : all) all_fatal = all_fatal && w.state == workers::WorkerState::kFatal;
  if (all_fatal) {
    return Unavailable("every worker of kernel \"" + kernel + "\" is fatal (" +
                       all.front().last_error + "); fix the cause, then restart them with "
                       "`giskard-supervisor workers restart ID`");
  }
  return Status::Ok();  // running, or starting (the call waits for them)
}

Result<ModelService::Envelope> ModelService::ReadEnvelope(std::string_view body, bool needs_rows,
                                                          bool remote) {
  Result<protocol::JsonEnvelope> scanned = protocol::JsonEnvelope::Scan(body);
  if (!scanned.ok()) {
    return InvalidArgument(scanned.status().message() + "; the body must be a JSON object such "
                           "as {\"model\": \"iris.pkl\", \"columns\": [...], \"rows\": [[...]]}")
        .WithDetail("reason", "invalid_json");
  }
  const protocol::JsonEnvelope& e = *scanned;
  Envelope out;
  const protocol::JsonMember* model = e.Find("model");
  if (model == nullptr || model->kind != JsonKind::kString) {
    return BadInput("model", "model: a string is required: the path of the model");
  }
  GSK_ASSIGN_OR_RETURN(std::string model_text, protocol::DecodeJsonString(model->value));
  GSK_ASSIGN_OR_RETURN(out.model, ResolveModel(model_text));
  out.timeout = options_.call_timeout;
  if (const protocol::JsonMember* t = e.Find("timeoutSeconds"); t != nullptr) {
    double seconds = 0;
    auto [end, ec] = std::from_chars(t->value.data(), t->value.data() + t->value.size(), seconds);
    double max = static_cast<double>(options_.max_call_timeout.count()) / 1000.0;
    if (t->kind != JsonKind::kNumber || ec != std::errc() || !(seconds > 0) || seconds > max) {
      return BadInput("timeoutSeconds", "timeoutSeconds: give a number of seconds above 0 and at "
                                        "most " + std::to_string(static_cast<int64_t>(max)) +
                                        " ([models] max_call_timeout_seconds)");
    }
    out.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000)));
  }
  std::string model_json = protocol::EncodeJsonString(out.model.string());
  if (remote && blobs_ != nullptr) {
    // A worker on another machine fetches the model's bytes by hash (PROTOCOL.md, modelBlob).
    GSK_ASSIGN_OR_RETURN(BlobRef blob, blobs_->Describe(out.model));
    model_json += ",\"modelBlob\":" +
                  nlohmann::json{{"sha256", blob.sha256},
                                 {"format", blob.format},
                                 {"name", blob.name},
                                 {"size", blob.size}}
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (!needs_rows) {
    out.params = "{\"model\":" + model_json + "}";
    return out;
  }
  const protocol::JsonMember* rows = e.Find("rows");
  const protocol::JsonMember* records = e.Find("records");
  const protocol::JsonMember* columns = e.Find("columns");
  if ((rows == nullptr) == (records == nullptr)) {
    return BadInput(rows ? "records" : "rows",
                    rows ? "give either \"rows\" (with \"columns\") or \"records\", not both"
                         : "\"rows\" (with \"columns\") or \"records\" is required");
  }
  for (const protocol::JsonMember* m : {rows, records, columns}) {
    if (m != nullptr && m->kind != JsonKind::kArray) {
      return BadInput(m->key, "\"" + m->key + "\" must be an array");
    }
  }
  // The rows are copied once, here, into memory the relay builds its request around.
  size_t size = model_json.size() + 16 + relay::kRequestHeadroom;
  for (const protocol::JsonMember* m : {columns, rows, records}) {
    if (m != nullptr) size += m->key.size() + m->value.size() + 4;
  }
  out.params.reserve(size);
  out.params.append("{\"model\":").append(model_json);
  for (const protocol::JsonMember* m : {columns, rows, records}) {
    if (m != nullptr) out.params.append(",\"").append(m->key).append("\":").append(m->value);
  }
  out.params.push_back('}');
  return out;
}

void ModelService::Predict(const std::string& kernel, std::string_view body,
                           std::function<void(Result<PredictAnswer>)> done) {
  Result<Envelope> envelope = [&]() -> Result<Envelope> {
    GSK_ASSIGN_OR_RETURN(const Kernel* k, kernels_.Get(kernel));
    return ReadEnvelope(body, /*needs_rows=*/true, /*remote=*/!k->managed());
  }();
  if (!envelope.ok()) return done(envelope.status());
  relay::CallRequest call{kernel, "predict", envelope->model.string(),
                          std::move(envelope->params), envelope->timeout, ""};
  relay_.Submit(std::move(call), [done](relay::CallOutcome outcome) {
    if (!outcome.status.ok()) return done(outcome.status);
    Result<std::string_view> result = ReplyResult(outcome.reply);
    if (!result.ok()) return done(result.status());
    PredictAnswer answer;
    answer.result_begin = static_cast<size_t>(result->data() - outcome.reply.data());
    answer.result_size = result->size();
    answer.reply = std::move(outcome.reply);  // the view is not used past here
    answer.worker = std::move(outcome.worker);
    answer.duration_ms = outcome.duration_ms;
    answer.queued_ms = outcome.queued_ms;
    done(std::move(answer));
  });
}

void ModelService::Load(const std::string& kernel, std::string_view body,
                        std::function<void(Result<LoadAnswer>)> done) {
  Result<Envelope> envelope = [&]() -> Result<Envelope> {
    GSK_RETURN_IF_ERROR(Servable(kernel));
    GSK_ASSIGN_OR_RETURN(const Kernel* k, kernels_.Get(kernel));
    return ReadEnvelope(body, /*needs_rows=*/false, /*remote=*/!k->managed());
  }();
  std::vector<std::string> workers = relay_.Reachable(kernel);
  if (envelope.ok() && workers.empty()) {
    envelope = Unavailable("no worker of kernel \"" + kernel + "\" is running yet; retry once "
                           "they are (giskard-supervisor workers list --kernel " + kernel + ")")
                   .WithDetail("retryAfterSeconds", "1");
  }
  if (!envelope.ok()) return done(envelope.status());
  struct Gather {
    LoadAnswer answer;
    size_t waiting = 0;
    std::function<void(Result<LoadAnswer>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->answer.model = envelope->model.string();
  gather->waiting = workers.size();
  gather->done = std::move(done);
  for (const std::string& worker : workers) {
    relay::CallRequest call{kernel, "load_model", envelope->model.string(), envelope->params,
                            envelope->timeout, worker};
    relay_.Submit(std::move(call), [gather, worker](relay::CallOutcome outcome) {
      WorkerLoad load{worker, outcome.status, ""};
      if (load.status.ok()) {
        Result<std::string_view> result = ReplyResult(outcome.reply);
        load.status = result.status();
        if (result.ok()) load.result = std::string(*result);
      }
      gather->answer.workers.push_back(std::move(load));
      if (--gather->waiting > 0) return;
      for (const WorkerLoad& w : gather->answer.workers) {
        if (w.status.ok()) return gather->done(std::move(gather->answer));
      }
      gather->done(gather->answer.workers.front().status);  // no worker could load it
    });
  }
}

}  // namespace gsk::service
