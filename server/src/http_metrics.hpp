// Renders the HTTP server's request metrics (kept per hub by the HTTP layer) as metric families:
// http_server_request_duration_seconds and http_server_active_requests, with OpenTelemetry's
// label names and the route template (never the raw path).
#pragma once

#include <string>
#include <vector>

#include "weft/http/metrics.hpp"
#include "weft/http/server.hpp"
#include "weft/monitor/metrics.hpp"

namespace weft::server {

struct HttpMetricsOptions {
    /// Label http_server_request_duration_seconds and http_server_active_requests with the hub
    /// that served each request: a series per hub, so their number grows with the cores. Off:
    /// summed over the hubs as they are scraped (the weft_hub_* families stay per hub).
    bool by_hub = false;
};

/// Registers a collector reading `metrics` at scrape time; `metrics` must outlive the handle.
/// http_client_request_duration_seconds and weft_http_client_connections{state}: every
/// weft::http::Client of the process, the connections of each of the `hubs` serving hubs
/// always (zeros included).
[[nodiscard]] monitor::CollectorHandle add_http_client_metrics(monitor::Registry& registry,
                                                               unsigned hubs);

/// The same for `server`'s request and connection metrics: weft_http_connections (open now)
/// beside weft_http_connections_limit (max_connections) among them. `server` must outlive the
/// handle.
/// weft_tls_*: the TLS handshakes of each listener (its counters, zeros included, whether it
/// speaks TLS or not) and the expiry of the certificate of those that do, labelled listener=
/// `name`. The servers must outlive the handle.
struct TlsListener {
    std::string name;  ///< "server", "admin"
    const http::Server* server = nullptr;
};
[[nodiscard]] monitor::CollectorHandle add_tls_metrics(monitor::Registry& registry,
                                                       std::vector<TlsListener> listeners);

[[nodiscard]] monitor::CollectorHandle add_http_metrics(monitor::Registry& registry,
                                                        const http::Server& server,
                                                        HttpMetricsOptions options = {});

}  // namespace weft::server
