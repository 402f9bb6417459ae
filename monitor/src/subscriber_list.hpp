// Callbacks of one watchdog event kind (blocked, unblocked, memory above/below), with the
// unsubscribe-waits-for-a-running-call guarantee that Subscription promises.
#pragma once

#include <spdlog/logger.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace weft::monitor::detail {

/// A list of callbacks for events of type Ev. Each callback runs under its own (recursive)
/// lock, so unsubscribing waits for a call in progress, except from inside that very call.
/// Create it with std::make_shared (add() hands out weak references to it).
///
/// Threads: add(), emit() and the returned cancel function may be called from any thread.
template <class Ev>
class SubscriberList : public std::enable_shared_from_this<SubscriberList<Ev>> {
  public:
    /// Adds `fn`; returns the function that removes it (a no-op once the list is gone).
    std::function<void()> add(std::function<void(const Ev&)> fn) {
        auto e = std::make_shared<Entry>();
        e->fn = std::move(fn);
        {
            std::lock_guard<std::mutex> g(mu_);
            list_.push_back(e);
        }
        std::weak_ptr<SubscriberList> self = this->shared_from_this();
        std::weak_ptr<Entry> weak = e;
        return [self, weak] {
            auto e = weak.lock();
            if (!e) return;
            {
                std::lock_guard<std::recursive_mutex> g(e->mu);
                e->active = false;
            }
            if (auto list = self.lock()) {
                std::lock_guard<std::mutex> g(list->mu_);
                std::erase(list->list_, e);
            }
        };
    }

    /// Calls every callback with `ev`, in subscription order. One that throws is logged on
    /// `log` as "an <what> subscriber failed" and the others still run.
    void emit(const Ev& ev, spdlog::logger& log, const char* what) {
        std::vector<std::shared_ptr<Entry>> copy;
        {
            std::lock_guard<std::mutex> g(mu_);
            copy = list_;
        }
        for (auto& e : copy) {
            std::lock_guard<std::recursive_mutex> g(e->mu);
            if (!e->active) continue;
            try {
                e->fn(ev);
            } catch (const std::exception& ex) {
                log.error("an {} subscriber failed: {}; the watchdog carries on", what, ex.what());
            } catch (...) {
                log.error("an {} subscriber failed; the watchdog carries on", what);
            }
        }
    }

  private:
    struct Entry {
        std::recursive_mutex mu;
        bool active = true;
        std::function<void(const Ev&)> fn;
    };
    std::mutex mu_;
    std::vector<std::shared_ptr<Entry>> list_;
};

}  // namespace weft::monitor::detail
