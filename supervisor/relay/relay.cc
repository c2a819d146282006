#include "supervisor/relay/relay.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "supervisor/relay/messages.h"

namespace gsk::relay {
namespace {

std::string Seconds(std::chrono::milliseconds d) {
  std::string text = std::to_string(static_cast<double>(d.count()) / 1000.0);
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + " s";
}

bool Gone(workers::WorkerState s) {
  using workers::WorkerState;
  return s == WorkerState::kExited || s == WorkerState::kBackoff || s == WorkerState::kFatal ||
         s == WorkerState::kStopped || s == WorkerState::kStopping;
}

}  // namespace

struct Relay::Call {
  uint64_t id = 0;
  CallRequest request;
  Done done;
  int64_t submitted_ms = 0;
  int64_t sent_ms = 0;
  TimerId deadline = 0;
  TimerId exit_wait = 0;
  std::string worker;  // set once sent
  bool sent = false;
};

Relay::Relay(WorkerLinks& links, workers::WorkerPool& pool, Timers& timers, const Clock& clock,
             RelayOptions options)
    : links_(links), pool_(pool), timers_(timers), clock_(clock), options_(std::move(options)) {}

Relay::~Relay() {
  for (auto& [id, call] : calls_) {
    timers_.Cancel(call->deadline);
    timers_.Cancel(call->exit_wait);
  }
}

size_t Relay::waiting(const std::string& kernel) const {
  auto it = queues_.find(kernel);
  return it == queues_.end() ? 0 : it->second.size();
}

std::vector<std::string> Relay::Candidates(const std::string& kernel) const {
  std::vector<std::string> ids = pool_.RunningIds(kernel);
  if (options_.remote_worker) {
    if (std::string remote = options_.remote_worker(kernel); !remote.empty()) ids.push_back(remote);
  }
  return ids;
}

std::vector<std::string> Relay::Reachable(const std::string& kernel) const {
  std::vector<std::string> out;
  for (const std::string& id : Candidates(kernel)) {
    if (links_.Connected(id)) out.push_back(id);
  }
  return out;
}

void Relay::Submit(CallRequest request, Done done) {
  Status refused = options_.servable ? options_.servable(request.kernel) : Status::Ok();
  if (refused.ok() && waiting(request.kernel) >= static_cast<size_t>(options_.queue_size)) {
    refused = ResourceExhausted("kernel \"" + request.kernel + "\" already has " +
                                std::to_string(options_.queue_size) +
                                " calls waiting for a worker; retry later, or add workers")
                  .WithDetail("retryAfterSeconds", "1");
  }
  if (!refused.ok()) {
    std::weak_ptr<int> alive = alive_;
    timers_.After(std::chrono::milliseconds(0), [alive, done = std::move(done), refused] {
      if (alive.lock()) done(CallOutcome{refused, "", "", 0, 0});
    });
    return;
  }
  auto call = std::make_unique<Call>();
  call->id = next_id_++;
  call->request = std::move(request);
  call->done = std::move(done);
  call->submitted_ms = clock_.MonotonicMillis();
  std::weak_ptr<int> alive = alive_;
  uint64_t id = call->id;
  call->deadline = timers_.After(call->request.timeout, [this, alive, id] {
    if (alive.lock()) OnDeadline(id);
  });
  std::string kernel = call->request.kernel;
  queues_[kernel].push_back(id);
  calls_.emplace(id, std::move(call));
  Dispatch(kernel);
}

// Gives waiting calls to idle workers, oldest call first, each to a worker that has its model
// loaded when there is one.
void Relay::Dispatch(const std::string& kernel) {
  auto q = queues_.find(kernel);
  if (q == queues_.end() || q->second.empty()) return;
  std::vector<std::string> idle;
  for (const std::string& id : Candidates(kernel)) {
    if (links_.Connected(id) && slots_[id].call == 0) idle.push_back(id);
  }
  for (auto it = q->second.begin(); it != q->second.end() && !idle.empty();) {
    Call& call = *calls_.at(*it);
    auto pick = idle.end();
    for (auto w = idle.begin(); w != idle.end(); ++w) {
      if (!call.request.worker.empty() && *w != call.request.worker) continue;
      const std::list<std::string>& models = slots_[*w].models;
      bool has_model = std::find(models.begin(), models.end(), call.request.model) != models.end();
      if (pick == idle.end() || has_model) pick = w;
      if (has_model) break;
    }
    if (pick == idle.end()) {
      ++it;  // pinned to a worker that is busy: later calls may still go
      continue;
    }
    std::string worker = *pick;
    idle.erase(pick);
    it = q->second.erase(it);
    Send(call, worker);
  }
}

void Relay::DispatchLater(const std::string& kernel) {
  std::weak_ptr<int> alive = alive_;
  timers_.After(std::chrono::milliseconds(0), [this, alive, kernel] {
    if (alive.lock()) Dispatch(kernel);
  });
}

void Relay::Send(Call& call, const std::string& worker) {
  std::string request_id = "c" + std::to_string(call.id);
  // The message is built around the params where they lie (they may be a 10,000-row table):
  // with kRequestHeadroom spare capacity the insertion moves them without reallocating.
  std::string head = RequestMessage(request_id, call.request.method, "");  // ..."params":}
  head.pop_back();
  std::string frame = std::move(call.request.params);
  frame.insert(0, head);
  frame.push_back('}');
  call.request.params = std::string();
  call.worker = worker;
  call.sent = true;
  call.sent_ms = clock_.MonotonicMillis();
  slots_[worker].call = call.id;
  std::weak_ptr<int> alive = alive_;
  uint64_t id = call.id;
  Status sent = links_.Request(worker, request_id, std::move(frame),
                                [this, alive, id, worker](Result<std::string> reply) {
                                  if (alive.lock()) OnReply(id, worker, std::move(reply));
                                });
  if (!sent.ok()) {
    slots_[worker].call = 0;
    if (sent.code() == StatusCode::kUnavailable) sent.WithDetail("reason", "worker_lost");
    Finish(id, {sent, worker, "", 0, 0});
  }
}

void Relay::OnReply(uint64_t id, const std::string& worker, Result<std::string> reply) {
  auto it = calls_.find(id);
  auto slot = slots_.find(worker);
  if (it == calls_.end()) {
    // A call that timed out is finished already. A managed worker is being killed: its slot
    // stays taken until it is gone. An unmanaged one was not killed: it is free again now.
    if (slot != slots_.end() && slot->second.call == id && reply.ok() && !pool_.Get(worker)) {
      slot->second.call = 0;
      if (std::optional<std::string> kernel = KernelOfRemote(worker)) Dispatch(*kernel);
    }
    return;
  }
  if (slot != slots_.end() && slot->second.call == id && reply.ok()) slot->second.call = 0;
  Call& call = *it->second;
  if (!reply.ok()) {
    // The connection broke mid-call: wait a moment to learn how the worker exited.
    std::weak_ptr<int> alive = alive_;
    call.exit_wait = timers_.After(options_.exit_wait, [this, alive, id, worker] {
      if (!alive.lock()) return;
      // Still running (it may reconnect): it takes calls again once it does.
      if (auto s = slots_.find(worker); s != slots_.end() && s->second.call == id) {
        s->second.call = 0;
      }
      Finish(id, {Unavailable("lost the connection to worker " + worker + " during the call")
                      .WithDetail("reason", "worker_lost"),
                  worker, "", 0, 0});
    });
    return;
  }
  if (slot != slots_.end()) {  // it has the model loaded now, most recent first
    std::list<std::string>& models = slot->second.models;
    models.remove(call.request.model);
    models.push_front(call.request.model);
    while (models.size() > static_cast<size_t>(std::max(options_.models_per_worker, 1))) {
      models.pop_back();
    }
  }
  int64_t now = clock_.MonotonicMillis();
  std::string kernel = call.request.kernel;
  Finish(id, {Status::Ok(), worker, std::move(*reply), call.sent_ms - call.submitted_ms,
              now - call.sent_ms});
  Dispatch(kernel);
}

void Relay::OnDeadline(uint64_t id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  Call& call = *it->second;
  call.deadline = 0;
  std::string limit = Seconds(call.request.timeout);
  if (!call.sent) {
    Finish(id, {DeadlineExceeded("no worker of kernel \"" + call.request.kernel +
                                 "\" was free within " + limit +
                                 " (the call's timeout); retry, raise timeoutSeconds, or add "
                                 "workers"),
                "", "", clock_.MonotonicMillis() - call.submitted_ms, 0});
    return;
  }
  std::string worker = call.worker;
  std::string method = call.request.method;
  std::string call_kernel = call.request.kernel;
  bool managed = pool_.Get(worker).has_value();
  Finish(id, {DeadlineExceeded("worker " + worker + " did not answer within " + limit +
                               (managed ? " (the call's timeout); it was killed and is being replaced"
                                        : " (the call's timeout); it takes calls again once it "
                                          "answers")),
              worker, "", call.sent_ms - call.submitted_ms, clock_.MonotonicMillis() - call.sent_ms});
  if (!pool_.Get(worker)) {
    // An unmanaged worker cannot be killed from here: its slot stays busy until its late reply
    // or its disconnection.
    remote_kernels_[worker] = call_kernel;
    return;
  }
  // Its slot stays busy until its exit: nothing else is sent to a worker being killed.
  Status killed = pool_.Kill(worker, "a " + method + " call ran past its " + limit + " timeout");
  if (!killed.ok()) slots_.erase(worker);
}

void Relay::OnTransition(const workers::WorkerInfo& worker, workers::WorkerState from,
                         std::string_view reason) {
  (void)from;
  (void)reason;
  if (Gone(worker.state)) OnWorkerGone(worker);
  if (worker.state == workers::WorkerState::kRunning) {
    // Not now: the worker's welcome may not be out yet.
    DispatchLater(worker.kernel);
  }
  if (queues_.count(worker.kernel) != 0) RecheckLater();
}

void Relay::OnRemoved(const workers::WorkerInfo& worker) { OnWorkerGone(worker); }

void Relay::OnRemoteConnected(const std::string& kernel) { DispatchLater(kernel); }

void Relay::OnRemoteGone(const std::string& worker_id, const std::string& why) {
  remote_kernels_.erase(worker_id);
  // Calls waiting for this kernel fail at once (503) if it was its last worker; a standby
  // worker takes them otherwise.
  RecheckLater();
  auto slot = slots_.find(worker_id);
  if (slot == slots_.end()) return;
  uint64_t id = slot->second.call;
  slots_.erase(slot);
  if (id == 0 || calls_.count(id) == 0) return;
  std::string kernel = calls_.at(id)->request.kernel;
  Finish(id, {Unavailable("worker " + worker_id + " disconnected during the call (" + why + ")")
                  .WithDetail("reason", "worker_lost")
                  .WithDetail("worker", worker_id),
              worker_id, "", 0, 0});
  DispatchLater(kernel);  // a standby worker may take over
}

std::optional<std::string> Relay::KernelOfRemote(const std::string& worker_id) {
  auto it = remote_kernels_.find(worker_id);
  if (it == remote_kernels_.end()) return std::nullopt;
  std::string kernel = std::move(it->second);
  remote_kernels_.erase(it);
  return kernel;
}

void Relay::OnConnected(const std::string& worker_id) {
  std::optional<workers::WorkerInfo> w = pool_.Get(worker_id);
  if (w) DispatchLater(w->kernel);
}

// The worker's process is gone or going: its call fails naming the exit, and what it had
// loaded is forgotten.
void Relay::OnWorkerGone(const workers::WorkerInfo& worker) {
  auto slot = slots_.find(worker.id);
  if (slot == slots_.end()) return;
  uint64_t id = slot->second.call;
  slots_.erase(slot);
  if (id == 0 || calls_.count(id) == 0) return;
  std::string how = worker.exit_description.empty() ? "stopped" : worker.exit_description;
  std::string message = "worker " + worker.id + " " + how + " during the call";
  if (!worker.last_error.empty() && worker.last_error.find(how) == std::string::npos) {
    message += " (" + worker.last_error + ")";
  }
  Finish(id, {Unavailable(message).WithDetail("reason", "worker_lost").WithDetail("worker", worker.id),
              worker.id, "", 0, 0});
}

void Relay::Recheck() {
  std::vector<std::string> kernels;
  for (const auto& [kernel, q] : queues_) {
    if (!q.empty()) kernels.push_back(kernel);
  }
  for (const std::string& kernel : kernels) {
    Status servable = options_.servable ? options_.servable(kernel) : Status::Ok();
    if (servable.ok()) continue;
    std::deque<uint64_t> waiting = std::move(queues_[kernel]);
    queues_.erase(kernel);
    for (uint64_t id : waiting) Finish(id, {servable, "", "", 0, 0});
  }
}

void Relay::RecheckLater() {
  if (queues_.empty()) return;
  std::weak_ptr<int> alive = alive_;
  timers_.After(std::chrono::milliseconds(0), [this, alive] {
    if (alive.lock()) Recheck();
  });
}

void Relay::Unqueue(const Call& call) {
  auto q = queues_.find(call.request.kernel);
  if (q == queues_.end()) return;
  q->second.erase(std::remove(q->second.begin(), q->second.end(), call.id), q->second.end());
  if (q->second.empty()) queues_.erase(q);
}

void Relay::Finish(uint64_t id, CallOutcome outcome) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  std::unique_ptr<Call> call = std::move(it->second);
  calls_.erase(it);
  timers_.Cancel(call->deadline);
  timers_.Cancel(call->exit_wait);
  if (!call->sent) Unqueue(*call);
  if (!outcome.status.ok()) {
    spdlog::info("event=call.failed kernel={} method={} worker={} error=\"{}\"",
                 call->request.kernel, call->request.method, outcome.worker,
                 outcome.status.message());
  }
  call->done(std::move(outcome));
}

}  // namespace gsk::relay
