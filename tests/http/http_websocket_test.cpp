// WebSocket routes on the real server, with handlers the demo does not have: nothing goes out
// after our close frame, close() refuses codes no close frame may carry, the subprotocol is
// matched as the client spelled it, a client's frames sent with its handshake are kept, the
// registered codes 1012-1014 are taken, and the idle timeout counts from the last message.
// (The frame parser has its own unit test; the demo's echo route meets real clients in
// tests/server/server_websocket_test.py.)
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http_test_util.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/weft.hpp"
#include "weft/http/http.hpp"

using namespace std::chrono_literals;
using namespace weft::http;

namespace {

constexpr std::size_t kBig = 32u << 20;  // more than loopback's socket buffers hold

struct WsServer {
    std::atomic<int> late_send{-1};  // Errc of /race's send after the close
    std::atomic<int> echoed{-1};     // /echo-close: the code it closed with again, or -2: threw
    std::atomic<int> recv_after_close{-1};  // /close-aside: Errc of the handler's recv()
    std::atomic<long> close_took_ms{-1};    // /close-aside: how long the other fiber's close()

    explicit WsServer(ServerOptions o = {}) {
        weft::RuntimeOptions ro;
        ro.hubs = 1;
        ro.name = "t";
        rt = std::make_unique<weft::Runtime>(ro);
        router.websocket("/echo", [](Request&, WebSocket& ws) {
            while (auto m = ws.recv())
                if (!(m->text ? ws.send_text(m->data) : ws.send_binary(m->data))) break;
        });
        // One fiber sends more than the client reads, the handler closes while that send holds
        // the connection, and another fiber sends after the close began.
        router.websocket("/race", [this](Request&, WebSocket& ws) {
            auto big = weft::spawn("big", [&] { (void)ws.send_binary(std::string(kBig, 'b')); });
            auto late = weft::spawn("late", [&] {
                (void)weft::sleep_for(300ms);
                auto r = ws.send_text("data-after-close");
                late_send = static_cast<int>(r ? weft::Errc::ok : r.error().code);
            });
            (void)weft::sleep_for(150ms);
            ws.close(ws_close::normal, "bye");
            big.join();
            late.join();
        });
        // Closes with ?code and ?reason as the handler was told.
        router.websocket("/close", [](Request& r, WebSocket& ws) {
            const auto code = static_cast<std::uint16_t>(
                std::stoul(std::string(r.query("code").value_or("1000"))));
            ws.close(code, r.query("reason").value_or(""));
        });
        WebSocketOptions big_messages;  // its own limit, above the server's
        big_messages.max_message_bytes = 128 * 1024;
        router.websocket(
            "/echo-big",
            [](Request&, WebSocket& ws) {
                while (auto m = ws.recv())
                    if (!ws.send_binary(m->data)) break;
            },
            big_messages);
        WebSocketOptions chat;
        chat.subprotocols = {"Chat"};
        router.websocket(
            "/proto", [](Request&, WebSocket& ws) { ws.close(); }, chat);
        // Closes again with the code the WebSocket ended with (1006 after a hang-up): a close
        // of a closed WebSocket does nothing, whatever the code.
        router.websocket("/echo-close", [this](Request&, WebSocket& ws) {
            while (ws.recv()) {
            }
            try {
                ws.close(ws.close_code());
                echoed = ws.close_code();
            } catch (const std::exception&) {
                echoed = -2;
            }
        });
        // Waits in short slices, as a handler with other duties would.
        router.websocket("/slices", [](Request&, WebSocket& ws) {
            for (;;) {
                auto m = ws.recv(weft::Deadline(100ms));
                if (!m && m.error().code != weft::Errc::timed_out) break;
            }
        });
        // A route timeout of 300 ms on a handler that only receives.
        RouteOptions short_route;
        short_route.timeout = 300ms;
        router.websocket(
            "/timed",
            [](Request&, WebSocket& ws) {
                while (ws.recv()) {
                }
            },
            {}, short_route);
        // Another fiber closes while the handler waits in recv(), which then ends.
        // ?deadline_ms: the closing fiber's own deadline (a route timeout), which is not the
        // close wait's.
        router.websocket("/close-aside", [this](Request& req, WebSocket& ws) {
            const long deadline_ms = std::stol(std::string(req.query("deadline_ms").value_or("0")));
            auto closer = weft::spawn("closer", [&] {
                (void)weft::sleep_for(100ms);
                weft::ScopedDeadline bound(
                    deadline_ms > 0 ? weft::Deadline(std::chrono::milliseconds(deadline_ms))
                                    : weft::Deadline::never());
                const auto t0 = std::chrono::steady_clock::now();
                ws.close(ws_close::normal, "aside");
                close_took_ms =
                    static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count());
            });
            auto r = ws.recv();
            recv_after_close = static_cast<int>(r ? weft::Errc::ok : r.error().code);
            closer.join();
        });
        // Any page may open this one.
        WebSocketOptions any_origin;
        any_origin.allowed_origins = {"*"};
        router.websocket(
            "/any-origin", [](Request&, WebSocket& ws) { ws.close(); }, any_origin);
        router.get("/plain", [](Request&) { return Response(200, "plain\n"); });
        // Tries to send text that is not UTF-8, then says how that went, in UTF-8.
        router.websocket("/bad-text", [](Request&, WebSocket& ws) {
            auto r = ws.send_text(std::string("\xff\xfe", 2));
            (void)ws.send_text(r ? "sent"
                                 : "refused: " + std::to_string(static_cast<int>(r.error().code)));
        });
        server = std::make_unique<Server>(*rt, router, std::move(o));
        port = server->listen(*weft::SocketAddress::parse("127.0.0.1:0"))->port();
    }
    ~WsServer() {
        server.reset();
        rt.reset();
    }

    std::unique_ptr<weft::Runtime> rt;
    Router router;
    std::unique_ptr<Server> server;
    std::uint16_t port = 0;
};

struct Frame {
    int opcode = -1;
    std::string payload;
    std::uint16_t code() const {
        return payload.size() >= 2
                   ? static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                                static_cast<unsigned char>(payload[1]))
                   : 0;
    }
};

// A client frame (masked, FIN set).
std::string client_frame(int opcode, std::string_view payload) {
    std::string f;
    f += static_cast<char>(0x80 | opcode);
    const std::size_t n = payload.size();
    if (n < 126) {
        f += static_cast<char>(0x80 | n);
    } else if (n < 65536) {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n & 0xff);
    } else {
        f += static_cast<char>(0x80 | 127);
        for (int i = 7; i >= 0; --i)
            f += static_cast<char>((n >> (8 * i)) & 0xff);
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    f.append(mask, 4);
    for (std::size_t i = 0; i < n; ++i)
        f += static_cast<char>(payload[i] ^ mask[i % 4]);
    return f;
}

std::string handshake(std::string_view path, std::string_view extra = {}) {
    return "GET " + std::string(path) +
           " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           std::string(extra) + "\r\n";
}

class WsClient {
  public:
    // `rcvbuf`: a small receive buffer, for a client that is slow to read.
    explicit WsClient(std::uint16_t port, int rcvbuf = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~WsClient() { ::close(fd_); }
    bool ok() const { return ok_; }
    bool send(std::string_view s) {
        while (!s.empty()) {
            const ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            s.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    // The response head of the handshake ("" if none came).
    std::string head(std::chrono::milliseconds timeout = 5s) {
        while (buf_.find("\r\n\r\n") == std::string::npos)
            if (!more(timeout)) return {};
        const std::size_t end = buf_.find("\r\n\r\n") + 4;
        std::string h = buf_.substr(0, end);
        buf_.erase(0, end);
        return h;
    }
    // The next server frame, or nothing at the end of the stream or after `timeout`.
    std::optional<Frame> frame(std::chrono::milliseconds timeout = 5s) {
        for (;;) {
            if (buf_.size() >= 2) {
                const auto b1 = static_cast<unsigned char>(buf_[1]) & 0x7f;
                std::size_t hl = 2, n = b1;
                if (b1 == 126 && buf_.size() >= 4) {
                    hl = 4;
                    n = (static_cast<unsigned char>(buf_[2]) << 8) |
                        static_cast<unsigned char>(buf_[3]);
                } else if (b1 == 127 && buf_.size() >= 10) {
                    hl = 10;
                    n = 0;
                    for (int i = 2; i < 10; ++i)
                        n = (n << 8) | static_cast<unsigned char>(buf_[i]);
                }
                if ((b1 < 126 || hl > 2) && buf_.size() >= hl + n) {
                    Frame f;
                    f.opcode = static_cast<unsigned char>(buf_[0]) & 0x0f;
                    f.payload = buf_.substr(hl, n);
                    buf_.erase(0, hl + n);
                    return f;
                }
            }
            if (!more(timeout)) return std::nullopt;
        }
    }

  private:
    bool more(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
        char tmp[65536];
        const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }
    int fd_ = -1;
    bool ok_ = false;
    std::string buf_;
};

// The close frame the server sends after the handshake of `path` (opcode -1 if none came).
Frame close_frame_for(std::uint16_t port, const std::string& path) {
    WsClient c(port);
    EXPECT_TRUE(c.ok());
    c.send(handshake(path));
    EXPECT_NE(c.head().find("101 Switching Protocols"), std::string::npos) << path;
    while (auto f = c.frame())
        if (f->opcode == 8) return *f;
    return {};
}

}  // namespace

// RFC 6455 5.5.1: after sending a close frame, an endpoint sends no more data frames, even
// from a fiber that was waiting to send while the close went out.
TEST(HttpWebSocket, NothingFollowsTheCloseFrame) {
    WsServer s;
    WsClient c(s.port, 64 * 1024);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/race"));
    // Read nothing for a while: the big send holds the connection, the close and the late
    // send queue behind it.
    std::this_thread::sleep_for(600ms);
    ASSERT_NE(c.head().find("101 Switching Protocols"), std::string::npos);
    std::vector<Frame> frames;
    while (auto f = c.frame(3s))
        frames.push_back(std::move(*f));
    ASSERT_GE(frames.size(), 2u);
    EXPECT_EQ(frames[0].opcode, 2);
    EXPECT_EQ(frames[0].payload.size(), kBig);
    EXPECT_EQ(frames[1].opcode, 8);
    EXPECT_EQ(frames[1].code(), ws_close::normal);
    EXPECT_EQ(frames.size(), 2u) << "a frame after the close: opcode " << frames.back().opcode
                                 << " " << frames.back().payload;
    for (int i = 0; i < 100 && s.late_send.load() == -1; ++i)
        std::this_thread::sleep_for(20ms);
    EXPECT_EQ(s.late_send.load(), static_cast<int>(weft::Errc::closed));
}

// RFC 6455 7.4: 1005, 1006 and 1015 never travel in a close frame, nor codes outside the
// registered and private ranges; a handler that asks for one has a bug, which it is told of (the
// exception ends it, and the client gets 1011). 1005 means a close frame without a code.
TEST(HttpWebSocket, CloseRefusesCodesACloseFrameMayNotCarry) {
    WsServer s;
    EXPECT_EQ(close_frame_for(s.port, "/close?code=4000&reason=done").code(), 4000);
    EXPECT_EQ(close_frame_for(s.port, "/close?code=4000&reason=done").payload.substr(2), "done");
    EXPECT_EQ(close_frame_for(s.port, "/close?code=1012").code(), 1012);
    const Frame bare = close_frame_for(s.port, "/close?code=1005");
    EXPECT_EQ(bare.opcode, 8);
    EXPECT_EQ(bare.payload, "");
    for (const char* bad : {"1006", "1015", "1004", "999", "2000", "5000", "65535"})
        EXPECT_EQ(close_frame_for(s.port, std::string("/close?code=") + bad).code(),
                  ws_close::internal_error)
            << bad;
    EXPECT_EQ(close_frame_for(s.port, "/close?code=1000&reason=%ff%fe").code(),
              ws_close::internal_error)
        << "a reason that is not UTF-8";
}

// close() is idempotent: after the client hung up, closing again with the code it left (1006,
// which no close frame may carry) does nothing and throws nothing.
TEST(HttpWebSocket, ClosingAClosedWebSocketDoesNothing) {
    WsServer s;
    {
        WsClient c(s.port);
        ASSERT_TRUE(c.ok());
        c.send(handshake("/echo-close"));
        ASSERT_NE(c.head().find("101"), std::string::npos);
    }  // hangs up without a close frame
    for (int i = 0; i < 250 && s.echoed.load() == -1; ++i)
        std::this_thread::sleep_for(20ms);
    EXPECT_EQ(s.echoed.load(), ws_close::abnormal);
}

// The registered codes 1012-1014 (service restart, try again later, bad gateway) from a client
// are answered in kind, not as a protocol error.
TEST(HttpWebSocket, RegisteredCloseCodesFromTheClientAreTaken) {
    WsServer s;
    for (std::uint16_t code : {1012, 1013, 1014}) {
        WsClient c(s.port);
        ASSERT_TRUE(c.ok());
        c.send(handshake("/echo"));
        ASSERT_NE(c.head().find("101"), std::string::npos);
        std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
        c.send(client_frame(8, payload));
        auto f = c.frame();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->opcode, 8);
        EXPECT_EQ(f->code(), code);
    }
}

// RFC 6455 11.3.1 and 11.3.5: a handshake with a key (or a version) twice is refused.
TEST(HttpWebSocket, AKeyOrVersionSentTwiceIsRefused) {
    WsServer s;
    for (const char* extra :
         {"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n", "Sec-WebSocket-Version: 13\r\n"}) {
        WsClient c(s.port);
        c.send(handshake("/echo", extra));
        const std::string h = c.head();
        EXPECT_NE(h.find("HTTP/1.1 400 "), std::string::npos) << h;
        EXPECT_NE(h.find("Connection: close"), std::string::npos) << h;
    }
    WsClient c(s.port);  // once each: accepted
    c.send(handshake("/echo"));
    const std::string h = c.head();
    EXPECT_NE(h.find("101"), std::string::npos) << h;
}

// RFC 6455 4.1: a client fails a handshake whose subprotocol it did not offer as written.
TEST(HttpWebSocket, TheSubprotocolIsMatchedAsTheClientSpelledIt) {
    WsServer s;
    {
        WsClient c(s.port);
        c.send(handshake("/proto", "Sec-WebSocket-Protocol: chat\r\n"));
        const std::string h = c.head();
        EXPECT_NE(h.find("101"), std::string::npos) << h;
        EXPECT_EQ(h.find("Sec-WebSocket-Protocol"), std::string::npos) << h;
    }
    WsClient c(s.port);
    c.send(handshake("/proto", "Sec-WebSocket-Protocol: other, Chat\r\n"));
    const std::string h = c.head();
    EXPECT_NE(h.find("Sec-WebSocket-Protocol: Chat\r\n"), std::string::npos) << h;
}

// Cross-site WebSocket hijacking: a browser page of another site would open the WebSocket with
// this site's cookies. Its Origin must be the request's own host (Host "t" here), or allowed.
std::string status_for_origin(std::uint16_t port, std::string_view path, std::string_view origin) {
    WsClient c(port);
    c.send(handshake(path,
                     origin.empty() ? std::string() : "Origin: " + std::string(origin) + "\r\n"));
    const std::string h = c.head();
    return h.substr(0, h.find("\r\n"));
}

TEST(HttpWebSocket, PagesOfOtherOriginsAreRefused) {
    WsServer s;
    for (const char* same : {"", "http://t", "http://t:80", "https://T", "https://t:443", "ws://t"})
        EXPECT_EQ(status_for_origin(s.port, "/proto", same), "HTTP/1.1 101 Switching Protocols")
            << same;
    for (const char* other : {"http://evil.example", "null", "http://t.evil", "http://t:8080",
                              "https://t:80", "http://t/path", "t", "http://u@t"})
        EXPECT_EQ(status_for_origin(s.port, "/proto", other), "HTTP/1.1 403 Forbidden") << other;
    // A route that allows any page.
    EXPECT_EQ(status_for_origin(s.port, "/any-origin", "http://evil.example"),
              "HTTP/1.1 101 Switching Protocols");
}

// Behind a proxy that sends another Host, the host the browser used comes in X-Forwarded-Host
// or Forwarded's host=: a page of that host is the server's own.
TEST(HttpWebSocket, APageOfTheHostAProxyNamesIsTheServersOwn) {
    WsServer s;
    auto status = [&](std::string_view fields) {
        WsClient c(s.port);
        c.send(handshake("/proto", fields));
        const std::string h = c.head();
        return h.substr(0, h.find("\r\n"));
    };
    EXPECT_EQ(status("Origin: https://app.example\r\nX-Forwarded-Host: app.example\r\n"),
              "HTTP/1.1 101 Switching Protocols");
    EXPECT_EQ(status("Origin: https://app.example\r\nX-Forwarded-Host: app.example:443, t\r\n"),
              "HTTP/1.1 101 Switching Protocols");
    EXPECT_EQ(status("Origin: https://app.example\r\n"
                     "Forwarded: for=1.2.3.4;proto=https;host=\"app.example\"\r\n"),
              "HTTP/1.1 101 Switching Protocols");
    EXPECT_EQ(status("Origin: https://evil.example\r\nX-Forwarded-Host: app.example\r\n"),
              "HTTP/1.1 403 Forbidden");
    EXPECT_EQ(status("Origin: https://app.example\r\nX-Forwarded-Host: x, app.example\r\n"),
              "HTTP/1.1 403 Forbidden");
}

// A page of the same host under the other scheme is another origin: when the scheme the
// browser used is known (a TLS listener, or a proxy's X-Forwarded-Proto or Forwarded proto=),
// the Origin's must be the same.
TEST(HttpWebSocket, APageOfTheSameHostUnderTheOtherSchemeIsAnotherOrigin) {
    WsServer s;
    auto status = [&](std::string_view fields) {
        WsClient c(s.port);
        c.send(handshake("/proto", fields));
        const std::string h = c.head();
        return h.substr(0, h.find("\r\n"));
    };
    const char* ok = "HTTP/1.1 101 Switching Protocols";
    const char* refused = "HTTP/1.1 403 Forbidden";
    EXPECT_EQ(status("Origin: https://t\r\nX-Forwarded-Proto: https\r\n"), ok);
    EXPECT_EQ(status("Origin: http://t\r\nX-Forwarded-Proto: https\r\n"), refused);
    EXPECT_EQ(status("Origin: http://t\r\nX-Forwarded-Proto: http\r\n"), ok);
    EXPECT_EQ(status("Origin: https://t\r\nX-Forwarded-Proto: HTTP, https\r\n"), refused);
    EXPECT_EQ(status("Origin: http://app.example\r\n"
                     "Forwarded: for=1.2.3.4;proto=https;host=\"app.example\"\r\n"),
              refused);
    // An X-Forwarded-Proto that names no scheme leaves Forwarded's proto= to say.
    EXPECT_EQ(status("Origin: http://t\r\nX-Forwarded-Proto: wss\r\n"
                     "Forwarded: proto=https\r\n"),
              refused);
    // Unknown (a plain listener, no proxy fields): either scheme, as before.
    EXPECT_EQ(status("Origin: http://t\r\n"), ok);
    EXPECT_EQ(status("Origin: https://t\r\n"), ok);
}

TEST(HttpWebSocket, AllowedOriginsAreListedOnTheServer) {
    ServerOptions o;
    o.websocket_allowed_origins = {"https://app.example", "null", "http://b.example:80"};
    WsServer s(o);
    // The scheme's default port, written or not, is the same origin.
    for (const char* ok : {"https://APP.example", "null", "http://t", "", "https://app.example:443",
                           "http://b.example"})
        EXPECT_EQ(status_for_origin(s.port, "/proto", ok), "HTTP/1.1 101 Switching Protocols")
            << ok;
    for (const char* other : {"http://app.example", "https://app.example:8443", "https://evil"})
        EXPECT_EQ(status_for_origin(s.port, "/proto", other), "HTTP/1.1 403 Forbidden") << other;
}

// "scheme://*.domain[:port]" takes the domain's subdomains, with that scheme and port only.
TEST(HttpWebSocket, AllowedOriginsTakeSubdomainsByWildcard) {
    ServerOptions o;
    o.websocket_allowed_origins = {"https://*.example.com", "http://*.dev.test:8080"};
    WsServer s(o);
    for (const char* ok : {"https://app.example.com", "https://A.B.Example.COM",
                           "http://ui.dev.test:8080", "https://app.example.com:443"})
        EXPECT_EQ(status_for_origin(s.port, "/proto", ok), "HTTP/1.1 101 Switching Protocols")
            << ok;
    for (const char* other :
         {"https://example.com", "https://.example.com", "http://app.example.com",
          "https://app.example.com:8443", "https://evil-example.com",
          "https://app.example.com.evil", "https://x.example.com@evil", "http://ui.dev.test",
          "http://ui.dev.test:80801", "https://*.example.com"})
        EXPECT_EQ(status_for_origin(s.port, "/proto", other), "HTTP/1.1 403 Forbidden") << other;
}

// Frames a client sends with its handshake, before the 101 reached it, are the WebSocket's
// first: kept whatever their size against the header limit (they are one read, in memory).
TEST(HttpWebSocket, FramesSentWithTheHandshakeAreKept) {
    ServerOptions o;
    o.max_header_bytes = 1024;
    o.max_uri_bytes = 512;
    WsServer s(o);
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    const std::string big(3000, 'z');
    c.send(handshake("/echo") + client_frame(2, big) + client_frame(1, "after"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    auto f1 = c.frame();
    ASSERT_TRUE(f1);
    EXPECT_EQ(f1->opcode, 2);
    EXPECT_EQ(f1->payload, big);
    auto f2 = c.frame();
    ASSERT_TRUE(f2);
    EXPECT_EQ(f2->opcode, 1);
    EXPECT_EQ(f2->payload, "after");
}

// The idle timeout counts from the client's last message, not from the handler's last call of
// recv(): a handler that waits in short slices still closes an idle client.
TEST(HttpWebSocket, IdleTimeoutCountsFromTheLastMessage) {
    ServerOptions o;
    o.websocket_idle_timeout = 400ms;
    o.websocket_ping_interval = std::chrono::nanoseconds(0);
    WsServer s(o);
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/slices"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    const auto t0 = std::chrono::steady_clock::now();
    auto f = c.frame(3s);
    ASSERT_TRUE(f) << "no close within 3 s";
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->code(), ws_close::going_away);
    EXPECT_EQ(f->payload.substr(2), "idle timeout");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

// A route's timeout ends recv() as its own deadline would: before, every read failed at once
// past it and recv() looped, holding the hub; no close frame went out either.
TEST(HttpWebSocket, ARouteTimeoutEndsRecvAndTheWebSocketCloses) {
    WsServer s;  // one hub
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/timed"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(500ms);
    // The hub still serves.
    weft::http::testing::RawClient other(s.port);
    ASSERT_TRUE(other.send("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto rs = other.read_responses(1, false, 2s);
    ASSERT_EQ(rs.size(), 1u) << "the hub did not answer while the WebSocket's deadline passed";
    EXPECT_EQ(rs[0].status, 200);
    auto f = c.frame(3s);
    ASSERT_TRUE(f) << "no close frame";
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->code(), ws_close::normal);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

// close() from another fiber while the handler waits in recv(): the frame goes out, recv()
// takes the client's answer and ends with Errc::closed.
TEST(HttpWebSocket, ACloseFromAnotherFiberEndsTheHandlersRecv) {
    WsServer s;
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/close-aside"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    auto f = c.frame(3s);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->payload.substr(2), "aside");
    c.send(client_frame(8, f->payload.substr(0, 2)));  // the client answers
    for (int i = 0; i < 100 && s.recv_after_close.load() == -1; ++i)
        std::this_thread::sleep_for(20ms);
    EXPECT_EQ(s.recv_after_close.load(), static_cast<int>(weft::Errc::closed));
}

// The same with a client that never answers the close frame, and pings and the idle timeout
// off: the handler's recv() still ends (Errc::closed) once the close wait is over, and the
// message the client sent after our close frame is dropped, not returned.
TEST(HttpWebSocket, ACloseFromAnotherFiberEndsRecvWithoutTheClientsAnswer) {
    ServerOptions o;
    o.websocket_ping_interval = std::chrono::seconds(0);
    o.websocket_idle_timeout = std::chrono::seconds(0);
    WsServer s(o);
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    // The closing fiber's deadline (50 ms) does not cut the client's two seconds short.
    c.send(handshake("/close-aside?deadline_ms=50"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    auto f = c.frame(3s);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 8);
    const auto closed_at = std::chrono::steady_clock::now();
    c.send(client_frame(1, "after your close"));
    for (int i = 0; i < 300 && s.recv_after_close.load() == -1; ++i)
        std::this_thread::sleep_for(20ms);
    const auto waited = std::chrono::steady_clock::now() - closed_at;
    EXPECT_EQ(s.recv_after_close.load(), static_cast<int>(weft::Errc::closed));
    EXPECT_GT(waited, 1s);  // the close wait (two seconds) was given to the client
    // The fiber that closed did not wait for it (one fiber may close many WebSockets).
    EXPECT_GE(s.close_took_ms.load(), 0);
    EXPECT_LT(s.close_took_ms.load(), 500);
}

// A message over the size limit is refused from its frame header while the client still
// sends its payload: the server lingers, so that the client reads the 1009 instead of a reset.
TEST(HttpWebSocket, ATooLargeMessageGetsItsCloseFrameNotAReset) {
    ServerOptions o;
    o.websocket_max_message_bytes = 64 * 1024;
    WsServer s(o);
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/echo"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    const std::string big = client_frame(2, std::string(4u << 20, 'z'));
    // A part of it, then a pause in which the server refuses it and closes; then the rest. The
    // part is within what the server's lingering close reads (1 MiB): a larger one could meet
    // the close (a reset) before it was all sent, on a machine slow to run the client.
    constexpr std::size_t kPart = 256 * 1024;
    ASSERT_TRUE(c.send(std::string_view(big).substr(0, kPart)));
    std::this_thread::sleep_for(200ms);
    (void)c.send(std::string_view(big).substr(kPart));
    auto f = c.frame(3s);
    ASSERT_TRUE(f) << "no close frame (reset?)";
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->code(), ws_close::message_too_big);
}

// A route's own limit replaces the server's, above it as below it.
TEST(HttpWebSocket, ARoutesMessageLimitReplacesTheServers) {
    ServerOptions o;
    o.websocket_max_message_bytes = 64 * 1024;
    WsServer s(o);
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/echo-big"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    ASSERT_TRUE(c.send(client_frame(2, std::string(100 * 1024, 'r'))));
    auto echo = c.frame(3s);
    ASSERT_TRUE(echo);
    EXPECT_EQ(echo->opcode, 2);
    EXPECT_EQ(echo->payload.size(), 100u * 1024);
    (void)c.send(client_frame(2, std::string(128 * 1024 + 1, 'r')));
    auto f = c.frame(3s);
    ASSERT_TRUE(f) << "no close frame";
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->code(), ws_close::message_too_big);
}

// Messages being received take from the server's budget of buffered input (the one request
// bodies take from): beyond it the WebSocket closes with 1013 ("try again later"), and what it
// held is given back for others.
TEST(HttpWebSocket, MessagesBeingReceivedAreWithinTheServersInputBudget) {
    ServerOptions o;
    o.max_buffered_body_bytes = 64 * 1024;
    o.websocket_max_message_bytes = 1024 * 1024;
    WsServer s(o);
    {
        WsClient c(s.port);
        ASSERT_TRUE(c.ok());
        c.send(handshake("/echo"));
        ASSERT_NE(c.head().find("101"), std::string::npos);
        ASSERT_TRUE(c.send(client_frame(2, std::string(1000, 's'))));
        auto echo = c.frame(3s);
        ASSERT_TRUE(echo);
        EXPECT_EQ(echo->payload.size(), 1000u);
        (void)c.send(client_frame(2, std::string(256 * 1024, 'b')));
        auto f = c.frame(3s);
        ASSERT_TRUE(f) << "no close frame";
        EXPECT_EQ(f->opcode, 8);
        EXPECT_EQ(f->code(), ws_close::try_again_later);
    }
    // What the closed WebSocket held is back: a message within the budget goes through.
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/echo"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    ASSERT_TRUE(c.send(client_frame(2, std::string(32 * 1024, 'k'))));
    auto echo = c.frame(3s);
    ASSERT_TRUE(echo);
    EXPECT_EQ(echo->payload, std::string(32 * 1024, 'k'));
}

// RFC 6455 8.1: a text message is UTF-8; a client fails the connection on one that is not.
TEST(HttpWebSocket, TextThatIsNotUtf8IsNotSent) {
    WsServer s;
    WsClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(handshake("/bad-text"));
    ASSERT_NE(c.head().find("101"), std::string::npos);
    auto f = c.frame(3s);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 1);
    EXPECT_EQ(f->payload,
              "refused: " + std::to_string(static_cast<int>(weft::Errc::invalid_argument)));
}
