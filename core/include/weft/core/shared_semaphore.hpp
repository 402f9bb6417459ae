// SharedSemaphore: a counting semaphore for every hub of a runtime (and plain threads). The
// one-hub primitives (Mutex, Semaphore, Event, Channel, WaitGroup) are cheaper but belong to the
// hub whose fibers use them; this one guards what all hubs share, such as a pool of database
// connections (SharedPool builds on it).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"

namespace weft {

namespace detail {
struct SharedWaiter;
}

/// A fair counting semaphore that fibers of any hub, and threads that are no hub, may wait on.
///
/// Blocking: acquire() parks only the calling fiber (its hub runs others); on a thread that is
/// no hub it blocks that thread; on a hub's thread outside its fibers (a Hub::post task) it
/// never waits: Errc::would_block when no permit is free. It gives up with Errc::timed_out at the
/// deadline (the fiber's own deadline included) and with Errc::cancelled when the fiber is
/// cancelled. Fairness: release() hands permits to the longest waiters first. Threads: every member
/// may be called from any thread. A fiber woken by a release() on another hub resumes after that
/// hub's post reaches its own (microseconds).
class SharedSemaphore {
  public:
    explicit SharedSemaphore(std::size_t permits) noexcept : permits_(permits) {}
    SharedSemaphore(const SharedSemaphore&) = delete;
    SharedSemaphore& operator=(const SharedSemaphore&) = delete;
    ~SharedSemaphore();

    [[nodiscard]] Result<void> acquire(Deadline deadline = {});
    /// Takes a permit if one is free and nobody waits.
    bool try_acquire() noexcept;
    void release(std::size_t n = 1) noexcept;
    std::size_t available() const noexcept;
    /// Waiters now (fibers and threads).
    std::size_t waiting() const noexcept;

  private:
    friend struct detail::SharedWaiter;
    mutable std::mutex mu_;
    std::size_t permits_;
    std::size_t waiting_ = 0;
    detail::SharedWaiter* head_ = nullptr;
    detail::SharedWaiter* tail_ = nullptr;
};

}  // namespace weft
