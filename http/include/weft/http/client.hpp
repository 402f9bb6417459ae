// weft::http::Client: an HTTP/1.1 client for fibers, with a keep-alive pool per origin on each
// hub, HTTPS through OpenSSL (certificates checked against the system store or a CA file of
// your own), timeouts for connecting, for each read and for the whole exchange, and metrics
// with OpenTelemetry's names. Go's net/http Transport is the model.
//
//     auto r = weft::http::default_client().get("https://api.example.com/v1/items");
//     if (!r) return Response::text("upstream: " + r.error().message() + "\n", 502);
//     return Response::text(r->body);
//
// Every call parks only the calling fiber. The fiber's own deadline (a request handler's is the
// request's; see ScopedDeadline) bounds each call as well as the client's timeouts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/core/deadline.hpp"
#include "weft/core/latency_histogram.hpp"
#include "weft/core/result.hpp"

namespace weft::http {

/// What went wrong with an outbound request, in a form a handler can act on (retry, 502, 504).
enum class ClientErrc : std::uint8_t {
    bad_url,             ///< not an absolute http:// or https:// URL
    dns,                 ///< the host name does not resolve
    connect,             ///< the connection was refused, reset or unreachable
    timed_out,           ///< a timeout or the fiber's deadline passed
    cancelled,           ///< the calling fiber was cancelled
    tls,                 ///< the TLS handshake failed (the message says why: expired, host...)
    protocol,            ///< the server's answer is not valid HTTP/1.x
    too_large,           ///< the response exceeds max_response_bytes or max_header_bytes
    closed,              ///< the server closed the connection before the response was complete
    too_many_redirects,  ///< more redirects than max_redirects
    bad_request,         ///< the request is not valid HTTP (its method, a header name or
                         ///< value), or a ClientStream is read off the hub that opened it
};
const char* client_errc_name(ClientErrc c) noexcept;

struct ClientError {
    ClientErrc code = ClientErrc::connect;
    std::string detail;  ///< what exactly, e.g. "certificate has expired" or "connect: ..."
    /// "tls: certificate has expired (https://example.com:443)": an error met with a server
    /// names its origin, so that a handler that calls several can tell which one failed.
    std::string message() const;
    bool operator==(ClientErrc c) const noexcept { return code == c; }
};

template <class T>
using ClientResult = Result<T, ClientError>;

struct ClientOptions {
    /// Idle keep-alive connections kept per origin (scheme, host, port) on each hub, within
    /// max_idle_total (raise both for a proxy that keeps many to one upstream).
    std::size_t max_idle_per_host = 32;
    /// Idle keep-alive connections kept on each hub over every origin (a program that calls
    /// many hosts, such as a webhook sender, would otherwise keep one per host it called within
    /// idle_timeout, and run out of descriptors): at it, the longest idle one closes to make
    /// room. 0: none kept.
    std::size_t max_idle_total = 256;
    /// Connections per origin on each hub, idle and in use; a request beyond it waits for one.
    /// 0: no limit.
    std::size_t max_connections_per_host = 0;
    /// An idle connection older than this is closed instead of reused.
    std::chrono::nanoseconds idle_timeout = std::chrono::seconds(90);
    /// Resolving and connecting (TLS handshake included); 0: no bound of its own.
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds(10);
    /// Between two reads of the response that bring bytes (a stalled server), and while the
    /// request goes out, between two writes the server takes bytes of (an upload may last
    /// longer, as long as it moves); 0: no bound of its own.
    std::chrono::nanoseconds read_timeout = std::chrono::seconds(30);
    /// The whole exchange; 0: none (the fiber's own deadline still applies).
    std::chrono::nanoseconds total_timeout = std::chrono::nanoseconds::zero();
    /// Status line plus headers of a response.
    std::size_t max_header_bytes = 64 * 1024;
    /// A response body read whole (Client::request); streaming reads are not bounded by it.
    std::size_t max_response_bytes = 64 * 1024 * 1024;
    /// Redirects followed (301, 302, 303, 307, 308); 0: a redirect is returned as it is.
    int max_redirects = 0;
    /// PEM file of CA certificates to trust instead of the system store ("": the system's).
    std::string ca_file;
    /// Check the server's certificate and host name (turn off only for tests).
    bool verify_peer = true;
    /// How long a host name's addresses are reused before resolving again.
    std::chrono::nanoseconds dns_cache_ttl = std::chrono::seconds(30);
    /// Sent as User-Agent unless the request sets one; "": none.
    std::string user_agent = "weft";
    /// Forward proxy for http:// URLs: "http://[user:password@]host[:port]" (a bare
    /// "host:port" is taken as http://; the port defaults to 80); "": none. Requests go to it
    /// in absolute form, with Proxy-Authorization from the user and password. A SOCKS5 proxy,
    /// "socks5://" (the client resolves host names) or "socks5h://" (the proxy does), port
    /// 1080 by default, with an optional user name and password (RFC 1929), tunnels each
    /// connection instead.
    std::string http_proxy;
    /// Forward proxy for https:// URLs, in the same forms: each connection is a tunnel (an
    /// HTTP proxy's CONNECT, or SOCKS5) with TLS to the server inside it. "": none.
    std::string https_proxy;
    /// Hosts reached without a proxy: names (one covers its subdomains; ".example.com" only
    /// the subdomains), IP addresses and CIDR blocks, each with an optional ":port", separated
    /// by commas; "*": every host. Other entries are skipped (see no_proxy_ignored()).
    /// localhost and loopback addresses never use a proxy. A proxy setting that cannot be read
    /// fails the requests that would use it (ClientErrc::connect, saying why) rather than
    /// letting them out directly.
    std::string no_proxy;
};

/// `o` with http_proxy, https_proxy and no_proxy taken from the environment when all three are
/// empty: HTTP_PROXY, HTTPS_PROXY and NO_PROXY, or their lower-case forms (as Go and curl read
/// them). default_client() does this unless set_default_client_options() was called (the
/// weft server reads these variables into its [client] keys itself).
ClientOptions with_environment_proxies(ClientOptions o);
/// Why `text` is not a usable http_proxy or https_proxy setting; nullopt when it is ("" is).
std::optional<std::string> proxy_setting_problem(std::string_view text);
/// Why `ca_file` cannot serve as ClientOptions::ca_file (unreadable, or no PEM certificate in
/// it); nullopt when it can.
std::optional<std::string> ca_file_problem(const std::string& ca_file);
/// The entries of a no_proxy list that match no host (as Go and curl do, they are skipped):
/// not a host name, IP address or CIDR block, or with an invalid port ("192.168.*", "<local>").
std::vector<std::string> no_proxy_ignored(std::string_view text);
/// `text` (a proxy setting) with its user information (user and password, or a token), if
/// it has any, shown as "***": for logs and errors.
std::string redact_proxy_setting(std::string_view text);

struct ClientRequest {
    std::string method = "GET";
    std::string url;  ///< absolute: http://host[:port]/path?query or https://...
    /// Sent as given, but for the fields the client writes itself from the URL and the body:
    /// Host, Content-Length, Transfer-Encoding and Connection given here are left out (a
    /// handler forwarding its inbound request's fields would otherwise name the wrong server
    /// or frame the body wrongly). A User-Agent here replaces ClientOptions::user_agent.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string
        body;  ///< sent with Content-Length when not empty (or the method is POST, PUT or PATCH)
    /// This request's own deadline (the earlier of it, total_timeout and the fiber's counts).
    Deadline deadline;
};

struct ClientResponse {
    int status = 0;
    std::string reason;
    int version_minor = 1;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    /// The first value of header `name` (case-insensitive), if any.
    std::optional<std::string_view> header(std::string_view name) const noexcept;
};

namespace detail {
class ClientCore;
class ClientExchange;
}  // namespace detail

/// A response whose body is read in pieces, for bodies too large to hold or that arrive over
/// time. Move-only. When the body was read to its end the connection goes back to the pool;
/// destroyed earlier, it is closed. Its exchange is timed in the client metrics until the body
/// ends, fails (with the error) or the stream is dropped.
class ClientStream {
  public:
    ClientStream() noexcept;
    ClientStream(ClientStream&&) noexcept;
    ClientStream& operator=(ClientStream&&) noexcept;
    ~ClientStream();

    int status() const noexcept;
    const std::vector<std::pair<std::string, std::string>>& headers() const noexcept;
    std::optional<std::string_view> header(std::string_view name) const noexcept;
    /// Reads the next piece of the body into `buf`; 0 at its end. Parks until bytes arrive or
    /// read_timeout / the deadline passes. After a failure (a timeout, a connection that
    /// closed mid-body) every later read fails the same way: the stream is over. Reads belong
    /// to the hub that opened it (elsewhere: ClientErrc::bad_request). A stream may be dropped
    /// on any thread; off the hub that opened it, its connection closes.
    [[nodiscard]] ClientResult<std::size_t> read(std::span<char> buf);

  private:
    friend class Client;
    explicit ClientStream(std::unique_ptr<detail::ClientExchange> x) noexcept;
    std::unique_ptr<detail::ClientExchange> x_;
};

/// An HTTP/1.1 client. One object serves every hub (each hub keeps its own pool of connections,
/// touched only by its fibers); create it once (in a plugin's init, or use default_client()).
///
/// Blocking: every call parks only the calling fiber; outside a fiber it is an error
/// (ClientErrc::connect, "no fiber"). Threads: any hub's fibers, concurrently.
/// Retries: a request that fails on a reused keep-alive connection before any byte of the
/// response arrived (the server had closed it) is retried once on a new connection when its
/// method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) or the request carries an
/// Idempotency-Key (or X-Idempotency-Key) field, as Go's transport does.
/// A response in a transfer coding other than chunked (gzip, chunked) is a protocol error:
/// the client decodes no other. A body whose Content-Length is over max_response_bytes is
/// too_large at its head (Client::request), without being read.
class Client {
  public:
    explicit Client(ClientOptions options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Sends the request and reads the whole response (up to max_response_bytes).
    [[nodiscard]] ClientResult<ClientResponse> request(const ClientRequest& req);
    [[nodiscard]] ClientResult<ClientResponse> get(std::string_view url, Deadline deadline = {});
    /// Sends the request and returns once the response's head has arrived; read the body from
    /// the stream. Redirects are followed as request() follows them (a redirect's own body is
    /// read and dropped, or its connection closed when it is over 16 KiB).
    [[nodiscard]] ClientResult<ClientStream> stream(const ClientRequest& req);

    const ClientOptions& options() const noexcept;

  private:
    std::shared_ptr<detail::ClientCore> core_;
};

/// The process's shared client, made on first use with the options given to
/// set_default_client_options() (the weft server sets them from its [client] section).
Client& default_client();
/// Options for default_client(); only before its first use (later calls throw
/// std::logic_error).
void set_default_client_options(ClientOptions options);

/// One series of http_client_request_duration_seconds (OpenTelemetry's
/// http.client.request.duration), summed over every Client of the process.
struct ClientSeries {
    unsigned hub = 0;
    std::string_view method;      ///< normalized: "GET", ..., "_OTHER"
    int status = 0;               ///< 0 when no response head came (see error_type)
    std::string_view error_type;  ///< "" or a ClientErrc name ("timed_out", "tls"...)
    /// The first 64 servers (address and port) each hub called are named; requests to any
    /// other are counted under "_OTHER" and port 0, so that URLs a caller chooses cannot add
    /// series without end.
    std::string_view server_address;
    std::uint16_t server_port = 0;
    std::string_view scheme;  ///< "http" or "https"
    const LatencyHistogram* duration = nullptr;
};
/// Calls fn for every client series recorded so far. Any thread.
void for_each_client_series(const std::function<void(const ClientSeries&)>& fn);
/// Connections of every Client by hub: open (idle or in use) and idle. Any thread. Hubs
/// below `hubs` (the serving runtime's count) are always reported, zeros included, so their
/// series do not come and go; another only while it has connections.
void for_each_client_connections(
    unsigned hubs, const std::function<void(unsigned hub, std::size_t open, std::size_t idle)>& fn);

}  // namespace weft::http
