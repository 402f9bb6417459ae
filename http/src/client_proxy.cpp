// Forward proxies for the client: parsing the settings, the NO_PROXY rules, the CONNECT and
// SOCKS5 tunnels.
#include "client_proxy.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "uri.hpp"

namespace weft::http::detail {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// An IP address (v4 in its v6-mapped form) into `out`; false when `text` is not one.
bool parse_ip(const std::string& text, std::uint8_t out[16]) {
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        std::memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        std::memcpy(out + 12, &v4, 4);
        return true;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
        std::memcpy(out, &v6, 16);
        return true;
    }
    return false;
}

bool same_prefix(const std::uint8_t a[16], const std::uint8_t b[16], int bits) {
    const int bytes = bits / 8;
    if (std::memcmp(a, b, static_cast<std::size_t>(bytes)) != 0) return false;
    const int rest = bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool is_loopback(const Url& url) {
    if (url.host == "localhost") return true;
    std::uint8_t a[16];
    if (!parse_ip(url.host, a)) return false;
    static constexpr std::uint8_t kV4Loopback[16] = {0, 0, 0,    0,    0,   0, 0, 0,
                                                     0, 0, 0xff, 0xff, 127, 0, 0, 0};
    static constexpr std::uint8_t kV6Loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, 1};
    return same_prefix(a, kV4Loopback, 96 + 8) || same_prefix(a, kV6Loopback, 128);
}

bool host_name_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

Result<Proxy, std::string> parse_proxy(std::string_view text) {
    text = trim_ows(text);
    if (text.empty()) return std::string("empty");
    std::string_view rest = text;
    Proxy p;
    std::string scheme = "http";
    if (const auto sep = text.find("://"); sep != std::string_view::npos) {
        scheme = lower(text.substr(0, sep));
        if (scheme == "https")
            return std::string(
                "an https:// proxy (TLS to the proxy) is not supported; give an http:// or "
                "socks5:// proxy (https:// URLs still reach their servers through it, in a "
                "tunnel)");
        if (scheme == "socks5")
            p.kind = Proxy::Kind::socks5;
        else if (scheme == "socks5h")
            p.kind = Proxy::Kind::socks5h;
        else if (scheme.starts_with("socks"))
            return "a '" + scheme +
                   "://' proxy is not supported; give a socks5:// or socks5h:// proxy";
        else if (scheme != "http")
            return "'" + scheme +
                   "://' is not a proxy scheme; give an http://, socks5:// or socks5h:// proxy";
        rest = text.substr(sep + 3);
    }
    std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    const std::string_view after = rest.substr(authority.size());
    if (!after.empty() && after != "/")
        return std::string(
            "a proxy is a host and port: no path or query (a PAC file is not "
            "supported)");
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view info = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        const auto colon = info.find(':');
        std::string user;
        std::string password;
        if (!percent_decode(info.substr(0, colon), user, false) ||
            (colon != std::string_view::npos &&
             !percent_decode(info.substr(colon + 1), password, false)))
            return std::string("invalid percent-encoding in the user information");
        if (p.socks()) {
            // RFC 1929 carries each in one length byte; a login has a user name.
            if (user.empty() || user.size() > 255 || password.size() > 255)
                return std::string(
                    "a SOCKS5 user name is 1 to 255 bytes, and its password at most 255");
            p.has_login = true;
            p.user = std::move(user);
            p.password = std::move(password);
        } else {
            p.authorization = "Basic " + base64(user + ":" + password);
        }
    }
    auto url = parse_url("http://" + std::string(authority) + "/");
    if (!url) return std::move(url).error();
    p.url = std::move(*url);
    if (p.socks()) {
        // A port named after the host (outside an IPv6 address's brackets) stays; else 1080.
        const std::size_t close = authority.rfind(']');
        const std::string_view after_host =
            close == std::string_view::npos ? authority : authority.substr(close + 1);
        const std::size_t colon = after_host.find(':');
        if (colon == std::string_view::npos || colon + 1 == after_host.size()) p.url.port = 1080;
        const bool v6 = p.url.host.find(':') != std::string::npos;
        p.url.origin = scheme + "://" + (v6 ? "[" + p.url.host + "]" : p.url.host) + ":" +
                       std::to_string(p.url.port);
    }
    p.display = p.url.origin;
    return p;
}

NoProxy NoProxy::parse(std::string_view list, std::vector<std::string>* ignored) {
    NoProxy out;
    std::size_t i = 0;
    while (i < list.size()) {
        const std::size_t end = list.find_first_of(", \t", i);
        const std::string_view item =
            list.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
        i = end == std::string_view::npos ? list.size() : end + 1;
        if (item.empty()) continue;
        if (item == "*") {
            out.all_ = true;
            continue;
        }
        auto skip = [&] {
            if (ignored) ignored->emplace_back(item);
        };
        Entry e;
        std::string_view host = item;
        std::string_view port;
        if (host.starts_with("[")) {
            const auto close = host.find(']');
            if (close == std::string_view::npos) {
                skip();
                continue;
            }
            port = host.substr(close + 1);
            host = host.substr(1, close - 1);
            if (!port.empty()) {
                if (port[0] != ':') {
                    skip();
                    continue;
                }
                port.remove_prefix(1);
            }
        } else if (std::count(host.begin(), host.end(), ':') == 1) {
            port = host.substr(host.find(':') + 1);
            host = host.substr(0, host.find(':'));
        }
        if (!port.empty() || item.ends_with(":")) {
            unsigned n = 0;
            auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
            if (ec != std::errc() || ptr != port.data() + port.size() || n == 0 || n > 65535) {
                skip();
                continue;
            }
            e.port = static_cast<std::uint16_t>(n);
        }
        std::string_view prefix;
        const bool block = host.find('/') != std::string_view::npos;
        if (block) {
            prefix = host.substr(host.find('/') + 1);
            host = host.substr(0, host.find('/'));
        }
        if (parse_ip(std::string(host), e.addr)) {
            const bool v4 = host.find(':') == std::string_view::npos;
            e.is_ip = true;
            e.prefix = 128;
            if (block) {
                int bits = -1;
                auto [ptr, ec] =
                    std::from_chars(prefix.data(), prefix.data() + prefix.size(), bits);
                if (ec != std::errc() || ptr != prefix.data() + prefix.size() || bits < 0 ||
                    bits > (v4 ? 32 : 128)) {
                    skip();
                    continue;
                }
                e.prefix = v4 ? 96 + bits : bits;
            }
        } else {
            if (block) {
                skip();
                continue;
            }
            if (host.starts_with("*.")) host.remove_prefix(1);
            if (host.starts_with(".")) {
                e.subdomains_only = true;
                host.remove_prefix(1);
            }
            if (host.empty() || !std::all_of(host.begin(), host.end(), host_name_char)) {
                skip();
                continue;
            }
            e.host = lower(host);
            while (!e.host.empty() && e.host.back() == '.')
                e.host.pop_back();
        }
        out.entries_.push_back(std::move(e));
    }
    return out;
}

bool NoProxy::covers(const Url& url) const {
    if (all_) return true;
    std::uint8_t addr[16];
    const bool ip = parse_ip(url.host, addr);
    std::string_view host = url.host;
    while (!host.empty() && host.back() == '.')
        host.remove_suffix(1);
    for (const Entry& e : entries_) {
        if (e.port != 0 && e.port != url.port) continue;
        if (e.is_ip) {
            if (ip && same_prefix(addr, e.addr, e.prefix)) return true;
            continue;
        }
        if (ip) continue;
        if (!e.subdomains_only && host == e.host) return true;
        if (host.size() > e.host.size() && host.ends_with(e.host) &&
            host[host.size() - e.host.size() - 1] == '.')
            return true;
    }
    return false;
}

ProxyPolicy::ProxyPolicy(std::string_view http, std::string_view https, std::string_view no_proxy)
    : no_proxy_(NoProxy::parse(no_proxy)) {
    auto load = [&](Scheme& s, std::string_view text, const char* name) {
        s.set = !trim_ows(text).empty();
        if (!s.set) return;
        auto p = parse_proxy(text);
        if (p)
            s.proxy = std::move(*p);
        else
            s.error =
                std::string("the ") + name + " setting is not usable: " + std::move(p).error();
    };
    load(http_, http, "http_proxy");
    load(https_, https, "https_proxy");
}

ClientResult<const Proxy*> ProxyPolicy::for_url(const Url& url) const {
    const Scheme& s = url.https ? https_ : http_;
    if (!s.set || is_loopback(url)) return static_cast<const Proxy*>(nullptr);
    if (!s.error.empty()) return ClientError{ClientErrc::connect, s.error};
    if (no_proxy_.covers(url)) return static_cast<const Proxy*>(nullptr);
    return &*s.proxy;
}

EnvironmentProxies environment_proxies() {
    auto get = [](const char* upper, const char* lower_name) {
        for (const char* name : {upper, lower_name}) {
            const char* v = std::getenv(name);
            if (v && *v) return std::string(v);
        }
        return std::string();
    };
    return {get("HTTP_PROXY", "http_proxy"), get("HTTPS_PROXY", "https_proxy"),
            get("NO_PROXY", "no_proxy")};
}

ClientResult<void> open_tunnel(ClientConn& conn, const Proxy& proxy, const Url& target,
                               Deadline deadline, std::size_t max_header_bytes,
                               std::string_view user_agent) {
    const bool v6 = target.host.find(':') != std::string::npos;
    const std::string authority =
        (v6 ? "[" + target.host + "]" : target.host) + ":" + std::to_string(target.port);
    const std::string where = "proxy " + proxy.display + ", CONNECT " + authority;
    std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (!proxy.authorization.empty()) req += "Proxy-Authorization: " + proxy.authorization + "\r\n";
    if (!user_agent.empty()) req += "User-Agent: " + std::string(user_agent) + "\r\n";
    req += "\r\n";
    auto in_context = [&](ClientError e) {
        e.detail = where + ": " + e.detail;
        return e;
    };
    if (auto w = conn.write(req, deadline, std::chrono::nanoseconds::zero()); !w)
        return in_context(std::move(w).error());
    // The head ends at the first empty line; lines may end with a bare LF, as Go reads them.
    std::size_t end = 0;  // the head's length, its empty line included
    for (std::size_t scanned = 0;;) {
        const std::string_view in = conn.buffered();
        for (std::size_t lf; !end && (lf = in.find('\n', scanned)) != std::string_view::npos;) {
            const std::size_t line_start = scanned;
            scanned = lf + 1;
            if (lf == line_start || (lf == line_start + 1 && in[line_start] == '\r')) end = scanned;
        }
        if (end > max_header_bytes || (!end && in.size() > max_header_bytes))
            return ClientError{ClientErrc::protocol, where + ": the proxy's answer is over " +
                                                         std::to_string(max_header_bytes) +
                                                         " bytes"};
        if (end) break;
        auto r = conn.fill(deadline);
        if (!r) return in_context(std::move(r).error());
        if (!*r)
            return ClientError{ClientErrc::connect,
                               where + ": the proxy closed the connection without an answer"};
    }
    const std::string_view head = conn.buffered().substr(0, end);
    std::string_view line = head.substr(0, head.find('\n'));
    if (line.ends_with('\r')) line.remove_suffix(1);
    int status = 0;
    if (line.size() >= 12 && line.starts_with("HTTP/1.") && line[8] == ' ') {
        auto [ptr, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
        if (ec != std::errc() || ptr != line.data() + 12) status = 0;
    }
    if (status < 100 || status > 999)
        return ClientError{ClientErrc::protocol, where + ": the proxy's answer is not HTTP"};
    if (status / 100 != 2) {
        std::string said(trim_ows(line.substr(9)));
        for (char& c : said)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
        return ClientError{ClientErrc::connect, where + ": refused by the proxy: " + said};
    }
    conn.consume(end);
    // The server speaks first only after our ClientHello: anything here is not from it.
    if (!conn.buffered().empty())
        return ClientError{ClientErrc::protocol,
                           where + ": the proxy sent bytes after its answer to CONNECT"};
    return {};
}

namespace {

// RFC 1928 §6: what a reply's REP field says.
const char* socks_reply_text(unsigned rep) noexcept {
    switch (rep) {
        case 1:
            return "general SOCKS server failure";
        case 2:
            return "connection not allowed by ruleset";
        case 3:
            return "network unreachable";
        case 4:
            return "host unreachable";
        case 5:
            return "connection refused";
        case 6:
            return "TTL expired";
        case 7:
            return "command not supported";
        case 8:
            return "address type not supported";
        default:
            return "unassigned reply code";
    }
}

}  // namespace

ClientResult<void> open_socks_tunnel(ClientConn& conn, const Proxy& proxy, const Url& target,
                                     const SocketAddress* address, Deadline deadline) {
    const bool v6 = target.host.find(':') != std::string::npos;
    const std::string where = "proxy " + proxy.display + ", CONNECT " +
                              (v6 ? "[" + target.host + "]" : target.host) + ":" +
                              std::to_string(target.port);
    auto in_context = [&](ClientError e) {
        e.detail = where + ": " + e.detail;
        return e;
    };
    auto send = [&](const std::string& bytes) -> ClientResult<void> {
        if (auto w = conn.write(bytes, deadline, std::chrono::nanoseconds::zero()); !w)
            return in_context(std::move(w).error());
        return {};
    };
    // Waits until `n` bytes of the proxy's answer are here.
    auto need = [&](std::size_t n) -> ClientResult<void> {
        while (conn.buffered().size() < n) {
            auto r = conn.fill(deadline);
            if (!r) return in_context(std::move(r).error());
            if (!*r)
                return ClientError{ClientErrc::connect,
                                   where + ": the proxy closed the connection without an answer"};
        }
        return {};
    };
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(conn.buffered()[i]); };
    if (!address && target.host.size() > 255)
        return ClientError{ClientErrc::bad_url,
                           where + ": a host name over 255 bytes cannot go to a SOCKS proxy"};
    auto not_socks5 = [&] {
        return ClientError{ClientErrc::protocol, where + ": the proxy's answer is not SOCKS5"};
    };

    // The methods we take: none, and a login when we have one (as curl offers them).
    std::string greeting =
        proxy.has_login ? std::string("\x05\x02\x00\x02", 4) : std::string("\x05\x01\x00", 3);
    if (auto r = send(greeting); !r) return r;
    if (auto r = need(2); !r) return r;
    if (byte(0) != 5) return not_socks5();
    const unsigned method = byte(1);
    conn.consume(2);
    if (method == 0xff || (method != 0 && !(method == 2 && proxy.has_login)))
        return ClientError{
            ClientErrc::connect,
            where + (proxy.has_login ? ": refused by the proxy: it takes neither no "
                                       "authentication nor a user name and password"
                                     : ": refused by the proxy: it asks for authentication "
                                       "(give a user name and password in the proxy URL)")};
    if (method == 2) {
        std::string login = "\x01";
        login += static_cast<char>(proxy.user.size());
        login += proxy.user;
        login += static_cast<char>(proxy.password.size());
        login += proxy.password;
        if (auto r = send(login); !r) return r;
        // The status alone says (some proxies answer with version 5 here; curl reads it so).
        if (auto r = need(2); !r) return r;
        const unsigned status = byte(1);
        conn.consume(2);
        if (status != 0)
            return ClientError{ClientErrc::connect,
                               where + ": refused by the proxy: wrong user name or password"};
    }

    std::string req("\x05\x01\x00", 3);
    if (address && address->family() == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(address->data());
        req += '\x01';
        req.append(reinterpret_cast<const char*>(&a->sin_addr), 4);
    } else if (address && address->family() == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(address->data());
        req += '\x04';
        req.append(reinterpret_cast<const char*>(&a->sin6_addr), 16);
    } else {
        // The host as the URL names it: an address literal as an address, a name as a name.
        in_addr v4{};
        in6_addr v6addr{};
        if (::inet_pton(AF_INET, target.host.c_str(), &v4) == 1) {
            req += '\x01';
            req.append(reinterpret_cast<const char*>(&v4), 4);
        } else if (::inet_pton(AF_INET6, target.host.c_str(), &v6addr) == 1) {
            req += '\x04';
            req.append(reinterpret_cast<const char*>(&v6addr), 16);
        } else {
            req += '\x03';
            req += static_cast<char>(target.host.size());
            req += target.host;
        }
    }
    req += static_cast<char>(target.port >> 8);
    req += static_cast<char>(target.port & 0xff);
    if (auto r = send(req); !r) return r;
    // VER REP RSV ATYP, then the bound address (4, 16, or a length byte and a name), its port.
    // A refusal may end after VER REP; its reason counts, not the rest.
    if (auto r = need(2); !r) return r;
    if (byte(0) != 5) return not_socks5();
    const unsigned rep = byte(1);
    if (rep != 0)
        return ClientError{ClientErrc::connect,
                           where + ": refused by the proxy: " + socks_reply_text(rep)};
    if (auto r = need(5); !r) return r;
    std::size_t len = 0;
    switch (byte(3)) {
        case 1:
            len = 4 + 4 + 2;
            break;
        case 4:
            len = 4 + 16 + 2;
            break;
        case 3:
            len = 4 + 1 + byte(4) + 2;
            break;
        default:
            return not_socks5();
    }
    if (auto r = need(len); !r) return r;
    conn.consume(len);
    // Neither kind of server speaks first (TLS waits for our ClientHello, HTTP for a request).
    if (!conn.buffered().empty())
        return ClientError{ClientErrc::protocol,
                           where + ": the proxy sent bytes after its answer to CONNECT"};
    return {};
}

}  // namespace weft::http::detail
