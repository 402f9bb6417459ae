// One outbound connection of the HTTP client: a TcpStream, TLS over it for https, and the bytes
// read but not consumed yet. Owned by one hub (its pool or the exchange that borrowed it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tls.hpp"
#include "weft/core/tcp.hpp"
#include "weft/http/client.hpp"

namespace weft::http::detail {

/// How many servers (address and port) each hub's client metric series name before the rest
/// are counted as "_OTHER" (64; tests that read series by port in a long-lived process raise
/// it). Returns the limit before.
std::size_t set_client_metric_servers(std::size_t max) noexcept;

/// An absolute http(s) URL, split.
struct Url {
    bool https = false;
    std::string host;         ///< without brackets for IPv6
    std::uint16_t port = 80;  ///< the default one when the URL names none
    std::string target;       ///< path and query ("/" when empty)
    std::string host_header;  ///< "host" or "host:port", brackets kept
    std::string origin;       ///< "https://host:port": the pool's key

    std::string to_string() const;
};

/// Parses an absolute http:// or https:// URL; the error says what is wrong.
Result<Url, std::string> parse_url(std::string_view text);
/// `location` (absolute, or relative to `base`) as an absolute URL.
Result<Url, std::string> resolve_location(const Url& base, std::string_view location);

class ClientConn {
  public:
    explicit ClientConn(TcpStream tcp) noexcept;
    ~ClientConn();

    /// Runs the TLS handshake over the connection (https); every read and write is TLS then.
    /// A session `origin` gave an earlier connection is resumed (see TlsSession::connect).
    ClientResult<void> start_tls(std::shared_ptr<TlsContext> ctx, std::string_view host,
                                 std::string_view origin, Deadline deadline);
    ClientConn(const ClientConn&) = delete;
    ClientConn& operator=(const ClientConn&) = delete;

    /// Sends all of `data` by `total`, failing when no byte went out for `stall` (0: no bound).
    ClientResult<void> write(std::string_view data, Deadline total, std::chrono::nanoseconds stall);
    /// Reads more bytes into the buffer; false at the end of the stream.
    ClientResult<bool> fill(Deadline deadline);
    /// Bytes read and not consumed yet.
    std::string_view buffered() const noexcept;
    void consume(std::size_t n) noexcept;
    /// An idle pooled connection that the server closed (or that has unexpected bytes to
    /// read) is no good for a new request.
    bool looks_closed() const noexcept;
    /// After fill() saw the end of the stream: whether the end may have been forged (TLS
    /// without close_notify). Plain TCP cannot tell, and is taken as it is.
    bool end_unverified() const noexcept { return tls_ && !tls_->close_notified(); }

    /// Going idle in the pool: frees the read buffer and the TLS session's buffers (made
    /// again when the connection is next used).
    void release_buffers() noexcept;

    std::int64_t idle_since_ns = 0;
    bool reused = false;         ///< served a request before this one
    std::uint64_t bytes_in = 0;  ///< read during the current exchange

  private:
    TcpStream tcp_;
    std::unique_ptr<TlsSession> tls_;
    std::string buf_;
    std::size_t pos_ = 0;
};

}  // namespace weft::http::detail
