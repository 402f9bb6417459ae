// HTTP request metrics -> metric families.
#include "http_metrics.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

#include "weft/http/client.hpp"

namespace weft::server {

namespace {

monitor::MetricFamily family(const char* name, const char* help, monitor::MetricType type) {
    monitor::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
}

double load(const std::atomic<std::uint64_t>& a) {
    return static_cast<double>(a.load(std::memory_order_relaxed));
}

}  // namespace

monitor::CollectorHandle add_http_metrics(monitor::Registry& registry, const http::Server& server,
                                          HttpMetricsOptions options) {
    return registry.add_collector([&server, options](std::vector<monitor::MetricFamily>& out) {
        const http::RequestMetrics& metrics = server.metrics();
        auto bounds = monitor::latency_buckets_seconds();
        monitor::MetricFamily dur;
        dur.name = "http_server_request_duration_seconds";
        dur.help = "Duration of HTTP server requests, by method, status and route template.";
        dur.unit = "seconds";
        dur.type = monitor::MetricType::histogram;
        // Without the hub label, the hubs' series of one method, status and route add up.
        std::map<std::tuple<std::string_view, int, std::string_view>, std::size_t> merged;
        metrics.for_each_series([&](const http::RequestSeries& s) {
            if (!options.by_hub) {
                auto [it, fresh] =
                    merged.try_emplace({s.method, s.status, s.route}, dur.histograms.size());
                if (!fresh) {
                    auto& h = dur.histograms[it->second];
                    for (std::size_t i = 0; i < h.counts.size(); ++i)
                        h.counts[i] += s.duration->buckets[i].load(std::memory_order_relaxed);
                    h.sum +=
                        static_cast<double>(s.duration->sum_ns.load(std::memory_order_relaxed)) /
                        1e9;
                    return;
                }
            }
            monitor::MetricFamily::HistogramSample h;
            h.labels = {{"http_request_method", std::string(s.method)},
                        {"http_response_status_code", std::to_string(s.status)},
                        {"http_route", std::string(s.route)}};
            if (options.by_hub) h.labels.push_back({"hub", std::to_string(s.hub)});
            h.bounds.assign(bounds.begin(), bounds.end());
            h.counts.reserve(LatencyHistogram::kBuckets);
            for (const auto& b : s.duration->buckets)
                h.counts.push_back(b.load(std::memory_order_relaxed));
            h.sum = static_cast<double>(s.duration->sum_ns.load(std::memory_order_relaxed)) / 1e9;
            dur.histograms.push_back(std::move(h));
        });
        out.push_back(std::move(dur));

        monitor::MetricFamily active;
        active.name = "http_server_active_requests";
        active.help = "HTTP server requests being handled now.";
        active.type = monitor::MetricType::gauge;
        std::map<std::string_view, std::size_t> by_method;
        metrics.for_each_active([&](unsigned hub, std::string_view method, std::int64_t v) {
            if (!options.by_hub) {
                auto [it, fresh] = by_method.try_emplace(method, active.samples.size());
                if (!fresh) {
                    active.samples[it->second].value += static_cast<double>(v);
                    return;
                }
                active.samples.push_back(
                    {{{"http_request_method", std::string(method)}}, static_cast<double>(v)});
                return;
            }
            active.samples.push_back(
                {{{"http_request_method", std::string(method)}, {"hub", std::to_string(hub)}},
                 static_cast<double>(v)});
        });
        out.push_back(std::move(active));

        monitor::MetricFamily timed_out;
        timed_out.name = "weft_http_requests_timed_out_total";
        timed_out.help =
            "Requests answered 504 because their deadline passed before the handler "
            "answered.";
        timed_out.type = monitor::MetricType::counter;
        monitor::MetricFamily abandoned;
        abandoned.name = "weft_http_requests_abandoned_total";
        abandoned.help =
            "Requests whose client hung up while the handler waited; the handler "
            "was cancelled and nothing was sent.";
        abandoned.type = monitor::MetricType::counter;
        metrics.for_each_outcome([&](unsigned hub, std::uint64_t t, std::uint64_t a) {
            const monitor::LabelSet l{{"hub", std::to_string(hub)}};
            timed_out.samples.push_back({l, static_cast<double>(t)});
            abandoned.samples.push_back({l, static_cast<double>(a)});
        });
        out.push_back(std::move(timed_out));
        out.push_back(std::move(abandoned));

        monitor::MetricFamily open;
        open.name = "weft_http_connections";
        open.help = "HTTP connections open now (WebSockets included), over all hubs.";
        open.type = monitor::MetricType::gauge;
        open.samples.push_back({{}, static_cast<double>(server.connections())});
        out.push_back(std::move(open));
        monitor::MetricFamily limit;
        limit.name = "weft_http_connections_limit";
        limit.help =
            "server.max_connections: connections open at once, beyond which newcomers wait.";
        limit.type = monitor::MetricType::gauge;
        limit.samples.push_back({{}, static_cast<double>(server.options().max_connections)});
        out.push_back(std::move(limit));

        const http::ConnectionCounters& c = metrics.connections();
        auto reclaimed = family(
            "weft_http_connections_reclaimed_total",
            "Connections closed to make room for new ones at max_connections, by what they were "
            "doing: idle (between requests, silent since connecting, or lingering after its last "
            "answer) or slow_head (a request head arriving for a quarter of header_timeout).",
            monitor::MetricType::counter);
        reclaimed.samples.push_back({{{"reason", "idle"}}, load(c.reclaimed_idle)});
        reclaimed.samples.push_back({{{"reason", "slow_head"}}, load(c.reclaimed_slow_head)});
        out.push_back(std::move(reclaimed));
        auto accepted =
            family("weft_http_connections_accepted_total",
                   "HTTP connections accepted (nginx's accepts).", monitor::MetricType::counter);
        accepted.samples.push_back({{}, load(c.accepted)});
        out.push_back(std::move(accepted));
        auto accept_errors = family(
            "weft_http_accept_errors_total",
            "Accepts that failed, by reason: no_descriptors (the process is out of file "
            "descriptors, EMFILE or ENFILE: newcomers wait in the kernel's backlog and /readyz "
            "fails until one is accepted again) or other.",
            monitor::MetricType::counter);
        accept_errors.samples.push_back(
            {{{"reason", "no_descriptors"}}, load(c.accept_failed_no_fds)});
        accept_errors.samples.push_back({{{"reason", "other"}}, load(c.accept_failed_other)});
        out.push_back(std::move(accept_errors));

        const auto ws = metrics.websockets();
        monitor::MetricFamily wso;
        wso.name = "weft_websocket_connections";
        wso.help = "WebSocket connections open now.";
        wso.type = monitor::MetricType::gauge;
        wso.samples.push_back({{}, static_cast<double>(ws.open)});
        out.push_back(std::move(wso));
        monitor::MetricFamily wsm;
        wsm.name = "weft_websocket_messages_total";
        wsm.help =
            "Messages carried by WebSockets, by direction (in: from clients), counted as each "
            "one is received or sent.";
        wsm.type = monitor::MetricType::counter;
        wsm.samples.push_back({{{"direction", "in"}}, static_cast<double>(ws.messages_in)});
        wsm.samples.push_back({{{"direction", "out"}}, static_cast<double>(ws.messages_out)});
        out.push_back(std::move(wsm));

        monitor::MetricFamily bodies;
        bodies.name = "weft_http_request_body_bytes";
        bodies.help =
            "Bytes of request bodies held in memory now (at most server.max_buffered_body_bytes).";
        bodies.unit = "bytes";
        bodies.type = monitor::MetricType::gauge;
        bodies.samples.push_back(
            {{}, static_cast<double>(c.body_bytes.load(std::memory_order_relaxed))});
        out.push_back(std::move(bodies));
    });
}

monitor::CollectorHandle add_tls_metrics(monitor::Registry& registry,
                                         std::vector<TlsListener> listeners) {
    return registry.add_collector([listeners = std::move(listeners)](
                                      std::vector<monitor::MetricFamily>& out) {
        monitor::MetricFamily hs;
        hs.name = "weft_tls_handshakes_total";
        hs.help = "TLS handshakes completed, by listener (server: the data port; admin).";
        hs.type = monitor::MetricType::counter;
        monitor::MetricFamily hr;
        hr.name = "weft_tls_resumed_handshakes_total";
        hr.help =
            "Of weft_tls_handshakes_total, those that resumed an earlier session (a session "
            "ticket or the server's session cache), with no certificate exchange.";
        hr.type = monitor::MetricType::counter;
        monitor::MetricFamily hf;
        hf.name = "weft_tls_handshake_failures_total";
        hf.help =
            "TLS handshakes that failed, by listener and reason: plain_http (plain HTTP sent to "
            "the HTTPS port), timeout (not done within header_timeout), closed (the client went "
            "away), protocol (no common version or cipher, a bad record, an alert from the "
            "client). A connection that sends nothing (a browser's unused preconnection) is not "
            "counted.";
        hf.type = monitor::MetricType::counter;
        monitor::MetricFamily exp;
        exp.name = "weft_tls_certificate_expiration_timestamp_seconds";
        exp.help =
            "When the certificate a listener serves expires (its notAfter), in seconds since the "
            "Unix epoch: alert on it minus time() (SIGHUP loads a renewed one).";
        exp.unit = "seconds";
        exp.type = monitor::MetricType::gauge;
        for (const TlsListener& l : listeners) {
            const http::ConnectionCounters& c = l.server->metrics().connections();
            const monitor::LabelSet ll{{"listener", l.name}};
            hs.samples.push_back({ll, load(c.tls_handshakes)});
            hr.samples.push_back({ll, load(c.tls_resumed)});
            for (auto [reason, n] : {std::pair{"plain_http", &c.tls_failed_plain_http},
                                     std::pair{"timeout", &c.tls_failed_timeout},
                                     std::pair{"closed", &c.tls_failed_closed},
                                     std::pair{"protocol", &c.tls_failed_protocol}})
                hf.samples.push_back({{{"listener", l.name}, {"reason", reason}}, load(*n)});
            if (const std::int64_t at = l.server->tls_expires_unix(); l.server->tls() && at > 0)
                exp.samples.push_back({ll, static_cast<double>(at)});
        }
        out.push_back(std::move(hs));
        out.push_back(std::move(hr));
        out.push_back(std::move(hf));
        if (!exp.samples.empty()) out.push_back(std::move(exp));
    });
}

monitor::CollectorHandle add_http_client_metrics(monitor::Registry& registry, unsigned hubs) {
    return registry.add_collector([hubs](std::vector<monitor::MetricFamily>& out) {
        auto bounds = monitor::latency_buckets_seconds();
        monitor::MetricFamily dur;
        dur.name = "http_client_request_duration_seconds";
        dur.help =
            "Duration of outbound HTTP requests (weft::http::Client), by method, status or "
            "error, and server (the first 64 servers of each hub by name, the others as "
            "_OTHER).";
        dur.unit = "seconds";
        dur.type = monitor::MetricType::histogram;
        http::for_each_client_series([&](const http::ClientSeries& s) {
            monitor::MetricFamily::HistogramSample h;
            h.labels = {{"http_request_method", std::string(s.method)},
                        {"http_response_status_code", s.status ? std::to_string(s.status) : ""},
                        {"error_type", std::string(s.error_type)},
                        {"server_address", std::string(s.server_address)},
                        {"server_port", std::to_string(s.server_port)},
                        {"url_scheme", std::string(s.scheme)},
                        {"hub", std::to_string(s.hub)}};
            h.bounds.assign(bounds.begin(), bounds.end());
            for (const auto& b : s.duration->buckets)
                h.counts.push_back(b.load(std::memory_order_relaxed));
            h.sum = static_cast<double>(s.duration->sum_ns.load(std::memory_order_relaxed)) / 1e9;
            dur.histograms.push_back(std::move(h));
        });
        out.push_back(std::move(dur));

        monitor::MetricFamily conns;
        conns.name = "weft_http_client_connections";
        conns.help =
            "Connections of the outbound HTTP client on each hub: idle (pooled) or "
            "active (serving a request).";
        conns.type = monitor::MetricType::gauge;
        http::for_each_client_connections(hubs, [&](unsigned hub, std::size_t open,
                                                    std::size_t idle) {
            const std::string h = std::to_string(hub);
            conns.samples.push_back({{{"hub", h}, {"state", "idle"}}, static_cast<double>(idle)});
            conns.samples.push_back({{{"hub", h}, {"state", "active"}},
                                     static_cast<double>(open - std::min(open, idle))});
        });
        out.push_back(std::move(conns));
    });
}

}  // namespace weft::server
