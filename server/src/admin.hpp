// The admin endpoints, served by their own runtime (own thread), so they answer while every
// worker hub is blocked: /metrics, /healthz, /readyz and, unless switched off, /debug/ (an index),
// /debug/blocking, /debug/fibers and /debug/config.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "weft/core/runtime.hpp"
#include "weft/http/router.hpp"
#include "weft/monitor/metrics.hpp"
#include "weft/monitor/watchdog.hpp"

namespace weft::server {

struct AdminState {
    monitor::Registry* registry = nullptr;
    monitor::Watchdog* watchdog = nullptr;
    Runtime* workers = nullptr;
    std::atomic<bool> ready{false};     ///< listeners bound, plugins initialized
    std::atomic<bool> draining{false};  ///< a drain has begun
    std::string config_json;
    bool debug_endpoints = true;
    /// /healthz fails (503) while a worker hub has been blocked in one slice this long.
    std::chrono::seconds liveness_limit{60};
};

/// Registers the admin routes on `router`; `state` must outlive the router's use.
void register_admin_routes(http::Router& router, AdminState& state);

}  // namespace weft::server
