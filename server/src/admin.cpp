// Admin endpoint handlers.
#include "admin.hpp"

#include <chrono>

#include "logging.hpp"
#include "weft/core/hub.hpp"
#include "weft/monitor/exposition.hpp"

namespace weft::server {

namespace {

std::int64_t mono_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

const char* activity_name(HubActivity a) {
    switch (a) {
        case HubActivity::starting: return "starting";
        case HubActivity::running: return "running";
        case HubActivity::waiting: return "idle";
        case HubActivity::stopped: return "stopped";
    }
    return "?";
}

http::Response healthz(AdminState& st) {
    std::string hubs;
    bool healthy = true;
    const std::int64_t now = mono_ns();
    for (unsigned i = 0; i < st.workers->hub_count(); ++i) {
        const HubProbe& p = st.workers->hub(i).probe();
        HubActivity act = p.activity.load(std::memory_order_relaxed);
        bool blocked = st.watchdog && st.watchdog->hub_stats(i).blocked_now;
        double blocked_for = 0;
        if (blocked) {
            std::int64_t start = p.slice_start_ns.load(std::memory_order_relaxed);
            if (start > 0 && now > start) blocked_for = static_cast<double>(now - start) / 1e9;
            if (blocked_for >= static_cast<double>(st.liveness_limit.count())) healthy = false;
        }
        std::int64_t fibers = 0;
        for (auto& c : p.fibers) fibers += c.load(std::memory_order_relaxed);
        if (!hubs.empty()) hubs += ',';
        hubs += "{\"hub\":" + std::to_string(i) + ",\"state\":\"" + activity_name(act) +
                "\",\"blocked\":" + (blocked ? "true" : "false") +
                ",\"blocked_seconds\":" + std::to_string(blocked_for) +
                ",\"fibers\":" + std::to_string(fibers) +
                ",\"epoch\":" + std::to_string(p.epoch.load(std::memory_order_relaxed)) + "}";
    }
    std::string body = std::string("{\"status\":\"") + (healthy ? "ok" : "unhealthy") +
                       "\",\"backend\":\"" + backend_name(st.workers->backend()) +
                       "\",\"hubs\":[" + hubs + "]}\n";
    return http::Response::json(std::move(body), healthy ? 200 : 503);
}

http::Response readyz(AdminState& st) {
    if (st.draining.load(std::memory_order_relaxed))
        return http::Response::json("{\"ready\":false,\"reason\":\"draining\"}\n", 503);
    if (!st.ready.load(std::memory_order_relaxed))
        return http::Response::json("{\"ready\":false,\"reason\":\"starting\"}\n", 503);
    return http::Response::json("{\"ready\":true}\n", 200);
}

}  // namespace

void register_admin_routes(http::Router& router, AdminState& st) {
    router.get("/metrics", [&st](http::Request& req) {
        auto scrape = monitor::scrape(*st.registry, req.header("Accept").value_or(""));
        http::Response r(200, std::move(scrape.body));
        r.set_content_type(scrape.content_type);
        return r;
    });
    router.get("/healthz", [&st](http::Request&) { return healthz(st); });
    router.get("/readyz", [&st](http::Request&) { return readyz(st); });
    if (!st.debug_endpoints) return;
    router.get("/debug/blocking", [&st](http::Request&) {
        return http::Response::json(st.watchdog ? st.watchdog->recent_reports_json() : "{}");
    });
    router.get("/debug/fibers", [&st](http::Request&) {
        return http::Response::text(st.watchdog ? st.watchdog->run_info() : "");
    });
    router.get("/debug/config", [&st](http::Request&) {
        return http::Response::json(st.config_json);
    });
}

}  // namespace weft::server
