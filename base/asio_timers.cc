// Timers on an io_context: one steady_timer per pending callback.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <utility>

#include "base/timers.h"

namespace gsk {
namespace {

class AsioTimers final : public Timers {
 public:
  explicit AsioTimers(boost::asio::io_context& io)
      : io_(io), pending_(std::make_shared<Pending>()) {}
  ~AsioTimers() override {
    for (auto& [id, timer] : *pending_) timer->cancel();
  }

  TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) override {
    TimerId id = next_id_++;
    auto timer = std::make_unique<boost::asio::steady_timer>(io_, delay);
    // A handler that completed before Cancel or destruction is already queued with success:
    // it finds its entry gone (or the map destroyed) and does nothing.
    std::weak_ptr<Pending> weak = pending_;
    timer->async_wait([weak, id, fn = std::move(fn)](const boost::system::error_code& ec) {
      if (ec) return;
      std::shared_ptr<Pending> pending = weak.lock();
      if (!pending) return;
      auto it = pending->find(id);
      if (it == pending->end()) return;
      std::unique_ptr<boost::asio::steady_timer> done = std::move(it->second);
      pending->erase(it);
      fn();
    });
    pending_->emplace(id, std::move(timer));
    return id;
  }

  void Cancel(TimerId id) override {
    auto it = pending_->find(id);
    if (it == pending_->end()) return;
    it->second->cancel();
    pending_->erase(it);
  }

 private:
  using Pending = std::map<TimerId, std::unique_ptr<boost::asio::steady_timer>>;
  boost::asio::io_context& io_;
  std::shared_ptr<Pending> pending_;
  TimerId next_id_ = 1;
};

}  // namespace

std::unique_ptr<Timers> MakeAsioTimers(boost::asio::io_context& io) {
  return std::make_unique<AsioTimers>(io);
}

}  // namespace gsk
