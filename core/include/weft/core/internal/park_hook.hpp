// Engine hooks, not for handler authors: what the HTTP server sets on a connection fiber around
// each handler (its deadline, and a callback run when the handler first parks, which starts
// watching for a client that hangs up only for handlers that wait on something: a handler that
// answers without parking cannot be interrupted anyway, and costs nothing). Not installed with
// the SDK.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/core/deadline.hpp"

namespace weft::internal {

class ParkHook {
  public:
    /// Runs in the fiber, at the start of its next blocking wait, before it parks; then the
    /// hook is removed. It must not block; it may spawn fibers.
    virtual void on_park() noexcept = 0;

  protected:
    ~ParkHook() = default;
};

/// A fiber, to cancel later from another fiber of its hub. Valid while that fiber runs.
using FiberRef = void*;
/// Cancels `f` (as Fiber::cancel does): its blocking calls end with Errc::cancelled. Hub thread
/// of `f` only, while `f` has not finished.
void cancel_fiber(FiberRef f) noexcept;

/// What a request's handler runs under on the calling fiber, set and undone in one call each
/// (the HTTP session does it for every request): `deadline` tightens the fiber's deadline (as
/// ScopedDeadline does) and `hook` (may be nullptr) is installed until leave_handler(); the
/// hook must outlive the installation.
struct HandlerScope {
    FiberRef fiber = nullptr;  ///< the calling fiber; nullptr outside one (nothing was set)
    std::int64_t saved_deadline_ns = 0;
    std::uint64_t fiber_id = 0;  ///< unique for the process's life (this_fiber::id())
    /// Fibers the calling fiber has spawned so far while it had FiberLocal values: each shares
    /// its table of them. Unchanged since an earlier scope of the same fiber, the table is as
    /// much its own as it was then.
    std::uint32_t locals_shares = 0;
};
/// Fills `scope` in place (a returned struct, copied by vector loads from the callee's
/// narrower stores, stalls the store forwarding).
void enter_handler(HandlerScope& scope, Deadline deadline, ParkHook* hook) noexcept;
/// Undoes enter_handler(): the fiber's deadline as it was, no park hook. On the same fiber.
void leave_handler(const HandlerScope& scope) noexcept;

/// True when the calling fiber's FiberLocal value in `slot` (detail::fiber_local_slot()) is
/// `value` and its table of values is its own: no fiber it spawned shares the table (so a
/// value changed in place is seen by this fiber only). False outside a fiber.
bool fiber_local_owned(std::size_t slot, const void* value) noexcept;

}  // namespace weft::internal
