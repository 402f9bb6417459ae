// Hub: the event loop of one OS thread. It runs that thread's fibers, their timers and I/O.
// This is the public face: identify the current hub, post work to any hub from any thread, and
// read what it publishes for monitoring.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/core/fiber.hpp"
#include "weft/core/hub_stats.hpp"
#include "weft/core/unique_function.hpp"

namespace weft {

class Runtime;

/// A snapshot of one fiber, for dumps (gevent's format_run_info).
struct FiberInfo {
    FiberId id = 0;
    FiberId parent = 0;
    std::string name;
    FiberState state = FiberState::ready;
    std::string wait_reason;  ///< what a parked fiber waits for ("sleep", "recv", "lock"...)
    const char* spawn_file = "";
    unsigned spawn_line = 0;
    const char* spawn_function = "";
    std::int64_t age_ns = 0;
};

/// Told about every switch on a hub (a fiber slice starting or ending), with the time.
/// Installed by AssertSwitches-style tools; runs on the hub thread, must be cheap.
class SwitchObserver {
  public:
    virtual void on_switch(std::int64_t now_ns) noexcept = 0;

  protected:
    ~SwitchObserver() = default;
};

class Hub {
  public:
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    /// The hub that runs the calling thread, or nullptr.
    static Hub* current() noexcept;

    /// Index of this hub in its runtime (0..n-1).
    unsigned index() const noexcept;
    Runtime& runtime() const noexcept;
    /// Name of the I/O backend: "io_uring" or "epoll".
    const char* backend_name() const noexcept;

    /// Runs `fn` on this hub's thread, in the hub's own context (not a fiber: it must not
    /// block; it may spawn fibers). Callable from any thread; wakes the hub if it sleeps.
    void post(UniqueFunction<void()> fn);

    /// Read-only monitoring face (see HubProbe). Safe from any thread.
    const HubProbe& probe() const noexcept;

    /// Snapshot of every fiber on this hub. Safe from any thread, even while the hub is
    /// blocked in a fiber.
    std::vector<FiberInfo> fibers() const;
    /// Live fibers by state (index: FiberState), counted now. Safe from any thread.
    std::array<std::size_t, kFiberStateCount> fiber_counts() const;

    /// Installs `o` (nullptr removes) and returns the previous observer, which `o` should call
    /// on in turn if it wants to nest. Hub thread only.
    SwitchObserver* exchange_switch_observer(SwitchObserver* o) noexcept;

    /// Marks deliberate blocking on this hub: while the count is above zero the watchdog does not
    /// report it. Hub thread only (the watchdog reads it).
    void allow_blocking(bool on) noexcept;

  protected:
    Hub() = default;
    ~Hub() = default;
};

}  // namespace weft
