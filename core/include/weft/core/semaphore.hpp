// Counting semaphore for fibers (gevent.lock.Semaphore). Fair: release() hands a permit to the
// longest waiter.
#pragma once

#include <cstddef>

#include "weft/core/wait_queue.hpp"

namespace weft {

/// Blocking: acquire() parks until a permit is free, the deadline (Errc::timed_out) or
/// cancellation. Threads: owned by one hub (its fibers only; SharedSemaphore and SharedPool are
/// shared by all hubs).
class Semaphore {
  public:
    explicit Semaphore(std::size_t permits) noexcept : permits_(permits) {}
    Result<void> acquire(Deadline deadline = {});
    bool try_acquire() noexcept {
        if (permits_ == 0 || !waiters_.empty()) return false;
        --permits_;
        return true;
    }
    void release(std::size_t n = 1) noexcept;
    std::size_t available() const noexcept { return permits_; }

  private:
    std::size_t permits_;
    WaitQueue waiters_;
};

}  // namespace weft
