// What a hub publishes about itself for the monitor: an epoch that moves every time control
// returns to the hub, what runs now and since when, and latency histograms. Written only by the
// hub's own thread (relaxed atomics: a plain store on x86), read by the watchdog and /metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace weft {

/// Upper bounds of the latency buckets, in nanoseconds: the 1-2-5 series from 5 us to 10 s.
inline constexpr std::array<std::int64_t, 20> kLatencyBucketBoundsNs = {
    5'000,       10'000,        20'000,        50'000,        100'000,
    200'000,     500'000,       1'000'000,     2'000'000,     5'000'000,
    10'000'000,  20'000'000,    50'000'000,    100'000'000,   200'000'000,
    500'000'000, 1'000'000'000, 2'000'000'000, 5'000'000'000, 10'000'000'000};

/// A single-writer latency histogram: non-cumulative bucket counts (the last one is +Inf)
/// and the sum of observations. Readers derive the count from the buckets.
struct LatencyHistogram {
    static constexpr std::size_t kBuckets = kLatencyBucketBoundsNs.size() + 1;
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets{};
    std::atomic<std::uint64_t> sum_ns{0};

    /// Records one observation. Only the owning hub thread may call it.
    void observe(std::int64_t ns) noexcept {
        if (ns < 0) ns = 0;
        std::size_t i = 0;
        while (i < kLatencyBucketBoundsNs.size() && ns > kLatencyBucketBoundsNs[i])
            ++i;
        bump(buckets[i], 1);
        bump(sum_ns, static_cast<std::uint64_t>(ns));
    }
    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t d) noexcept {
        a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
    }
};

enum class FiberState : std::uint8_t { ready = 0, running, parked, done };
inline constexpr int kFiberStateCount = 4;
const char* fiber_state_name(FiberState s) noexcept;

enum class HubActivity : std::uint8_t {
    starting = 0,
    running,  ///< running fibers or its own loop
    waiting,  ///< waiting for I/O or a timer: nothing to do (idle, never "blocked")
    stopped,
};

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
    /// Above zero while code on this hub blocks on purpose (Hub::allow_blocking).
    std::atomic<int> blocking_allowed{0};

    LatencyHistogram run_duration;  ///< how long each fiber slice held the hub
    /// Ready -> running, every wakeup. A fiber woken (or spawned) by another fiber counts from
    /// the end of the waker's slice, whose clock read stamps it: no clock read per wakeup.
    LatencyHistogram schedule_delay;
    LatencyHistogram lag;  ///< lateness of the periodic probe timer
    std::atomic<std::uint64_t> busy_ns{0};
    std::atomic<std::uint64_t> idle_ns{0};
    std::atomic<std::uint64_t> fibers_spawned{0};
};

}  // namespace weft
