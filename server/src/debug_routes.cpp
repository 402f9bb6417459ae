// The debug page (/debug/, a self-contained HTML file compiled into the server), the Server-Sent
// Events that keep it live (/debug/events), /debug/state, and the pprof endpoints
// (/debug/pprof/hubblock, /debug/pprof/profile). All of it runs on the admin hub; an event
// stream is a streaming response whose fiber sleeps between pieces, and a CPU profile samples
// on the admin's offload thread, so neither holds the admin hub.
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "admin.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/offload.hpp"
#include "weft/core/text.hpp"
#include "weft/monitor/cpu_profile.hpp"
#include "weft/version.hpp"

namespace weft::server {

const char* debug_page_html() noexcept;  // debug_page.html, embedded by embed_text.cmake

namespace {

using namespace std::chrono_literals;

constexpr auto kTickPeriod = 1s;     // histogram deltas, busy/idle, protection state
constexpr auto kFibersPeriod = 2s;   // the fiber tree
constexpr auto kStreamPoll = 200ms;  // how soon a new report reaches the browsers
constexpr std::size_t kRecentOnConnect = 32;

std::string sse(std::string_view event, std::string_view data) {
    // The data is one line of JSON (no raw newlines), so one data: field carries it.
    std::string out;
    out.reserve(event.size() + data.size() + 20);
    out += "event: ";
    out += event;
    out += "\ndata: ";
    out += data;
    out += "\n\n";
    return out;
}

std::int64_t unix_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// What a tick reports: the hubs' cumulative counters, of which the page gets the differences.
struct HubCounters {
    std::vector<std::array<std::uint64_t, LatencyHistogram::kBuckets * 3>> buckets;
    std::vector<std::uint64_t> busy_ns, idle_ns;
};

HubCounters read_counters(const Runtime& rt) {
    HubCounters c;
    for (unsigned i = 0; i < rt.hub_count(); ++i) {
        const HubProbe& p = weft::internal::probe(rt.hub(i));
        std::array<std::uint64_t, LatencyHistogram::kBuckets * 3> b{};
        std::size_t k = 0;
        for (const LatencyHistogram* h : {&p.run_duration, &p.schedule_delay, &p.lag})
            for (const auto& v : h->buckets)
                b[k++] = v.load(std::memory_order_relaxed);
        c.buckets.push_back(b);
        // With the busy time not yet added (a slice that holds the hub now): a hub blocked
        // for seconds is busy in each of them, not idle until it lets go.
        c.busy_ns.push_back(weft::internal::busy_ns_now(p, weft::now_ns()));
        c.idle_ns.push_back(p.idle_ns.load(std::memory_order_relaxed));
    }
    return c;
}

// A reading may run ahead of the next by the microseconds between the hub's clock read and
// its publishing what it read.
double delta_seconds(std::uint64_t now, std::uint64_t before) {
    return now > before ? static_cast<double>(now - before) / 1e9 : 0.0;
}

std::string tick_json(const AdminState& st, const HubCounters& before, const HubCounters& now) {
    std::string out = fmt::format("{{\"t\":{},\"hubs\":[", unix_ns() / 1'000'000);
    const Runtime& rt = *st.workers;
    for (unsigned i = 0; i < now.buckets.size(); ++i) {
        const HubProbe& p = weft::internal::probe(rt.hub(i));
        std::size_t fibers = 0;
        for (std::size_t n : rt.hub(i).fiber_counts())
            fibers += n;
        const bool blocked = st.watchdog && st.watchdog->hub_stats(i).blocked_now;
        out += fmt::format(
            "{}{{\"hub\":{},\"activity\":\"{}\",\"blocked\":{},\"fibers\":{},"
            "\"busy_s\":{},\"idle_s\":{}",
            i ? "," : "", i, hub_activity_name(p.activity.load()), blocked, fibers,
            delta_seconds(now.busy_ns[i], before.busy_ns[i]),
            delta_seconds(now.idle_ns[i], before.idle_ns[i]));
        const char* names[] = {"run", "sched", "lag"};
        for (std::size_t h = 0; h < 3; ++h) {
            out += fmt::format(",\"{}\":[", names[h]);
            for (std::size_t k = 0; k < LatencyHistogram::kBuckets; ++k) {
                const std::size_t j = h * LatencyHistogram::kBuckets + k;
                out += fmt::format("{}{}", k ? "," : "", now.buckets[i][j] - before.buckets[i][j]);
            }
            out += ']';
        }
        out += '}';
    }
    out += "]";
    if (st.protection) out += ",\"protection\":" + st.protection->state_json();
    out += "}";
    return out;
}

std::string hello_json(const AdminState& st) {
    std::string bounds;
    for (std::int64_t b : kLatencyBucketBoundsNs)
        bounds += fmt::format("{}{}", bounds.empty() ? "" : ",", static_cast<double>(b) / 1e9);
    std::string config = st.config_json;
    // Its line breaks are whitespace between tokens (strings are escaped): one SSE data line.
    for (char& c : config)
        if (c == '\n' || c == '\r') c = ' ';
    return fmt::format(
        "{{\"version\":{},\"hubs\":{},\"backend\":\"{}\",\"bounds_s\":[{}],"
        "\"threshold_s\":{},\"tick_s\":{},\"plugins\":{},\"config\":{}}}",
        json_quote(WEFT_VERSION), st.workers->hub_count(), backend_name(st.workers->backend()),
        bounds,
        st.watchdog
            ? std::chrono::duration<double>(st.watchdog->settings().max_blocking_time).count()
            : 0.0,
        std::chrono::duration<double>(kTickPeriod).count(), st.plugins_json,
        config.empty() ? "{}" : config);
}

// The event stream of one browser tab: a hello (plugins, configuration, bucket bounds), the
// sampler's ticks of the last minutes and the recent reports, then reports and ticks as they
// come, and the fiber tree every two seconds.
void event_stream(AdminState& st, http::ResponseStream& out) {
    const unsigned open = st.event_streams.fetch_add(1) + 1;
    struct Release {
        AdminState& st;
        ~Release() { st.event_streams.fetch_sub(1); }
    } release{st};
    if (open > st.max_event_streams) {
        out.set_status(503).set_content_type("text/plain; charset=utf-8");
        out.add_header("Retry-After", "5");
        (void)out.write(
            fmt::format("503 {} debug event streams are open already ([admin] "
                        "max_event_streams)\n",
                        st.max_event_streams));
        return;
    }
    out.set_content_type("text/event-stream; charset=utf-8");
    out.add_header("Cache-Control", "no-store");
    out.add_header("X-Accel-Buffering", "no");  // a proxy in front must not buffer it
    if (!out.write("retry: 2000\n\n" + sse("hello", hello_json(st)))) return;

    std::uint64_t seq = 0;
    if (st.feed) {
        const std::uint64_t last = st.feed->last();
        seq = last > kRecentOnConnect * 2 ? last - kRecentOnConnect * 2 : 0;
    }
    // The sampler's history first: the heatmaps start with the last minutes filled in.
    std::uint64_t tick_seq = 0;
    auto next_fibers = std::chrono::steady_clock::now();
    // Until the server stops: then the stream ends as a response does (its last chunk), not
    // cut off with the connection.
    while (!st.stopping.load(std::memory_order_relaxed)) {
        std::string batch;
        for (auto& e : st.ticks.after(tick_seq)) {
            batch += sse(e.name, e.data);
            tick_seq = e.seq;
        }
        if (st.feed) {
            for (auto& e : st.feed->after(seq)) {
                batch += sse(e.name, e.data);
                seq = e.seq;
            }
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= next_fibers) {
            std::string f = fibers_json(*st.workers);
            while (!f.empty() && f.back() == '\n')
                f.pop_back();
            batch += sse("fibers", f);
            next_fibers = now + kFibersPeriod;
        }
        if (!batch.empty() && !out.write(batch)) return;  // the browser went away
        if (!weft::sleep_for(kStreamPoll)) return;        // cancelled: the server stops
    }
}

// ?NAME=N: nullopt when absent; `problem` says why when malformed or out of [min, max].
std::optional<long> int_param(const http::Request& req, std::string_view name, long min, long max,
                              std::string& problem) {
    auto v = req.query(name);
    if (!v) return std::nullopt;
    long n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < min || n > max) {
        std::string buf;  // the caller's bytes, shown escaped, 64 at most
        problem = fmt::format("{} must be a whole number from {} to {}, got '{}'\n", name, min, max,
                              weft::escaped_ascii(v->substr(0, 64), buf));
    }
    return n;
}

http::Response pprof_response(const monitor::PprofProfile& p, std::string_view name) {
    http::Response r(200, p.gzipped(), "application/octet-stream");
    r.add_header("Content-Disposition", fmt::format("attachment; filename=\"{}.pb.gz\"", name));
    r.add_header("X-Content-Type-Options", "nosniff");
    return r;
}

constexpr const char* kPprofIndex =
    "<!doctype html>\n<meta charset=utf-8>\n<title>weft pprof</title>\n<h1>weft profiles</h1>\n"
    "<p>pprof's format (gzipped profile.proto): <code>go tool pprof -top "
    "http://ADMIN/debug/pprof/hubblock</code>.</p>\n<ul>\n"
    "<li><a href=\"/debug/pprof/hubblock\">hubblock</a>: time fibers held their hub past the "
    "watchdog's threshold, by stack, labelled route, plugin and kind (cpu or syscall), since "
    "start; <code>?seconds=N</code>: over the next N seconds</li>\n"
    "<li><a href=\"/debug/pprof/profile?seconds=10\">profile?seconds=N</a>: the hub threads' CPU "
    "time by sampling for N seconds (default 30; <code>&amp;hz=</code> samples per second, "
    "default 100)</li>\n</ul>\n<p><a href=\"/debug/\">the live page</a></p>\n";

}  // namespace

void run_debug_sampler(AdminState& st) {
    HubCounters before = read_counters(*st.workers);
    while (weft::sleep_for(kTickPeriod)) {
        HubCounters now = read_counters(*st.workers);
        st.ticks.publish("tick", tick_json(st, before, now));
        before = std::move(now);
    }
}

void register_debug_routes(http::Router& router, AdminState& st) {
    // No request deadline for what lasts: the streams, and profiles over N seconds.
    const http::RouteOptions unbounded{.timeout = std::chrono::nanoseconds::zero()};
    for (const char* page : {"/debug", "/debug/"}) {
        router.get(page, [](http::Request&) {
            http::Response r(200);
            r.set_body_view(debug_page_html());
            r.set_content_type("text/html; charset=utf-8");
            r.add_header("Cache-Control", "no-store");
            // Everything is inline; nothing may come from elsewhere.
            r.add_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src "
                         "'unsafe-inline'; img-src data:; connect-src 'self'");
            return r;
        });
    }
    router.add_stream(
        "GET", "/debug/events",
        [&st](http::Request&, http::ResponseStream& out) { event_stream(st, out); }, unbounded);
    router.get("/debug/state", [&st](http::Request&) {
        return http::Response::json(
            fmt::format("{{\"plugins\":{},\"protection\":{}}}\n", st.plugins_json,
                        st.protection ? st.protection->state_json() : std::string("null")));
    });
    for (const char* index : {"/debug/pprof", "/debug/pprof/"}) {
        router.get(index, [](http::Request&) {
            return http::Response(200, kPprofIndex, "text/html; charset=utf-8");
        });
    }
    router.add(
        "GET", "/debug/pprof/hubblock",
        [&st](http::Request& req) {
            std::string problem;
            auto secs = int_param(req, "seconds", 1, 3600, problem);
            if (!problem.empty()) return http::Response::text(problem, 400);
            if (!st.hubblock) return http::Response::text("the watchdog is off\n", 404);
            if (!secs) {
                const std::int64_t now = unix_ns();
                return pprof_response(
                    HubBlockProfile::to_pprof(st.hubblock->totals(), nullptr, st.started_unix_ns,
                                              now - st.started_unix_ns),
                    "hubblock");
            }
            const unsigned timed = st.timed_profiles.fetch_add(1) + 1;
            struct Release {
                AdminState& st;
                ~Release() { st.timed_profiles.fetch_sub(1); }
            } release{st};
            if (timed > AdminState::kMaxTimedProfiles) {
                http::Response busy = http::Response::text(
                    fmt::format("{} timed hub-blocking profiles are running already, the most at "
                                "once; try again when one ends, or ask without seconds for the "
                                "totals since the start\n",
                                AdminState::kMaxTimedProfiles),
                    503);
                busy.add_header("Retry-After", std::to_string(*secs));
                return busy;
            }
            const std::int64_t t0 = unix_ns();
            const auto base = st.hubblock->totals();
            // A client that hangs up cancels the wait (the request's hang-up watch).
            if (!weft::sleep_for(std::chrono::seconds(*secs)))
                return http::Response::text("cancelled\n", 503);
            return pprof_response(
                HubBlockProfile::to_pprof(st.hubblock->totals(), &base, t0, unix_ns() - t0),
                "hubblock");
        },
        unbounded);
    router.add(
        "GET", "/debug/pprof/profile",
        [&st](http::Request& req) {
            std::string problem;
            auto secs = int_param(req, "seconds", 1, 300, problem);
            if (!problem.empty()) return http::Response::text(problem, 400);
            monitor::CpuProfileOptions o;
            o.duration = std::chrono::seconds(secs.value_or(30));
            auto hz = int_param(req, "hz", 1, 1000, problem);
            if (!problem.empty()) return http::Response::text(problem, 400);
            o.hz = static_cast<int>(hz.value_or(o.hz));
            o.stop = &st.stopping;
            // One at a time: samples of two would interleave, and each holds the admin's only
            // offload thread for its whole duration.
            if (st.cpu_profile_running.exchange(true)) {
                return http::Response::text(
                    "a CPU profile is already running (one at a time); try again when it ends\n",
                    409);
            }
            // Sampling sleeps between samples: on the admin's offload thread, not its hub, in a
            // fiber of its own, so that this one can see its client hang up (the request's
            // hang-up watch cancels it) and end the sampling instead of waiting it out.
            auto cancel = std::make_shared<std::atomic<bool>>(false);
            o.cancel = cancel.get();
            const Runtime* rt = st.workers;
            auto job = [&] {
                try {
                    return weft::spawn("cpu-profile", [&st, rt, o, cancel] {
                        struct Done {
                            AdminState& st;
                            ~Done() { st.cpu_profile_running.store(false); }
                        } done{st};
                        return weft::offload([&] { return monitor::sample_cpu_profile(*rt, o); });
                    });
                } catch (...) {
                    st.cpu_profile_running.store(false);  // no fiber: nothing samples
                    throw;
                }
            }();
            if (!job.wait()) {
                cancel->store(true);  // the job ends at its next sample and frees the slot
                job.detach();
                return http::Response::text("cancelled\n", 503);
            }
            return pprof_response(job.join(), "profile");
        },
        unbounded);
}

}  // namespace weft::server
