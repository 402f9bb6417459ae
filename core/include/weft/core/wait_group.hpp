// WaitGroup: wait until a set of tasks is done (Go's sync.WaitGroup).
#pragma once

#include <cstdint>

#include "weft/core/wait_queue.hpp"

namespace weft {

/// Blocking: wait() parks until the count reaches zero, the deadline (Errc::timed_out) or
/// cancellation. Threads: owned by one hub (its fibers only; SharedSemaphore and SharedPool are
/// shared by all hubs).
class WaitGroup {
  public:
    /// Throws UsageError (and counts nothing) if the counter would go negative.
    void add(std::int64_t n = 1);
    void done() { add(-1); }
    std::int64_t count() const noexcept { return count_; }
    Result<void> wait(Deadline deadline = {});

  private:
    std::int64_t count_ = 0;
    WaitQueue waiters_;
};

}  // namespace weft
