// The client's forward proxies (ClientOptions::http_proxy, https_proxy and no_proxy, or the
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY variables), with the rules Go's net/http and curl follow:
// an http:// URL goes to the proxy as an absolute-form request; an https:// URL goes through a
// CONNECT tunnel, with TLS to the origin inside it (the proxy sees only the host and port).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client_conn.hpp"

namespace weft::http::detail {

/// A forward proxy: an http:// URL, with optional credentials for Proxy-Authorization.
struct Proxy {
    Url url;                    ///< where to connect (its target is unused)
    std::string authorization;  ///< "Basic ..." from the URL's user information, or ""
    std::string display;        ///< "http://host:port", never the password: for messages
};

/// Parses a proxy setting: "http://[user[:password]@]host[:port][/]", or "host[:port]" (taken
/// as http://). The port defaults to 80. User and password may be percent-encoded. The error
/// says what is wrong (an https:// or socks5:// proxy is not supported).
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

}  // namespace weft::http::detail
