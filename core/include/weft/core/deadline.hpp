// Deadline: the point in time after which a blocking call gives up with Errc::timed_out.
// Every fiber-blocking call in Weft takes one; a duration converts to "that long from now".
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace weft {

using Clock = std::chrono::steady_clock;

/// Clock::now() in nanoseconds: the time base of HubProbe's timestamps.
inline std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

class Deadline {
  public:
    /// No deadline: wait until woken or cancelled.
    constexpr Deadline() noexcept = default;
    /// Absolute deadline.
    constexpr Deadline(Clock::time_point tp) noexcept : tp_(tp) {}  // NOLINT
    /// Relative deadline: `d` from now (a negative or zero duration has already passed).
    template <class Rep, class Period>
    Deadline(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT
        : tp_(from_now(saturate(d))) {}

    static constexpr Deadline never() noexcept { return Deadline(); }
    template <class Rep, class Period>
    static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
        return Deadline(d);
    }

    constexpr bool is_never() const noexcept { return tp_ == Clock::time_point::max(); }
    constexpr Clock::time_point time_point() const noexcept { return tp_; }
    bool passed() const noexcept { return !is_never() && Clock::now() >= tp_; }
    /// Time left (zero once passed; Clock::duration::max() for never).
    Clock::duration remaining() const noexcept {
        if (is_never()) return Clock::duration::max();
        auto left = tp_ - Clock::now();
        return left.count() > 0 ? left : Clock::duration::zero();
    }
    /// The earlier of two deadlines.
    friend constexpr Deadline earliest(Deadline a, Deadline b) noexcept {
        return a.tp_ < b.tp_ ? a : b;
    }

  private:
    // A duration in the clock's units, clamped instead of overflowing: seconds::max() (which
    // nanoseconds cannot hold) is "forever", not a negative, long passed, deadline.
    template <class Rep, class Period>
    static Clock::duration saturate(std::chrono::duration<Rep, Period> d) noexcept {
        if constexpr (std::is_same_v<std::chrono::duration<Rep, Period>, Clock::duration>) {
            return d;
        } else {
            using Wide = std::chrono::duration<long double, std::nano>;
            const Wide w = std::chrono::duration_cast<Wide>(d);
            if (w >= std::chrono::duration_cast<Wide>(Clock::duration::max()))
                return Clock::duration::max();
            if (w <= std::chrono::duration_cast<Wide>(Clock::duration::min()))
                return Clock::duration::min();
            return std::chrono::duration_cast<Clock::duration>(d);
        }
    }
    static Clock::time_point from_now(Clock::duration d) noexcept {
        auto now = Clock::now();
        if (d >= Clock::time_point::max() - now) return Clock::time_point::max();
        // Already passed; a very negative one must not wrap around below the clock's epoch.
        if (d < -now.time_since_epoch()) return Clock::time_point{};
        return now + d;
    }
    Clock::time_point tp_ = Clock::time_point::max();
};

}  // namespace weft
