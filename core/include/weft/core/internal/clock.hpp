// Engine hooks, not for handler authors: cheaper ways to read the time on the request path, where
// the exact clock used to be read a dozen times per request. Not installed with the SDK.
//
// - coarse_now(): CLOCK_MONOTONIC_COARSE on Clock's epoch. Never ahead of Clock::now(), behind
//   it by a scheduler tick (1 to 10 ms) or, on a virtual CPU, two (7.3 ms seen with 4 ms ticks),
//   and read for a fraction of the cost (it copies
//   the kernel's last tick instead of reading the TSC).
// - coarse_deadline(d): `d` from now, measured with the coarse clock and one tick added, so that
//   it does not fall due early (unless a virtual CPU's ticks were held up) and is at most a tick
//   late. For timeouts of seconds (idle, send stall).
// - slice_now(): when the running fiber got the CPU, which the hub reads anyway for the
//   watchdog; the exact clock outside a fiber or when the hub keeps no statistics.
#pragma once

#include <time.h>

#include <chrono>

#include "weft/core/deadline.hpp"

namespace weft::internal {

inline Clock::time_point coarse_now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

/// The coarse clock's tick (its resolution), read once.
Clock::duration coarse_tick() noexcept;

inline Deadline coarse_deadline(Clock::duration d) noexcept {
    const Clock::time_point now = coarse_now() + coarse_tick();
    if (d >= Clock::time_point::max() - now) return Deadline::never();
    return Deadline(now + d);
}

Clock::time_point slice_now() noexcept;

}  // namespace weft::internal
