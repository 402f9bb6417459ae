// Mutex for fibers: lock() parks the calling fiber, never the hub thread. Fair: unlock() hands
// the lock to the longest waiter.
#pragma once

#include "weft/core/wait_queue.hpp"

namespace weft {

/// Blocking: lock() parks until acquired, the deadline (Errc::timed_out) or cancellation.
/// Threads: owned by one hub (its fibers only; SharedSemaphore and SharedPool are shared by
/// all hubs).
class Mutex {
  public:
    Result<void> lock(Deadline deadline = {});
    bool try_lock() noexcept {
        if (locked_) return false;
        locked_ = true;
        return true;
    }
    void unlock() noexcept;
    bool is_locked() const noexcept { return locked_; }

  private:
    bool locked_ = false;
    WaitQueue waiters_;
};

/// RAII lock for Mutex (std::lock_guard cannot report a timeout).
class MutexLock {
  public:
    explicit MutexLock(Mutex& m, Deadline deadline = {}) : m_(m), result_(m.lock(deadline)) {}
    ~MutexLock() {
        if (result_) m_.unlock();
    }
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;
    bool owns_lock() const noexcept { return result_.ok(); }
    const Result<void>& result() const noexcept { return result_; }

  private:
    Mutex& m_;
    Result<void> result_;
};

}  // namespace weft
