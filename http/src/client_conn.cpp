// URLs and the client's connections: reading into a buffer that the response parser consumes,
// through TLS when the origin is https.
#include "client_conn.hpp"

#include "uri.hpp"

#include "weft/core/fiber.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace weft::http::detail {

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;

bool valid_host_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

ClientError from_tls(TlsError e, ClientErrc transport_code = ClientErrc::closed) {
    if (e.tls) return {ClientErrc::tls, std::move(e.message)};
    switch (e.transport.code) {
        case Errc::timed_out:
            return {ClientErrc::timed_out, "no data from the server in time"};
        case Errc::cancelled:
            return {ClientErrc::cancelled, "the calling fiber was cancelled"};
        default:
            return {transport_code, e.message};
    }
}

ClientError from_io(Error e, ClientErrc otherwise) {
    switch (e.code) {
        case Errc::timed_out:
            return {ClientErrc::timed_out, "no data from the server in time"};
        case Errc::cancelled:
            return {ClientErrc::cancelled, "the calling fiber was cancelled"};
        default:
            return {otherwise, e.message()};
    }
}

}  // namespace

std::string Url::to_string() const {
    return (https ? "https://" : "http://") + host_header + target;
}

Result<Url, std::string> parse_url(std::string_view text) {
    Url u;
    // The scheme is case-insensitive (RFC 3986 §3.1): "HTTP://" is "http://".
    auto scheme_is = [&](std::string_view s) {
        return text.size() >= s.size() &&
               std::equal(s.begin(), s.end(), text.begin(), [](char a, char b) {
                   return a == std::tolower(static_cast<unsigned char>(b));
               });
    };
    if (scheme_is("http://")) {
        text.remove_prefix(7);
    } else if (scheme_is("https://")) {
        text.remove_prefix(8);
        u.https = true;
        u.port = 443;
    } else {
        return std::string("not an absolute http:// or https:// URL");
    }
    const std::size_t end = text.find_first_of("/?#");
    std::string_view authority = text.substr(0, end);
    std::string_view rest = end == std::string_view::npos ? std::string_view() : text.substr(end);
    if (const auto hash = rest.find('#'); hash != std::string_view::npos)
        rest = rest.substr(0, hash);
    if (authority.find('@') != std::string_view::npos)
        return std::string("user information in a URL is not supported");
    std::string_view host = authority;
    std::string_view port;
    if (authority.starts_with("[")) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::string("unclosed '[' in the host");
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return std::string("junk after the IPv6 address");
            port = after.substr(1);
        }
        for (char c : host)
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
                return std::string("invalid IPv6 address");
    } else {
        if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
        }
        for (char c : host)
            if (!valid_host_char(c)) return std::string("invalid character in the host name");
    }
    if (host.empty()) return std::string("no host");
    if (!port.empty()) {
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535)
            return std::string("invalid port '") + std::string(port) + "'";
        u.port = static_cast<std::uint16_t>(p);
    }
    u.host = std::string(host);
    std::transform(u.host.begin(), u.host.end(), u.host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const bool v6 = u.host.find(':') != std::string::npos;
    const std::string h = v6 ? "[" + u.host + "]" : u.host;
    const bool default_port = u.port == (u.https ? 443 : 80);
    u.host_header = default_port ? h : h + ":" + std::to_string(u.port);
    u.origin = std::string(u.https ? "https://" : "http://") + h + ":" + std::to_string(u.port);
    if (rest.empty() || rest[0] == '?') u.target = "/";
    // A request-target is ASCII (RFC 9112 section 3.2): other bytes ("/café" in UTF-8) are
    // sent percent-encoded, as browsers and Go send them.
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (char c : rest) {
        const auto b = static_cast<unsigned char>(c);
        if (b <= 0x20 || b == 0x7f) return std::string("a space or control character in the path");
        if (b < 0x80) {
            u.target += c;
        } else {
            u.target += '%';
            u.target += kHex[b >> 4];
            u.target += kHex[b & 0xF];
        }
    }
    return u;
}

namespace {

// The scheme of an absolute reference ("HTTPS" in "HTTPS://x/"), empty for a relative one.
std::string_view scheme_of(std::string_view ref) noexcept {
    const auto colon = ref.find(':');
    if (colon == std::string_view::npos || colon == 0) return {};
    for (std::size_t i = 0; i < colon; ++i) {
        const char c = ref[i];
        const bool ok = std::isalpha(static_cast<unsigned char>(c)) ||
                        (i > 0 && (std::isdigit(static_cast<unsigned char>(c)) || c == '+' ||
                                   c == '-' || c == '.'));
        if (!ok) return {};
    }
    return ref.substr(0, colon);
}

}  // namespace

Result<Url, std::string> resolve_location(const Url& base, std::string_view location) {
    location = location.substr(0, location.find('#'));  // a fragment is not sent
    if (const std::string_view scheme = scheme_of(location); !scheme.empty()) {
        std::string lower(scheme);
        for (char& c : lower)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower != "http" && lower != "https")
            return "a redirect to a '" + std::string(scheme) + ":' URL, which is not HTTP";
        return parse_url(lower + std::string(location.substr(scheme.size())));
    }
    if (location.starts_with("//"))
        return parse_url(std::string(base.https ? "https:" : "http:") + std::string(location));
    const std::string_view base_path =
        std::string_view(base.target).substr(0, base.target.find('?'));
    std::string target;
    if (location.empty()) {
        target = base.target;  // RFC 3986 5.2.2: the base document itself
    } else if (location.starts_with("?")) {
        target = std::string(base_path) + std::string(location);
    } else {
        const auto q = location.find('?');
        const std::string_view path = location.substr(0, q);
        const std::string_view query =
            q == std::string_view::npos ? std::string_view() : location.substr(q);
        std::string merged;
        if (path.starts_with("/")) {
            merged = std::string(path);
        } else {
            // Relative to the base path's directory.
            merged = std::string(base_path.substr(0, base_path.rfind('/') + 1)) + std::string(path);
        }
        target = remove_dot_segments(merged);
        if (target.empty() || target.front() != '/') target = "/" + target;
        target += query;
    }
    return parse_url(std::string(base.https ? "https://" : "http://") + base.host_header + target);
}

ClientConn::ClientConn(TcpStream tcp) noexcept : tcp_(std::move(tcp)) {}

ClientConn::~ClientConn() = default;

ClientResult<void> ClientConn::start_tls(std::shared_ptr<TlsContext> ctx, std::string_view host,
                                         std::string_view origin, Deadline deadline) {
    tls_ = std::make_unique<TlsSession>(std::move(ctx), tcp_);
    if (auto r = tls_->connect(host, deadline, origin); !r) {
        TlsError e = std::move(r).error();
        if (!e.tls && e.transport.code == Errc::timed_out)
            return ClientError{ClientErrc::timed_out,
                               "the TLS handshake with " + std::string(host) +
                                   " did not end in time (connect_timeout, or the deadline)"};
        return from_tls(std::move(e), ClientErrc::connect);
    }
    return {};
}

ClientResult<void> ClientConn::write(std::string_view data, Deadline total,
                                     std::chrono::nanoseconds stall) {
    // `stall` bounds a server that stops taking bytes, not the upload: a large body to a slow
    // link goes on as long as it moves.
    auto timed_out = [&] {
        return ClientError{ClientErrc::timed_out,
                           total.passed() ? "sending the request: the deadline passed"
                                          : "sending the request: the server took none of it "
                                            "for read_timeout"};
    };
    if (tls_) {
        // The stall bounds each send of ciphertext (no byte out for that long), as on plain
        // TCP: an upload lasts as long as it moves.
        tls_->set_send_stall(stall);
        auto r = tls_->write(data, total);
        tls_->set_send_stall(std::chrono::nanoseconds::zero());
        if (!r) {
            TlsError e = std::move(r).error();
            if (!e.tls && e.transport.code == Errc::timed_out) return timed_out();
            return from_tls(std::move(e));
        }
        return {};
    }
    ScopedDeadline bound(total);
    if (auto r = tcp_.send_until_stalled(data, stall); !r) {
        if (r.error().code == Errc::timed_out) return timed_out();
        return from_io(r.error(), ClientErrc::closed);
    }
    return {};
}

void ClientConn::release_buffers() noexcept {
    if (tls_) tls_->release_buffers();
    if (pos_ == buf_.size()) {
        std::string().swap(buf_);
        pos_ = 0;
    }
}

ClientResult<bool> ClientConn::fill(Deadline deadline) {
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > kReadChunk) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    const std::size_t old = buf_.size();
    buf_.resize(old + kReadChunk);
    std::size_t n = 0;
    if (tls_) {
        auto r = tls_->read(std::span<char>(buf_.data() + old, kReadChunk), deadline);
        if (!r) {
            buf_.resize(old);
            return from_tls(std::move(r).error());
        }
        n = *r;
    } else {
        auto r = tcp_.recv(std::span<char>(buf_.data() + old, kReadChunk), deadline);
        if (!r) {
            buf_.resize(old);
            if (r.error().code == Errc::eof) return false;
            return from_io(r.error(), ClientErrc::closed);
        }
        n = *r;
    }
    buf_.resize(old + n);
    bytes_in += n;
    return n > 0;
}

std::string_view ClientConn::buffered() const noexcept {
    return std::string_view(buf_).substr(pos_);
}

void ClientConn::consume(std::size_t n) noexcept {
    pos_ = std::min(buf_.size(), pos_ + n);
}

bool ClientConn::looks_closed() const noexcept {
    if (pos_ < buf_.size()) return true;  // bytes nobody asked for
    // Decrypted bytes, or records still in the read BIO (a close_notify that came with the
    // response's last bytes, the socket then empty and no FIN yet).
    if (tls_ && tls_->has_buffered()) return true;
    char c;
    const ssize_t n = ::recv(tcp_.fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    // 0: the server closed; data: a stray byte (or a TLS close_notify); EAGAIN: fine.
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

}  // namespace weft::http::detail
