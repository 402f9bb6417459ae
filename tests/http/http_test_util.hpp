// Test helpers: a small HTTP/1.1 response reader (status, headers, Content-Length or chunked
// bodies) for byte streams, and blocking loopback sockets for raw-socket clients.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft::http::testing {

struct ParsedResponse {
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool chunked = false;

    std::optional<std::string> header(std::string_view name) const {
        for (auto& [n, v] : headers) {
            if (n.size() != name.size()) continue;
            bool eq = true;
            for (std::size_t i = 0; i < n.size() && eq; ++i)
                eq = std::tolower(static_cast<unsigned char>(n[i])) ==
                     std::tolower(static_cast<unsigned char>(name[i]));
            if (eq) return v;
        }
        return std::nullopt;
    }
};

/// Reads one response from the front of `in`; returns how many bytes it took, or 0 when `in`
/// does not yet hold a whole response. `head_only`: the response to a HEAD (no body).
/// A response without Content-Length or chunked coding runs to the end of `in` when
/// `eof` is set.
inline std::size_t read_response(std::string_view in, ParsedResponse& out, bool head_only = false,
                                 bool eof = false) {
    std::size_t end = in.find("\r\n\r\n");
    if (end == std::string_view::npos) return 0;
    ParsedResponse r;
    std::string_view head = in.substr(0, end);
    std::size_t line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    if (status_line.size() < 12) return 0;
    r.status = std::stoi(std::string(status_line.substr(9, 3)));
    r.reason = std::string(status_line.substr(13));
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
        std::size_t e = rest.find("\r\n");
        std::string_view line = rest.substr(0, e);
        std::size_t colon = line.find(':');
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
        r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
        if (e == std::string_view::npos) break;
        rest.remove_prefix(e + 2);
    }
    std::size_t pos = end + 4;
    bool bodiless = head_only || r.status < 200 || r.status == 204 || r.status == 304;
    if (auto cl = r.header("Content-Length"); cl && !bodiless) {
        std::size_t n = std::stoul(*cl);
        if (in.size() < pos + n) return 0;
        r.body = std::string(in.substr(pos, n));
        pos += n;
    } else if (auto te = r.header("Transfer-Encoding"); te && !bodiless) {
        r.chunked = true;
        for (;;) {
            std::size_t le = in.find("\r\n", pos);
            if (le == std::string_view::npos) return 0;
            std::size_t n = std::stoul(std::string(in.substr(pos, le - pos)), nullptr, 16);
            pos = le + 2;
            if (n == 0) {
                if (in.size() < pos + 2) return 0;
                pos += 2;  // no trailers from our server
                break;
            }
            if (in.size() < pos + n + 2) return 0;
            r.body += std::string(in.substr(pos, n));
            pos += n + 2;
        }
    } else if (!bodiless && !r.header("Content-Length")) {
        if (!eof) return 0;
        r.body = std::string(in.substr(pos));
        pos = in.size();
    }
    out = std::move(r);
    return pos;
}

/// Splits a byte stream into responses.
inline std::vector<ParsedResponse> read_responses(std::string_view in, bool eof = true) {
    std::vector<ParsedResponse> out;
    while (!in.empty()) {
        ParsedResponse r;
        std::size_t n = read_response(in, r, false, eof);
        if (n == 0) break;
        out.push_back(std::move(r));
        in.remove_prefix(n);
    }
    return out;
}

/// A blocking loopback TCP client for raw-socket tests.
class RawClient {
  public:
    explicit RawClient(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
        int one = 1;
        if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~RawClient() { close(); }
    RawClient(RawClient&& o) noexcept : fd_(std::exchange(o.fd_, -1)), buf_(std::move(o.buf_)) {}
    RawClient(const RawClient&) = delete;

    bool ok() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    bool send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    /// Reads until `pred(buffer)` holds, the peer closes, or `timeout` passes. Returns false on
    /// timeout.
    template <class Pred>
    bool read_until(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        auto until = std::chrono::steady_clock::now() + timeout;
        while (!pred(buf_)) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r <= 0) continue;
            char tmp[16384];
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0) {
                eof_ = true;
                return pred(buf_);
            }
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
        return true;
    }
    /// Reads `count` whole responses (or until EOF/timeout).
    std::vector<ParsedResponse> read_responses(
        std::size_t count, bool head_only = false,
        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::vector<ParsedResponse> out;
        while (out.size() < count) {
            ParsedResponse r;
            std::size_t used = 0;
            bool got = read_until(
                [&](const std::string& b) {
                    used = read_response(b, r, head_only, eof_);
                    return used > 0 || eof_;
                },
                timeout);
            if (!got || used == 0) break;
            buf_.erase(0, used);
            out.push_back(std::move(r));
        }
        return out;
    }
    /// Waits for the server to close the connection (EOF or reset).
    bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        read_until([&](const std::string&) { return eof_; }, timeout);
        return eof_;
    }
    std::string& buffer() { return buf_; }
    bool eof() const { return eof_; }

  private:
    int fd_ = -1;
    std::string buf_;
    bool eof_ = false;
};

}  // namespace weft::http::testing
