// The watchdog: one detector thread for all hubs of a Runtime (gevent's monitor thread, done
// natively) and one reporter thread. It reports a hub whose epoch has not moved for longer than
// max_blocking_time while it runs a fiber or its own loop, with the blocked fiber's native stack,
// the request it serves and what the thread is doing in the kernel; then a closing record with the
// measured duration once the hub runs again. Blocking the code allowed (AllowBlocking) is
// reported too, marked allowed and counted apart. It also runs the memory monitor and the
// run-info dump.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/runtime.hpp"
#include "weft/monitor/blocking_report.hpp"
#include "weft/monitor/metrics.hpp"
#include "weft/monitor/settings.hpp"

namespace weft::monitor {

/// The memory monitor's events (gevent's MemoryUsageThresholdExceeded / ...UnderThreshold).
struct MemoryEvent {
    std::uint64_t rss_bytes = 0;
    std::uint64_t limit_bytes = 0;
    std::uint64_t peak_bytes = 0;  ///< highest RSS seen since the monitor started
    bool above = false;
};

/// A subscription to a watchdog event; unsubscribes when destroyed or reset(). After reset()
/// returns the callback is not running and will not run again (reset() from inside the callback
/// itself is allowed). Move-only.
class Subscription {
  public:
    Subscription() = default;
    Subscription(Subscription&&) noexcept = default;
    Subscription& operator=(Subscription&& o) noexcept {
        if (this != &o) {
            reset();
            cancel_ = std::move(o.cancel_);
        }
        return *this;
    }
    ~Subscription() { reset(); }
    void reset() noexcept {
        if (cancel_) std::exchange(cancel_, nullptr)();
    }

  private:
    friend class Watchdog;
    explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    std::function<void()> cancel_;
};

class Watchdog {
  public:
    /// Starts watching every hub of `rt` when settings.enabled (otherwise it only serves the
    /// run-info dump and metrics). `rt` must outlive the watchdog; construct it after the
    /// Runtime and destroy it before.
    /// Throws std::invalid_argument for bad settings (see validate()) and std::system_error if
    /// the reports file cannot be opened.
    Watchdog(Runtime& rt, MonitorSettings settings);
    /// Stops and joins the watchdog thread.
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    const MonitorSettings& settings() const noexcept;
    /// How often each hub is looked at (a fifth of max_blocking_time, within 1 ms..1 s), so that
    /// a blockage is reported before 1.5x the threshold has passed.
    std::chrono::nanoseconds check_period() const noexcept;

    // Events, gevent-style. Blocking callbacks run on the reporter thread, in order (a report
    // before its closing record); memory callbacks on the thread that checked (the detector, or
    // the caller of check_memory_now()). An exception a callback throws is logged and the
    // watchdog carries on. A slow callback delays later reports, never detection.
    [[nodiscard]] Subscription on_blocked(std::function<void(const BlockingReport&)> fn);
    /// Runs on the reporter thread for each report before any output sees it (the log, the
    /// reports file, /debug/blocking, subscribers), to add what only the caller knows: the
    /// server labels a request's report with the plugin that registered its route. Any
    /// thread; a report already on its way may miss it. An exception it throws is logged and
    /// the report goes on as it was.
    void set_annotator(std::function<void(BlockingReport&)> fn);
    [[nodiscard]] Subscription on_unblocked(std::function<void(const BlockingEnd&)> fn);
    [[nodiscard]] Subscription on_memory_above(std::function<void(const MemoryEvent&)> fn);
    [[nodiscard]] Subscription on_memory_below(std::function<void(const MemoryEvent&)> fn);

    /// JSON of the recent reports with their closing records, the distinct stacks with counts,
    /// and per-hub totals: the body of /debug/blocking. Thread-safe.
    std::string recent_reports_json() const;
    /// The recent reports, oldest first; only the newest 8 keep `hubs` and `threads` (the
    /// fiber trees of every hub are large). Thread-safe.
    std::vector<BlockingReport> recent_reports() const;
    HubBlockingStats hub_stats(unsigned hub) const;

    /// gevent's format_run_info for this runtime (threads, then every hub's fiber tree).
    std::string run_info() const;
    /// Asks the watchdog to log the run-info dump on its logger (at warning level, so that it is
    /// not filtered out). One dump every 5 s at most: requests within 5 s of a dump are merged
    /// into one dump at the end of those 5 s. Async-signal-safe, so a signal handler or a
    /// sigwait() thread may call it; but a disabled watchdog has no thread to hand the dump to
    /// and makes it at once, on the calling thread: then from a sigwait() thread only.
    void request_run_info_dump() noexcept;
    /// Installs a handler for `signo` (default SIGUSR1) that requests the dump from this
    /// watchdog. The previous handler comes back when the watchdog is destroyed. For programs
    /// that handle signals with sigwait(), call request_run_info_dump() instead.
    void install_run_info_signal(int signo = SIGUSR1);

    /// Samples RSS now (on the calling thread) and fires the memory events if the limit was
    /// crossed; the watchdog also does this every memory_period.
    void check_memory_now();

    /// Registers the blocking metrics: weft_hub_blocking_events_total,
    /// weft_hub_blocking_seconds_total, weft_hub_blocking_allowed_events_total,
    /// weft_hub_blocking_allowed_seconds_total, weft_hub_blocking_reports_dropped_total,
    /// weft_hub_blocking_threshold_seconds (per hub), weft_monitor_memory_max_bytes and
    /// weft_monitor_memory_over_limit. Reset the handle before the watchdog is destroyed.
    [[nodiscard]] CollectorHandle add_metrics(Registry& registry) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace weft::monitor
