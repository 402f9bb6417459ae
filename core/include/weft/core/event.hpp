// Event: a flag fibers can wait for (gevent.event.Event).
#pragma once

#include "weft/core/wait_queue.hpp"

namespace weft {

/// Blocking: wait() parks until set(), the deadline (Errc::timed_out) or cancellation.
/// Threads: owned by one hub (its fibers only; SharedSemaphore and SharedPool are shared by
/// all hubs).
class Event {
  public:
    /// Sets the flag and wakes every waiter.
    void set() noexcept {
        set_ = true;
        waiters_.notify_all();
    }
    void clear() noexcept { set_ = false; }
    bool is_set() const noexcept { return set_; }
    Result<void> wait(Deadline deadline = {}) {
        if (set_) return {};
        return waiters_.wait(deadline, "event");
    }

  private:
    bool set_ = false;
    WaitQueue waiters_;
};

}  // namespace weft
