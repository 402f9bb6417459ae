// LatencyHistogram: a single-writer histogram of latencies in the 1-2-5 series from 5 us to 10 s,
// as the hubs keep them (run slices, schedule delay, lag) and HTTP keeps request durations.
// Written only by its owning thread (relaxed atomics: a plain store on x86), read from any.
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

/// Non-cumulative bucket counts (the last one is +Inf) and the sum of observations. Readers
/// derive the count from the buckets.
struct LatencyHistogram {
    static constexpr std::size_t kBuckets = kLatencyBucketBoundsNs.size() + 1;
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets{};
    std::atomic<std::uint64_t> sum_ns{0};

    /// Records one observation. Only the owning thread may call it.
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

}  // namespace weft
