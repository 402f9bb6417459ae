// Test plugin: subscribes to the watchdog's blocking reports through Context::on_blocked and
// serves GET /blocked-seen with what it heard, by route, so that a test can check that a plugin
// hears of a blockage elsewhere in the server (the demo's /block) with the whole report.
#include <map>
#include <mutex>
#include <string>

#include "weft/plugin.hpp"

namespace {

using weft::http::Request;
using weft::http::Response;
using weft::monitor::BlockingReport;

struct RouteSeen {
    int reports = 0;
    int allowed = 0;
    double last_blocked_seconds = 0;
    std::size_t last_stack_frames = 0;
};

// Written on the watchdog's reporter thread, read by handlers on the hubs.
struct Seen {
    std::mutex mu;
    int reports = 0;
    std::map<std::string, RouteSeen> routes;  // by the report's "route" label ("" if none)
};

Seen& seen() {
    static Seen s;  // plugins are never unloaded
    return s;
}

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out + "\"";
}

void record(const BlockingReport& r) {
    std::string route;
    for (const auto& [k, v] : r.labels)
        if (k == "route") route = v;
    Seen& s = seen();
    std::lock_guard<std::mutex> g(s.mu);
    ++s.reports;
    RouteSeen& rs = s.routes[route];
    ++rs.reports;
    if (r.allowed) ++rs.allowed;
    rs.last_blocked_seconds = r.blocked_s;
    rs.last_stack_frames = r.stack.size();
}

Response report() {
    Seen& s = seen();
    std::lock_guard<std::mutex> g(s.mu);
    std::string routes;
    for (const auto& [route, rs] : s.routes) {
        if (!routes.empty()) routes += ',';
        routes += quoted(route) + ":{\"reports\":" + std::to_string(rs.reports) +
                  ",\"allowed\":" + std::to_string(rs.allowed) +
                  ",\"last_blocked_seconds\":" + std::to_string(rs.last_blocked_seconds) +
                  ",\"last_stack_frames\":" + std::to_string(rs.last_stack_frames) + "}";
    }
    return Response::json("{\"reports\":" + std::to_string(s.reports) + ",\"routes\":{" + routes +
                          "}}\n");
}

void init(weft::plugin::Context& ctx) {
    ctx.on_blocked(&record);
    ctx.route("GET", "/blocked-seen", [](Request&) { return report(); });
}

}  // namespace

WEFT_PLUGIN("blocked_listener", "1.0", init)
