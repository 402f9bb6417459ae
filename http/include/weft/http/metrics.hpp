// Request metrics of a server, kept per hub by the hub itself (single writer, no locks on the
// request path) and read from any thread: a latency histogram per (method, status, route) and
// an active-requests gauge per method. Labels are bounded: the method is normalized (GET...,
// "_OTHER"), the route is the matched template ("" when none), never the raw path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "weft/core/latency_histogram.hpp"
#include "weft/http/method.hpp"

namespace weft::http {

namespace detail {
class HubRequestMetrics;
}

/// One histogram series: http_server_request_duration_seconds{http_request_method,
/// http_response_status_code, http_route, hub}.
struct RequestSeries {
    unsigned hub = 0;
    std::string_view method;  ///< normalized: "GET", ..., "_OTHER"
    int status = 0;
    std::string_view route;                      ///< template, "" when no route matched
    const LatencyHistogram* duration = nullptr;  ///< nanoseconds; see kLatencyBucketBoundsNs
};

/// Connection events of a server, over all hubs. Written by the hubs, read from any thread.
struct ConnectionCounters {
    /// Connections closed to make room for newcomers under max_connections: idle ones
    /// (keep-alive between requests, or silent since they connected for a quarter of
    /// header_timeout)...
    std::atomic<std::uint64_t> reclaimed_idle{0};
    /// ...and ones whose request head had been arriving for long (a quarter of header_timeout).
    std::atomic<std::uint64_t> reclaimed_slow_head{0};
    /// Connections accepted, and accepts that failed: for want of a file descriptor (EMFILE,
    /// ENFILE: newcomers wait in the kernel's backlog until some close), or for another reason.
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> accept_failed_no_fds{0};
    std::atomic<std::uint64_t> accept_failed_other{0};
    /// Bytes of request bodies held in memory now (see ServerOptions::max_buffered_body_bytes).
    std::atomic<std::size_t> body_bytes{0};
    /// The most body_bytes reached since a reader last reset it (the weft server, to give freed
    /// memory back to the system after a peak).
    mutable std::atomic<std::size_t> body_bytes_peak{0};
    /// TLS handshakes completed, and those that failed, by why: the client spoke plain HTTP,
    /// did not finish within header_timeout, closed the connection, or broke the protocol (no
    /// common version or cipher, a bad record, an alert such as an unknown CA).
    std::atomic<std::uint64_t> tls_handshakes{0};
    std::atomic<std::uint64_t> tls_failed_plain_http{0};
    std::atomic<std::uint64_t> tls_failed_timeout{0};
    std::atomic<std::uint64_t> tls_failed_closed{0};
    std::atomic<std::uint64_t> tls_failed_protocol{0};
    /// Of tls_handshakes, those that resumed an earlier session (a ticket or the session
    /// cache): no certificate sent.
    std::atomic<std::uint64_t> tls_resumed{0};
};

class RequestMetrics {
  public:
    explicit RequestMetrics(unsigned hubs);
    ~RequestMetrics();
    RequestMetrics(const RequestMetrics&) = delete;
    RequestMetrics& operator=(const RequestMetrics&) = delete;

    unsigned hub_count() const noexcept { return static_cast<unsigned>(hubs_.size()); }

    /// Calls fn for every series recorded so far (series never disappear). Thread-safe: any
    /// thread, while the hubs record. The histogram is read live (relaxed atomics), so a
    /// scrape may see a bucket bumped before the sum; Prometheus tolerates that.
    void for_each_series(const std::function<void(const RequestSeries&)>& fn) const;
    /// Calls fn(hub, method, value) for the http_server_active_requests gauge of every hub and
    /// known method (including zeros). Thread-safe.
    void for_each_active(
        const std::function<void(unsigned hub, std::string_view method, std::int64_t)>& fn) const;
    /// Observations not recorded because a hub's series table was full (bounded cardinality).
    std::uint64_t dropped() const noexcept;
    /// Per hub: requests answered 504 because their deadline passed first, and requests whose
    /// client hung up while the handler waited (the handler was cancelled). Thread-safe.
    void for_each_outcome(const std::function<void(unsigned hub, std::uint64_t timed_out,
                                                   std::uint64_t abandoned)>& fn) const;

    /// WebSockets open now, over all hubs, and the messages closed ones carried (counted when
    /// each closes). Thread-safe.
    struct WebSocketTotals {
        std::int64_t open = 0;
        std::uint64_t messages_in = 0;
        std::uint64_t messages_out = 0;
    };
    WebSocketTotals websockets() const noexcept;

    /// The writer side of hub `i` (engine use).
    detail::HubRequestMetrics& hub(unsigned i) noexcept { return *hubs_[i]; }

    ConnectionCounters& connections() noexcept { return connections_; }
    const ConnectionCounters& connections() const noexcept { return connections_; }

  private:
    std::vector<std::unique_ptr<detail::HubRequestMetrics>> hubs_;
    ConnectionCounters connections_;
};

}  // namespace weft::http
