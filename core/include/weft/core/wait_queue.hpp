// WaitQueue: the FIFO of parked fibers that every cooperative primitive is built on.
// Owned by one hub; waiting parks only the calling fiber.
#pragma once

#include <atomic>
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
    /// Binds the queue, and the primitive around it (`what`: "Mutex", "Channel", ...), to the
    /// hub of its first user on a hub thread. After that, a thread that is no hub's (offload(),
    /// a plain thread) gets UsageError, and so does a fiber of another hub unless the
    /// primitive is `idle` (then that hub takes it over: an object handed from hub to hub
    /// through a SharedPool, say). The primitive is not thread-safe: such uses would race with
    /// the owner's fibers. Before any hub used it, a thread that is no hub's may (a plugin's
    /// init). wait() claims too (idle when nobody waits yet). A check, not a lock: it catches
    /// the misuse on the calls that claim, not two hubs taking an idle one at one instant.
    void claim(const char* what, bool idle);

  private:
    friend struct detail::WaitNode;
    // The detail::HubImpl that claimed it (compared, never followed: a runtime may end before
    // a global primitive does), and its index for messages. Atomic: the misuse it catches is
    // by definition from another thread.
    std::atomic<void*> owner_{nullptr};
    std::atomic<unsigned> owner_index_{0};
    detail::WaitNode* head_ = nullptr;
    detail::WaitNode* tail_ = nullptr;
};

}  // namespace weft
