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
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
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
    RawClient(RawClient&& o) noexcept
        : fd_(std::exchange(o.fd_, -1)), buf_(std::move(o.buf_)), io_(std::move(o.io_)) {}
    RawClient(const RawClient&) = delete;

    /// Another layer over the socket (TLS): what send and receive go through, and the bytes it
    /// holds already received (so that waiting for the socket is not needed).
    struct Io {
        std::function<long(const char*, std::size_t)> send;
        std::function<long(char*, std::size_t)> recv;
        std::function<bool()> pending;
    };
    void set_io(Io io) { io_ = std::move(io); }

    bool ok() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    bool send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = io_.send ? io_.send(data.data(), data.size())
                                 : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
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
            if (!io_.pending || !io_.pending()) {
                pollfd p{fd_, POLLIN, 0};
                int r = ::poll(&p, 1, static_cast<int>(left.count()));
                if (r <= 0) continue;
            }
            char tmp[16384];
            ssize_t n = io_.recv ? io_.recv(tmp, sizeof tmp) : ::recv(fd_, tmp, sizeof tmp, 0);
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
    Io io_;
};

/// What a server must refuse, and with which status: the malformed-request table the plain
/// and the TLS server tests share (the demo routes /echo and /sleep serve the good ones).
struct MalformedCase {
    const char* what;
    std::string request;
    int status;
};

inline std::vector<MalformedCase> malformed_request_cases() {
    return {
        {"garbage", "\x16\x03\x01\x00\x10hello\r\n\r\n", 400},
        {"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
        {"CL and TE",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         400},
        {"two CLs",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
        {"bad chunk size",
         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400},
        {"bad header", "GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400},
        {"unknown TE", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br\r\n\r\n", 501},
        {"unknown method", "BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        {"long URI", "GET /" + std::string(2000, 'u') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414},
        {"big headers", "GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(5000, 'h') + "\r\n\r\n",
         431},
        {"big body",
         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n" +
             std::string(1000, 'b'),
         413},
        {"big chunked body",
         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n50000\r\n" +
             std::string(1000, 'b'),
         413},
        {"expectation", "GET / HTTP/1.1\r\nHost: t\r\nExpect: later\r\n\r\n", 417},
        {"bad escape in param", "GET /sleep?ms=%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"invalid Host", "GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n", 400},
        {"empty field name", "GET / HTTP/1.1\r\nHost: t\r\n: x\r\n\r\n", 400},
        {"no target, no version", "HELLO\r\n\r\n", 400},
        {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        {"long chunk extension",
         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;x=" +
             std::string(64 * 1024, 'x') + "\r\nhello\r\n0\r\n\r\n",
         400},
        {"leading zeros in a chunk size",
         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
             std::string(64 * 1024, '0') + "5\r\nhello\r\n0\r\n\r\n",
         400},
    };
}

/// Polls `pred` until it holds (true) or `timeout` passes (false): for a state the server
/// reaches on its own threads, which a loaded machine may take a while to get to.
template <class P>
bool eventually(P pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

}  // namespace weft::http::testing
