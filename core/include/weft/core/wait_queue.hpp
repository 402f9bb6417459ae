// WaitQueue: the FIFO of parked fibers that every cooperative primitive is built on.
// Owned by one hub; waiting parks only the calling fiber.
#pragma once

#include <cstddef>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"

namespace weft {

namespace detail {
struct WaitNode;
}

class WaitQueue {
  public:
    WaitQueue() = default;
    WaitQueue(const WaitQueue&) = delete;
    WaitQueue& operator=(const WaitQueue&) = delete;
    ~WaitQueue();

    /// Parks the calling fiber until notified (returns ok), the deadline passes
    /// (Errc::timed_out) or the fiber is cancelled (Errc::cancelled). Must run in a fiber.
    Result<void> wait(Deadline deadline, const char* reason = "wait");
    /// Wakes the longest waiter; false if none waited.
    bool notify_one() noexcept;
    /// Wakes every waiter; returns how many.
    std::size_t notify_all() noexcept;
    bool empty() const noexcept { return head_ == nullptr; }

  private:
    friend struct detail::WaitNode;
    detail::WaitNode* head_ = nullptr;
    detail::WaitNode* tail_ = nullptr;
};

}  // namespace weft
