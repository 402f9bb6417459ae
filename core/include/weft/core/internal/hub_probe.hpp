// Engine hooks, not for handler authors: what a hub publishes about itself for the monitor (an
// epoch that moves every time control returns to the hub, what runs now and since when, latency
// histograms), the switch observer that AssertSwitches installs, and the allow-blocking count.
// Written only by the hub's own thread (relaxed atomics), read by the watchdog and /metrics.
// Used by weft's monitor, HTTP server and server binary; not installed with the SDK.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "weft/core/internal/patched_calls.hpp"
#include "weft/core/latency_histogram.hpp"

namespace weft {

class Hub;

enum class HubActivity : std::uint8_t {
    starting = 0,
    running,  ///< running fibers or its own loop
    waiting,  ///< waiting for I/O or a timer: nothing to do (idle, never "blocked")
    stopped,
};

/// "starting", "running", "idle" (waiting for I/O or a timer) or "stopped": the one spelling
/// every dump, report and endpoint uses.
const char* hub_activity_name(HubActivity a) noexcept;

struct HubProbe {
    /// Advanced (relaxed) every time control returns to the hub, and once per loop turn.
    std::atomic<std::uint64_t> epoch{0};
    /// Id of the fiber holding the hub now, 0 when the hub runs its own loop.
    std::atomic<std::uint64_t> running_fiber{0};
    /// CLOCK_MONOTONIC ns when the current slice (fiber run or loop turn) began; kept only
    /// while stats are collected.
    std::atomic<std::int64_t> slice_start_ns{0};
    std::atomic<HubActivity> activity{HubActivity::starting};
    std::atomic<int> tid{0};  ///< kernel thread id of the hub thread
    /// Above zero while code on this hub blocks on purpose (internal::begin_allow_blocking): the
    /// watchdog still detects and counts such blocking, and reports it as "allowed" while the
    /// fiber that marked it last (`blocking_allowed_fiber`, 0 for the hub's loop) holds the
    /// hub. Another fiber's blocking, while the marking one waits inside its scope, is not.
    std::atomic<int> blocking_allowed{0};
    std::atomic<std::uint64_t> blocking_allowed_fiber{0};

    LatencyHistogram run_duration;  ///< how long each fiber slice held the hub
    /// Ready -> running, every wakeup. A fiber woken (or spawned) by another fiber counts from
    /// the end of the waker's slice, whose clock read stamps it: no clock read per wakeup.
    LatencyHistogram schedule_delay;
    LatencyHistogram lag;  ///< lateness of the periodic probe timer
    /// Wall time the hub spent running (busy_ns) and waiting with nothing to do (idle_ns),
    /// added as each busy period ends, and every millisecond or so while a busy hub does not
    /// wait; kept only while stats are collected. A slice that holds the hub (a blocking
    /// handler) is added only as it ends: `busy_since_ns` (CLOCK_MONOTONIC ns, 0 while the hub
    /// waits) is where the busy time not yet in busy_ns began, for a reader that wants it now.
    std::atomic<std::uint64_t> busy_ns{0};
    std::atomic<std::uint64_t> idle_ns{0};
    std::atomic<std::int64_t> busy_since_ns{0};
    /// Odd while the hub changes busy_ns and busy_since_ns together (a seqlock).
    std::atomic<std::uint32_t> busy_seq{0};
    std::atomic<std::uint64_t> fibers_spawned{0};
    /// Patched libc calls made by this hub's fibers (internal::PatchedCall order), and how many
    /// of them had to park the fiber because the call would have blocked.
    std::array<std::atomic<std::uint64_t>, internal::kPatchedCallCount> patched_calls{};
    std::array<std::atomic<std::uint64_t>, internal::kPatchedCallCount> patched_waits{};
};

/// Told about every switch on a hub (a fiber slice starting or ending), with the time.
/// Installed by AssertSwitches-style tools; runs on the hub thread, must be cheap.
class SwitchObserver {
  public:
    virtual void on_switch(std::int64_t now_ns) noexcept = 0;

  protected:
    ~SwitchObserver() = default;
};

namespace internal {

/// busy_ns with the busy time not yet added (since busy_since_ns, up to `now_ns`, CLOCK_MONOTONIC
/// ns): a hub held by one slice is busy now, not only once the slice ends. Any thread.
inline std::uint64_t busy_ns_now(const HubProbe& p, std::int64_t now_ns) noexcept {
    for (int tries = 0;; ++tries) {
        const std::uint32_t s1 = p.busy_seq.load(std::memory_order_acquire);
        const std::uint64_t busy = p.busy_ns.load(std::memory_order_relaxed);
        const std::int64_t since = p.busy_since_ns.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        const std::uint32_t s2 = p.busy_seq.load(std::memory_order_relaxed);
        if ((s1 & 1) == 0 && s1 == s2)
            return busy +
                   (since > 0 && now_ns > since ? static_cast<std::uint64_t>(now_ns - since) : 0);
        if (tries == 100) return busy;  // changing all the time: what was added at least
    }
}

/// The hub's published state. Safe from any thread.
const HubProbe& probe(const Hub& hub) noexcept;
/// Installs `o` (nullptr removes) and returns the previous observer, which `o` should call on
/// in turn if it wants to nest. Hub thread only.
SwitchObserver* exchange_switch_observer(Hub& hub, SwitchObserver* o) noexcept;
/// Marks deliberate blocking by the running fiber (or the hub's loop) on this hub; nestable.
/// Returns what end_allow_blocking(), called by the same fiber, needs. Hub thread only.
std::uint64_t begin_allow_blocking(Hub& hub) noexcept;
void end_allow_blocking(Hub& hub, std::uint64_t previous) noexcept;

}  // namespace internal
}  // namespace weft
