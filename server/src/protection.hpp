// Protection of the data listener: load shedding (a hub whose schedule delay or lag stays above
// its budget answers new requests 503 until it recovers, userver's congestion control) and a stall
// budget per plugin (a plugin whose handlers blocked their hubs for longer than its budget
// within a window has its routes answer 503 for a cool-down, while the other plugins keep full
// service). The plugin host wraps every plugin route with admit(); the admin listener is never
// wrapped, so it is never shed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "weft/core/runtime.hpp"
#include "weft/http/response.hpp"
#include "weft/monitor/metrics.hpp"

namespace weft::server {

/// [shed]: load shedding. Off by default: a 503 is a visible change of behaviour, and the right
/// budget depends on the service's own latency objective.
struct ShedOptions {
    bool enabled = false;
    /// A hub starts shedding when this quantile of its schedule delay (ready -> running) or of
    /// its lag (the probe timer's lateness: requests waiting in the kernel behind a blocked hub
    /// show there, not in the run queue) over the last `window` is above `budget`, and stops
    /// once a whole window since then was within it. The budget is rounded up to the
    /// histogram's 1-2-5 bucket bounds (5us..10s).
    std::chrono::nanoseconds budget = std::chrono::milliseconds(50);
    double quantile = 0.99;
    std::chrono::nanoseconds window = std::chrono::seconds(1);
    /// Fewer wakeups than this in the window never shed (too few to judge).
    std::uint64_t min_wakeups = 20;
    /// The Retry-After of a shed request.
    std::chrono::nanoseconds retry_after = std::chrono::seconds(1);
};

/// [stall]: the server's default stall budget per plugin (a plugin's [[plugin]] stall_budget
/// overrides `budget`). Off by default (budget 0): quarantining a plugin takes routes out of
/// service, which an operator should choose knowingly; the watchdog reports blocking anyway.
struct StallOptions {
    std::chrono::nanoseconds budget{0};
    std::chrono::nanoseconds window = std::chrono::seconds(10);
    std::chrono::nanoseconds cooldown = std::chrono::seconds(30);
};

class Protection {
  public:
    /// `rt`: the worker hubs (their schedule-delay histograms, which need collect_stats).
    Protection(const Runtime& rt, ShedOptions shed, StallOptions stall);
    ~Protection();
    Protection(const Protection&) = delete;
    Protection& operator=(const Protection&) = delete;

    /// Registers a plugin before its routes; returns its index for admit(). `budget`: its own
    /// stall budget, else the server default. Main thread, before start().
    unsigned add_plugin(std::string name, std::optional<std::chrono::nanoseconds> budget);
    /// Starts the thread that watches schedule delay and cool-downs.
    void start();
    /// Ends that thread (it reads the hubs: call it before the runtime goes). admit() and
    /// add_blocking() still work; cool-downs then end only when admit() sees them expire.
    void stop();

    /// On the hub, before plugin `plugin`'s handler: nullopt to serve, or the 503 to send
    /// (load shedding first, then the plugin's quarantine). Counts what it refuses.
    std::optional<http::Response> admit(unsigned plugin) {
        // Every request asks: while no hub sheds and no plugin is quarantined, one load.
        if (refusing_.load(std::memory_order_relaxed) == 0) return std::nullopt;
        return admit_slow(plugin);
    }

    /// A blockage by plugin `plugin` (a report: blocked so far), then more of it when it ends
    /// (the rest of its measured duration). Any thread (the watchdog's reporter).
    void add_blocking(unsigned plugin, std::chrono::nanoseconds d);
    /// The index of a plugin by name, or -1.
    int plugin_index(std::string_view name) const;

    /// JSON for the debug page: {"shed":{...,"hubs":[{"hub","shedding","delay_quantile_s",
    /// "wakeups"}]},"stall":{...,"plugins":[{"plugin","budget_s","blocked_total_s",
    /// "quarantined","remaining_s","quarantines","refused"}]}}.
    std::string state_json() const;
    /// weft_shed_requests_total{hub}, weft_hub_shedding{hub}, weft_plugin_quarantined{plugin},
    /// weft_plugin_quarantines_total{plugin}, weft_plugin_refused_requests_total{plugin},
    /// weft_plugin_blocking_seconds_total{plugin}.
    [[nodiscard]] monitor::CollectorHandle add_metrics(monitor::Registry& registry) const;

  private:
    struct HubState;
    struct PluginState;
    std::optional<http::Response> admit_slow(unsigned plugin);
    void run();
    void look_at_hubs();
    void look_at_plugins();

    const Runtime& rt_;
    const ShedOptions shed_;
    const StallOptions stall_;
    std::vector<std::unique_ptr<HubState>> hubs_;
    std::vector<std::unique_ptr<PluginState>> plugins_;
    /// Hubs shedding plus plugins quarantined (a quarantine counts until the thread ends it).
    std::atomic<int> refusing_{0};
    std::mutex mu_;  // plugins' windows, and the thread's stop flag
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace weft::server
