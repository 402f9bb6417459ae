// Engine hooks, not for handler authors: a callback run when a fiber first parks. The HTTP
// server uses it to start watching for a client that hangs up only for handlers that wait on
// something (a handler that answers without parking cannot be interrupted anyway, and costs
// nothing). Not installed with the SDK.
#pragma once

namespace weft::internal {

class ParkHook {
  public:
    /// Runs in the fiber, at the start of its next blocking wait, before it parks; then the
    /// hook is removed. It must not block; it may spawn fibers.
    virtual void on_park() noexcept = 0;

  protected:
    ~ParkHook() = default;
};

/// Installs `hook` on the calling fiber (nullptr removes it). Fiber only; the hook must outlive
/// the installation.
void set_park_hook(ParkHook* hook) noexcept;

/// True when the calling fiber's FiberLocal values are its own: no fiber it spawned shares its
/// table of them (so a value changed in place is seen by this fiber only). False outside a
/// fiber.
bool fiber_locals_unshared() noexcept;

/// The calling fiber, to cancel later from another fiber of its hub (nullptr outside a fiber).
/// Valid while that fiber runs.
using FiberRef = void*;
FiberRef current_fiber() noexcept;
/// Cancels `f` (as Fiber::cancel does): its blocking calls end with Errc::cancelled. Hub thread
/// of `f` only, while `f` has not finished.
void cancel_fiber(FiberRef f) noexcept;

}  // namespace weft::internal
