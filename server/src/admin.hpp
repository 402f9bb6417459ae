// The admin endpoints, served by their own runtime (own thread), so they answer while every
// worker hub is blocked: /metrics, /healthz, /readyz and, unless switched off, /debug/ (the live
// page and an index), /debug/events (its Server-Sent Events), /debug/blocking, /debug/fibers,
// /debug/config, /debug/state and the pprof profiles /debug/pprof/hubblock and /profile.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "hub_block_profile.hpp"
#include "live_feed.hpp"
#include "protection.hpp"
#include "weft/core/runtime.hpp"
#include "weft/http/router.hpp"
#include "weft/http/server.hpp"
#include "weft/monitor/metrics.hpp"
#include "weft/monitor/watchdog.hpp"

namespace weft::server {

/// Seconds of history the debug page's heatmaps show (and the sampler keeps).
inline constexpr std::size_t kDebugHistoryTicks = 180;

struct AdminState {
    monitor::Registry* registry = nullptr;
    monitor::Watchdog* watchdog = nullptr;
    Runtime* workers = nullptr;
    /// The data port's server: /readyz fails while it cannot accept (out of descriptors).
    const http::Server* server = nullptr;
    std::atomic<bool> ready{false};     ///< listeners bound, plugins initialized
    std::atomic<bool> draining{false};  ///< a drain has begun
    std::string config_json;
    bool debug_endpoints = true;
    /// /healthz fails (503) while a worker hub has been blocked in one slice this long.
    std::chrono::seconds liveness_limit{60};
    /// /readyz fails (503) while a worker hub has been blocked in one slice this long.
    std::chrono::seconds readiness_limit{3};

    // The debug page and the profiles (debug_routes.cpp).
    const HubBlockProfile* hubblock = nullptr;
    const LiveFeed* feed = nullptr;
    const Protection* protection = nullptr;
    /// [{"plugin","version","file","routes":["GET /block",...]}]
    std::string plugins_json = "[]";
    std::int64_t started_unix_ns = 0;
    /// /debug/events streams open at once; more get 503.
    unsigned max_event_streams = 8;
    std::atomic<unsigned> event_streams{0};
    /// Set before the worker hubs go: a CPU profile in progress stops sampling them.
    std::atomic<bool> stopping{false};
    /// A CPU profile samples (one at a time, as Go's pprof: more get 409).
    std::atomic<bool> cpu_profile_running{false};
    /// Timed hub-blocking profiles waiting out their seconds (at most kMaxTimedProfiles: each
    /// holds an admin connection, and /healthz must find one free).
    std::atomic<unsigned> timed_profiles{0};
    static constexpr unsigned kMaxTimedProfiles = 4;
    /// The sampler's ticks (per-hub histogram deltas, busy/idle, protection), one per second,
    /// kept for as long as the page's heatmaps show.
    LiveFeed ticks{kDebugHistoryTicks};
};

/// The run-info dump as JSON (what /debug/fibers serves).
std::string fibers_json(const Runtime& rt);

/// The debug page's sampler: once a second, the worker hubs' histogram deltas into
/// `state.ticks`. A fiber body for the admin hub; returns when the fiber is cancelled.
void run_debug_sampler(AdminState& state);

/// Registers the debug page, its event stream, /debug/state and the pprof endpoints.
void register_debug_routes(http::Router& router, AdminState& state);

/// Registers the admin routes on `router`; `state` must outlive the router's use.
void register_admin_routes(http::Router& router, AdminState& state);

}  // namespace weft::server
