// Admin endpoint handlers.
#include "admin.hpp"

#include <chrono>

#include "logging.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/text.hpp"
#include "weft/monitor/exposition.hpp"
#include "weft/monitor/pprof.hpp"
#include "weft/monitor/run_info.hpp"

namespace weft::server {

namespace {

// How long hub `i` has been blocked in its current slice, in seconds; 0 when it is not (as
// the watchdog sees it), and so with the watchdog off.
double blocked_seconds(const AdminState& st, unsigned i, std::int64_t now) {
    if (!st.watchdog || !st.watchdog->hub_stats(i).blocked_now) return 0;
    const HubProbe& p = weft::internal::probe(st.workers->hub(i));
    const std::int64_t start = p.slice_start_ns.load(std::memory_order_relaxed);
    return start > 0 && now > start ? static_cast<double>(now - start) / 1e9 : 0;
}

http::Response healthz(AdminState& st) {
    std::string hubs;
    bool healthy = true;
    const std::int64_t now = weft::now_ns();
    for (unsigned i = 0; i < st.workers->hub_count(); ++i) {
        const HubProbe& p = weft::internal::probe(st.workers->hub(i));
        HubActivity act = p.activity.load(std::memory_order_relaxed);
        bool blocked = st.watchdog && st.watchdog->hub_stats(i).blocked_now;
        const double blocked_for = blocked_seconds(st, i, now);
        if (blocked_for > 0 && blocked_for >= static_cast<double>(st.liveness_limit.count()))
            healthy = false;
        std::size_t fibers = 0;
        for (std::size_t c : st.workers->hub(i).fiber_counts())
            fibers += c;
        if (!hubs.empty()) hubs += ',';
        hubs += "{\"hub\":" + std::to_string(i) + ",\"state\":\"" + hub_activity_name(act) +
                "\",\"blocked\":" + (blocked ? "true" : "false") +
                ",\"blocked_seconds\":" + std::to_string(blocked_for) +
                ",\"fibers\":" + std::to_string(fibers) +
                ",\"epoch\":" + std::to_string(p.epoch.load(std::memory_order_relaxed)) + "}";
    }
    std::string body = std::string("{\"status\":\"") + (healthy ? "ok" : "unhealthy") +
                       "\",\"backend\":\"" + backend_name(st.workers->backend()) + "\",\"hubs\":[" +
                       hubs + "]}\n";
    return http::Response::json(std::move(body), healthy ? 200 : 503);
}

// The run-info dump as JSON: {"hubs":[{"hub","tid","backend","activity","running_fiber",
// "fibers":[{"id","parent","name","state","wait","depth","age_seconds","spawned_at"}],
// "omitted"}],"threads":[{"tid","name","state","hub"}]}.

// At most this many fibers of each hub are listed ("omitted" counts the rest): a hub serving
// 100,000 connections would otherwise make tens of megabytes of JSON, every two seconds for
// each open debug page.
constexpr std::size_t kFibersPerHubListed = 1000;
}  // namespace

std::string fibers_json(const Runtime& rt) {
    std::string out = "{\"hubs\":[";
    bool first_hub = true;
    for (const monitor::HubFibers& h : monitor::snapshot_hubs(rt, kFibersPerHubListed)) {
        if (!first_hub) out += ',';
        first_hub = false;
        out += "{\"hub\":" + std::to_string(h.hub) + ",\"tid\":" + std::to_string(h.tid) +
               ",\"backend\":" + json_quote(h.backend) + ",\"activity\":" + json_quote(h.activity) +
               ",\"running_fiber\":" + std::to_string(h.running_fiber) + ",\"fibers\":[";
        bool first = true;
        for (const monitor::FiberNode& n : h.fibers) {
            const FiberInfo& f = n.info;
            if (!first) out += ',';
            first = false;
            std::string site = f.spawn_file && *f.spawn_file
                                   ? std::string(f.spawn_file) + ":" + std::to_string(f.spawn_line)
                                   : std::string();
            out +=
                "{\"id\":" + std::to_string(f.id) + ",\"parent\":" + std::to_string(f.parent) +
                ",\"name\":" + json_quote(f.name) +
                ",\"state\":" + json_quote(fiber_state_name(f.state)) +
                ",\"wait\":" + json_quote(f.wait_reason) + ",\"depth\":" + std::to_string(n.depth) +
                ",\"age_seconds\":" + std::to_string(static_cast<double>(f.age_ns) / 1e9) +
                ",\"spawned_at\":" + json_quote(site) +
                ",\"spawn_function\":" + json_quote(f.spawn_function ? f.spawn_function : "") + "}";
        }
        out += "],\"omitted\":" + std::to_string(h.omitted) + "}";
    }
    out += "],\"threads\":[";
    bool first = true;
    for (const monitor::ThreadInfo& t : monitor::snapshot_threads(&rt)) {
        if (!first) out += ',';
        first = false;
        out += "{\"tid\":" + std::to_string(t.tid) + ",\"name\":" + json_quote(t.name) +
               ",\"state\":" + json_quote(std::string(1, t.state)) +
               ",\"hub\":" + std::to_string(t.hub) + "}";
    }
    out += "]}\n";
    return out;
}

namespace {

http::Response readyz(AdminState& st) {
    if (st.draining.load(std::memory_order_relaxed))
        return http::Response::json("{\"ready\":false,\"reason\":\"draining\"}\n", 503);
    if (!st.ready.load(std::memory_order_relaxed))
        return http::Response::json("{\"ready\":false,\"reason\":\"starting\"}\n", 503);
    // A hub held this long serves none of the connections the kernel gives it: out of the
    // load balancer until it is free again (/healthz fails later, at liveness_limit).
    const std::int64_t now = weft::now_ns();
    for (unsigned i = 0; i < st.workers->hub_count(); ++i) {
        const double blocked_for = blocked_seconds(st, i, now);
        if (blocked_for > 0 && blocked_for >= static_cast<double>(st.readiness_limit.count()))
            return http::Response::json("{\"ready\":false,\"reason\":\"hub " + std::to_string(i) +
                                            " blocked for " + std::to_string(blocked_for) +
                                            " s\"}\n",
                                        503);
    }
    // Newcomers wait in the kernel's backlog, unserved, while the process is out of file
    // descriptors: out of the load balancer until connections are accepted again.
    if (st.server && st.server->out_of_descriptors())
        return http::Response::json(
            "{\"ready\":false,\"reason\":\"out of file descriptors: new connections are not "
            "accepted\"}\n",
            503);
    return http::Response::json("{\"ready\":true}\n", 200);
}

// Whether the client takes gzip (Accept-Encoding: RFC 9110 §12.5.3; "gzip;q=0" refuses it,
// "*" takes it unless gzip is named with q=0).
bool accepts_gzip(const http::Request& req) {
    auto trim_ows = [](std::string_view v) {
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
            v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
            v.remove_suffix(1);
        return v;
    };
    bool gzip = false, star = false, named = false;
    req.headers().for_each_value("Accept-Encoding", [&](std::string_view value) {
        while (!value.empty()) {
            const auto comma = value.find(',');
            std::string_view item = value.substr(0, comma);
            value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
            const auto semi = item.find(';');
            std::string_view coding = trim_ows(item.substr(0, semi));
            bool refused = false;
            if (semi != std::string_view::npos) {
                std::string_view q = trim_ows(item.substr(semi + 1));
                if (q.size() >= 2 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                    q = trim_ows(q.substr(2));
                    refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
                }
            }
            if (http::iequals(coding, "gzip") || http::iequals(coding, "x-gzip")) {
                named = true;
                gzip = !refused;
            } else if (coding == "*") {
                star = !refused;
            }
        }
    });
    return named ? gzip : star;
}

}  // namespace

void register_admin_routes(http::Router& router, AdminState& st) {
    // Prometheus asks for gzip (as client_golang's handler, we give it): the text is long and
    // repetitive, a tenth of it on the wire.
    router.get("/metrics", [&st](http::Request& req) {
        auto scrape = monitor::scrape(*st.registry, req.header("Accept").value_or(""));
        const bool gzip = accepts_gzip(req);
        http::Response r(200, gzip ? monitor::gzip(scrape.body) : std::move(scrape.body));
        r.set_content_type(scrape.content_type);
        r.add_header("Vary", "Accept-Encoding");
        if (gzip) r.add_header("Content-Encoding", "gzip");
        return r;
    });
    router.get("/healthz", [&st](http::Request&) { return healthz(st); });
    router.get("/readyz", [&st](http::Request&) { return readyz(st); });
    if (!st.debug_endpoints) return;
    // The live page (and the index of what follows), its stream and the profiles.
    register_debug_routes(router, st);
    router.get("/debug/blocking", [&st](http::Request&) {
        return http::Response::json(st.watchdog ? st.watchdog->recent_reports_json() : "{}");
    });
    // JSON by default; ?format=text gives gevent's format_run_info layout (what SIGUSR1 logs).
    router.get("/debug/fibers", [&st](http::Request& req) {
        const auto format = req.query("format").value_or("json");
        if (format == "text")
            return http::Response::text(monitor::format_run_info(*st.workers, kFibersPerHubListed));
        if (format != "json") {
            std::string buf;  // the caller's bytes, shown escaped
            return http::Response::text(
                "format must be json or text, got '" +
                    std::string(weft::escaped_ascii(format.substr(0, 64), buf)) + "'\n",
                400);
        }
        return http::Response::json(fibers_json(*st.workers));
    });
    router.get("/debug/config",
               [&st](http::Request&) { return http::Response::json(st.config_json); });
}

}  // namespace weft::server
