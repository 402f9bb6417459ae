// The client's forward proxies (ClientOptions::http_proxy, https_proxy and no_proxy, or the
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY variables), with the rules Go's net/http and curl follow:
// through an HTTP proxy, an http:// URL goes to the proxy as an absolute-form request and an
// https:// URL through a CONNECT tunnel, with TLS to the origin inside it (the proxy sees only
// the host and port). Through a SOCKS5 proxy (RFC 1928), every URL goes through a tunnel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client_conn.hpp"

namespace weft::http::detail {

/// A forward proxy: an HTTP proxy, or a SOCKS5 one, with optional credentials.
struct Proxy {
    enum class Kind : std::uint8_t {
        http,     ///< http://: absolute-form requests, CONNECT for https
        socks5,   ///< socks5://: the client resolves the host and gives the proxy its address
        socks5h,  ///< socks5h://: the proxy resolves the host name
    };
    Kind kind = Kind::http;
    Url url;                    ///< where to connect (its target is unused)
    std::string authorization;  ///< http: "Basic ..." from the URL's user information, or ""
    bool has_login = false;     ///< socks: the URL carries a user name (RFC 1929 login)
    std::string user;           ///< socks: decoded, 1 to 255 bytes
    std::string password;       ///< socks: decoded, at most 255 bytes
    std::string display;        ///< "http://host:port", never the password: for messages

    bool socks() const noexcept { return kind != Kind::http; }
};

/// Parses a proxy setting: "SCHEME://[user[:password]@]host[:port][/]" with SCHEME http,
/// socks5 or socks5h, or "host[:port]" (taken as http://). The port defaults to 80 (http) or
/// 1080 (SOCKS). User and password may be percent-encoded. The error says what is wrong (an
/// https:// or SOCKS4 proxy is not supported).
Result<Proxy, std::string> parse_proxy(std::string_view text);

/// A NO_PROXY list: comma- or space-separated entries, each "*" (no proxy for anything), a host
/// name ("example.com" covers it and its subdomains; ".example.com" and "*.example.com" only
/// the subdomains), an IP address, a CIDR block ("10.0.0.0/8", "fd00::/8"), any of them with
/// ":port" to cover that port only.
class NoProxy {
  public:
    /// Entries of none of those forms match no host and are skipped, as Go and curl skip them
    /// (machines carry lists written for other tools): listed in `ignored` when given.
    static NoProxy parse(std::string_view list, std::vector<std::string>* ignored = nullptr);
    /// Whether `url` is reached directly.
    bool covers(const Url& url) const;

  private:
    struct Entry {
        std::string host;  ///< a lower-case name, or empty for an IP block
        bool subdomains_only = false;
        bool is_ip = false;
        std::uint8_t addr[16] = {};  ///< IPv4 mapped into IPv6 form
        int prefix = 0;              ///< bits of addr that must match
        std::uint16_t port = 0;      ///< 0: any
    };
    bool all_ = false;
    std::vector<Entry> entries_;
};

/// What a Client does for each URL, made once from its options.
class ProxyPolicy {
  public:
    ProxyPolicy() = default;
    /// `http`, `https`, `no_proxy`: the settings, each "" for none.
    ProxyPolicy(std::string_view http, std::string_view https, std::string_view no_proxy);
    /// The proxy `url` goes through, or nullptr to connect directly. Requests to "localhost"
    /// and loopback addresses never go through a proxy (as in Go). A setting that could not be
    /// read fails every request that would have used it (ClientErrc::connect, saying why)
    /// rather than letting it out directly: where a proxy is required, a direct connection
    /// would leak or hang.
    ClientResult<const Proxy*> for_url(const Url& url) const;
    bool any() const noexcept { return http_.set || https_.set; }

  private:
    struct Scheme {
        bool set = false;
        std::optional<Proxy> proxy;
        std::string error;  ///< the setting could not be read
    };
    Scheme http_;
    Scheme https_;
    NoProxy no_proxy_;
};

/// The proxy settings of the environment: HTTP_PROXY, HTTPS_PROXY and NO_PROXY, each also read
/// in lower case when the upper-case one is unset or empty (Go's order).
struct EnvironmentProxies {
    std::string http;
    std::string https;
    std::string no_proxy;
};
EnvironmentProxies environment_proxies();

/// Opens a tunnel to `target` through the proxy `conn` is connected to: CONNECT, then the
/// proxy's answer, which must be 2xx. By `deadline`; the head is at most `max_header_bytes`.
ClientResult<void> open_tunnel(ClientConn& conn, const Proxy& proxy, const Url& target,
                               Deadline deadline, std::size_t max_header_bytes,
                               std::string_view user_agent);

/// Opens a tunnel to `target` through the SOCKS5 proxy `conn` is connected to (RFC 1928): no
/// authentication, or the user name and password of RFC 1929 when the proxy URL has them, then
/// CONNECT to `target`'s host name (socks5h) or to `address` (socks5: the client resolved it).
/// A refusal is ClientErrc::connect and says what the proxy answered.
ClientResult<void> open_socks_tunnel(ClientConn& conn, const Proxy& proxy, const Url& target,
                                     const SocketAddress* address, Deadline deadline);

}  // namespace weft::http::detail
