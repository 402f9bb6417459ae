// The clock the watchdog's episode logic reads: the monotonic time base of HubProbe's
// timestamps and the wall time that reports carry. Behind an interface so that tests drive the
// episode logic with a fake clock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>

#include "weft/core/deadline.hpp"

namespace weft::monitor::detail {

/// Time for EpisodeTracker. Threads: called from the thread that owns the tracker's detection
/// side (the watchdog's detector), and from whichever thread reads closing records' times.
class MonitorClock {
  public:
    virtual ~MonitorClock() = default;
    /// Monotonic nanoseconds, on the time base of HubProbe::slice_start_ns (weft::now_ns).
    virtual std::int64_t now_ns() const noexcept = 0;
    /// Wall time, for the `when` of reports and closing records.
    virtual std::chrono::system_clock::time_point wall() const noexcept = 0;
};

/// The real clocks: weft::now_ns() and std::chrono::system_clock.
class SystemMonitorClock final : public MonitorClock {
  public:
    std::int64_t now_ns() const noexcept override { return weft::now_ns(); }
    std::chrono::system_clock::time_point wall() const noexcept override {
        return std::chrono::system_clock::now();
    }
};

}  // namespace weft::monitor::detail
