// ServerOptions: every limit and timeout of the HTTP server, with the status each one answers.
// This struct owns them (type, default, meaning); the weft server's key table binds the [server]
// keys of the same names straight to these members.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/socket_address.hpp"

namespace weft::http {

/// One served request, for an access log. Views are valid during the callback only.
struct AccessLogEntry {
    std::string_view method;
    std::string_view target;
    std::string_view route;  ///< matched template, "" when none
    int status = 0;
    std::uint64_t bytes = 0;  ///< response body bytes (0 for HEAD and for a hang-up's 499)
    /// From the request's first byte received to its response's last byte handed to the
    /// kernel (a response of up to 16 KiB on io_uring: queued for the kernel, at most a loop
    /// turn earlier), as nginx's $request_time. (The request metrics start at the request
    /// fully received: a slow client's upload is not the server's latency.)
    std::chrono::nanoseconds duration{0};
    /// For a request the server refused before any handler (a malformed or oversized one, an
    /// unsupported version, a 408, plain HTTP sent to the HTTPS port):
    /// its first line as it came, up to 256 bytes without the line end, whether it parsed
    /// or not (method and target are empty when they did not); else empty.
    std::string_view request_line;
    /// The request's Referer and User-Agent fields; empty when it had none (or was refused
    /// before its fields were read).
    std::string_view referer;
    std::string_view user_agent;
    const SocketAddress* peer = nullptr;
    std::string_view peer_text;  ///< "1.2.3.4:5678"
    unsigned hub = 0;
    int version_minor = 1;  ///< HTTP/1.x
    /// False when the response did not all go out: the client went away or stopped reading
    /// (send_timeout), or the server stopped, before its last byte was handed to the kernel.
    /// (A small response sent detached may fail after it was logged: it counts as complete.)
    bool complete = true;
};

/// Called on the hub thread that served the request, once its response is complete (for every
/// request, including 4xx answers to malformed ones), and for a request begun but never
/// answered because its connection ended: 400 when the client closed it or failed mid-head or
/// mid-body, 503 when the server cut it (a drain's end, room made at max_connections), with
/// complete false and the request line as it came. Never for a connection closed between
/// requests.
/// Runs concurrently on all hubs: it must be thread-safe, and it should not block.
using AccessLogFn = std::function<void(const AccessLogEntry&)>;

struct ServerOptions {
    /// Open connections over all hubs. At the limit, a newcomer takes the place of the
    /// keep-alive connection idle between requests for longest; else, after a quarter of
    /// header_timeout, of one silent since it connected (a request may be on its way to a
    /// newer one) or whose request head is still arriving; with none, accepting pauses until
    /// one closes (the kernel's backlog holds the newcomers). 0 = no limit.
    std::size_t max_connections = 10000;
    /// Request line + header fields, in bytes: beyond it, 431 and close.
    std::size_t max_header_bytes = 16 * 1024;
    /// Request-target length: beyond it, 414 and close.
    std::size_t max_uri_bytes = 8 * 1024;
    /// Header fields per request: beyond it, 431 and close.
    std::size_t max_headers = 100;
    /// Request body (after de-chunking): beyond it, 413 and close. Checked against
    /// Content-Length before reading (no 100 Continue is sent then). 0 = no limit.
    std::size_t max_body_bytes = 1024 * 1024;
    /// Request bodies held in memory by all connections of the server at once: bodies being
    /// received, and those of requests waiting for or in their handler (their storage, which
    /// grows by doubling: at most twice the bytes received). A body that would go beyond it
    /// gets 503 (with Retry-After) and its connection closes; nothing waits, so memory stays
    /// bounded whatever clients do. A large body's storage is freed once its request is
    /// answered. WebSocket messages being received take from it too (beyond it, the WebSocket
    /// closes with 1013, "try again later"). 0 = no limit.
    std::size_t max_buffered_body_bytes = 128 * 1024 * 1024;
    /// From a request's first byte until its header section is complete: then 408 and close.
    /// This is what stops slowloris. It also bounds the wait for a new connection's first byte
    /// (that one closes silently).
    std::chrono::nanoseconds header_timeout = std::chrono::seconds(10);
    /// Between the end of the header section and the first body bytes, and between two reads
    /// that bring more of the body (as nginx's client_body_timeout): then 408 and close.
    std::chrono::nanoseconds body_timeout = std::chrono::seconds(30);
    /// Bytes per second a request body must average once kMinBodyRateGrace has passed since
    /// the end of its header section (Kestrel's MinRequestBodyDataRate): below it, 408 and
    /// close. body_timeout alone lets a client that sends a byte now and then hold its
    /// connection for as long as its body lasts; this bounds a body of N bytes to
    /// kMinBodyRateGrace + N / rate. 0: no minimum.
    std::size_t min_body_rate = 240;
    static constexpr std::chrono::seconds kMinBodyRateGrace{5};
    /// A keep-alive connection waiting for its next request: then it closes silently.
    std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);
    /// A response write that makes no progress for this long (the client stopped reading):
    /// then the connection closes. It bounds a stall, not the transfer (nginx's send_timeout).
    /// The kernel holds at most 128 KiB of a connection's response unsent (TCP_NOTSENT_LOWAT),
    /// so a response larger than that stalls, and meets this timeout, when nobody reads it.
    std::chrono::nanoseconds send_timeout = std::chrono::seconds(30);
    /// Each request's deadline, from when it was received (Router's RouteOptions::timeout
    /// overrides it per route): the handler's blocking calls, and those of the fibers it
    /// spawns, give up with Errc::timed_out then, and a handler that has not started its
    /// response by then is answered 504. Zero: no deadline.
    std::chrono::nanoseconds request_timeout = std::chrono::seconds(60);
    /// A request header through which a client may shorten its own deadline (never lengthen
    /// it), e.g. "X-Request-Timeout" or gRPC's "grpc-timeout"; its value is gRPC's form
    /// ("250m", "2S": digits and a unit of H, M, S, m, u, n) or whole milliseconds ("250").
    /// A request with another value gets 400. Empty: no such header (the default: clients do not
    /// choose server deadlines unless the operator says so).
    std::string timeout_header;
    /// After an error response with unread input: how long at most to read and discard it
    /// before closing, so the client sees the response rather than a reset. Bounded by time
    /// only (nginx's lingering_time): a refused upload is drained whatever its size.
    std::chrono::nanoseconds linger_timeout = std::chrono::seconds(2);
    /// Requests served on one connection before it closes (the last response carries
    /// "Connection: close"). 0 = no limit.
    std::size_t max_requests_per_connection = 0;
    /// The Server header's value; empty = no Server header. At most weft::kMaxHeaderPhraseBytes
    /// (128) visible ASCII characters and inner spaces (weft::valid_header_phrase): the Server
    /// constructor throws std::invalid_argument otherwise. The weft server sets it from
    /// `server.server_name`.
    std::string server_name = "weft";
    /// listen(2) backlog of each hub's listener (the kernel caps it at net.core.somaxconn).
    int listen_backlog = 4096;
    /// Descriptors the server holds open (on /dev/null) for itself: when the process has run
    /// out (accept() fails with EMFILE), it closes them and accepts with the room they leave,
    /// and opens them again as its connections close. The weft server gives its admin listener
    /// 4, so that /healthz and /metrics still answer when a leak or a flood has taken every
    /// other descriptor. Other listeners retrying their accepts may take that room first: it
    /// makes answering likely, not certain. 0: none. At most 64.
    std::size_t reserved_fds = 0;
    /// HTTPS: the certificate chain (PEM, leaf first) and its private key (PEM). Both or
    /// neither; with them every connection speaks TLS 1.2 or 1.3 (ALPN http/1.1), and its
    /// handshake must end within header_timeout of the accept. Server::reload_tls() reads
    /// them again (the weft server does on SIGHUP).
    std::string tls_cert;
    std::string tls_key;
    /// WebSocket routes: the largest message (1009 beyond; WebSocketOptions may lower it), the
    /// silence after which the server pings, and after which it closes (1001). A ping not
    /// answered within another ping interval closes the connection. Zero: no pings / no idle
    /// limit.
    std::size_t websocket_max_message_bytes = 1024 * 1024;
    std::chrono::nanoseconds websocket_ping_interval = std::chrono::seconds(30);
    std::chrono::nanoseconds websocket_idle_timeout = std::chrono::seconds(300);
    /// Pages that may open WebSockets here besides the server's own (cross-site WebSocket
    /// hijacking: a browser sends the page's cookies with any handshake). A handshake whose
    /// Origin is neither the request's own host (its Host field, or behind a proxy its
    /// X-Forwarded-Host or Forwarded host=, with a default port or without) nor one of these
    /// ("https://app.example.com", compared without case; "https://*.example.com": its
    /// subdomains, with that scheme and port; "*": any; "null": sandboxed and file pages) gets
    /// 403. A handshake without Origin (not a browser) is not checked.
    /// WebSocketOptions::allowed_origins replaces this list for its route.
    std::vector<std::string> websocket_allowed_origins;
    /// Optional access log (see AccessLogFn); set in code (the weft server sets it from
    /// [log] access_log).
    AccessLogFn access_log;
};

}  // namespace weft::http
