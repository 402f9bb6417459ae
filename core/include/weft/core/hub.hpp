// Hub: the event loop of one OS thread. It runs that thread's fibers, their timers and I/O.
// This is the public face: identify the current hub, post work to any hub from any thread, and
// list its fibers. (What the monitor reads lives in weft/core/internal/hub_probe.hpp.)
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/core/fiber.hpp"
#include "weft/core/unique_function.hpp"

namespace weft {

class Runtime;

enum class FiberState : std::uint8_t { ready = 0, running, parked, done };
inline constexpr int kFiberStateCount = 4;
const char* fiber_state_name(FiberState s) noexcept;

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

    /// Snapshot of every fiber on this hub. Safe from any thread, even while the hub is
    /// blocked in a fiber.
    std::vector<FiberInfo> fibers() const;
    /// Live fibers by state (index: FiberState), counted now. Safe from any thread.
    std::array<std::size_t, kFiberStateCount> fiber_counts() const;

  protected:
    Hub() = default;
    ~Hub() = default;
};

}  // namespace weft
