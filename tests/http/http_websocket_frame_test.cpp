// RFC 6455 framing without I/O: a client's masked frames in, events out; every violation the
// server must answer with a close code; the server's frames; the handshake's accept key.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "websocket_frame.hpp"

using weft::http::detail::WsEvent;
using weft::http::detail::WsOpcode;
using weft::http::detail::WsParser;

namespace {

// A client frame: FIN, opcode, masked with a fixed key.
std::string frame(std::uint8_t op, std::string_view payload, bool fin = true, bool mask = true,
                  std::uint8_t extra_bits = 0) {
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | extra_bits | op);
    const std::size_t n = payload.size();
    const char m = mask ? static_cast<char>(0x80) : 0;
    if (n < 126) {
        f += static_cast<char>(m | static_cast<char>(n));
    } else if (n <= 0xFFFF) {
        f += static_cast<char>(m | 126);
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n & 0xFF);
    } else {
        f += static_cast<char>(m | 127);
        for (int i = 7; i >= 0; --i)
            f += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF);
    }
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (mask) f.append(key, 4);
    for (std::size_t i = 0; i < n; ++i)
        f += mask ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
    return f;
}

// Every event the bytes produce, feeding them in pieces of `step` bytes.
std::vector<WsEvent> feed(WsParser& p, const std::string& bytes, std::size_t step = 1 << 30) {
    std::vector<WsEvent> out;
    std::string buf;
    for (std::size_t at = 0; at < bytes.size(); at += step) {
        buf += bytes.substr(at, step);
        for (;;) {
            std::size_t used = 0;
            WsEvent e = p.next(buf, used);
            buf.erase(0, used);
            if (e.kind == WsEvent::Kind::need_more) {
                if (used == 0) break;
                continue;
            }
            out.push_back(std::move(e));
            if (out.back().kind == WsEvent::Kind::error) return out;
        }
    }
    return out;
}

WsEvent only_error(const std::string& bytes, std::size_t max = 1 << 20) {
    WsParser p(max);
    auto ev = feed(p, bytes);
    if (ev.empty() || ev.back().kind != WsEvent::Kind::error) {
        ADD_FAILURE() << "no error";
        return {};
    }
    return ev.back();
}

}  // namespace

TEST(WebSocketFrame, MessagesWholeFragmentedAndInterleavedWithPings) {
    WsParser p(1 << 20);
    const std::string bytes = frame(0x1, "hello") + frame(0x2, std::string("\0\1\2", 3)) +
                              frame(0x1, "frag", false) + frame(0x9, "are you there") +
                              frame(0x0, "men", false) + frame(0x0, "ted") + frame(0xA, "pong") +
                              frame(0x8,
                                    "\x03\xe8"
                                    "bye");
    for (std::size_t step : {std::size_t(1), std::size_t(3), std::size_t(1000)}) {
        WsParser q(1 << 20);
        auto ev = feed(q, bytes, step);
        ASSERT_EQ(ev.size(), 6u) << "step " << step;
        EXPECT_EQ(ev[0].kind, WsEvent::Kind::message);
        EXPECT_TRUE(ev[0].text);
        EXPECT_EQ(ev[0].payload, "hello");
        EXPECT_FALSE(ev[1].text);
        EXPECT_EQ(ev[1].payload, std::string("\0\1\2", 3));
        EXPECT_EQ(ev[2].kind, WsEvent::Kind::ping);
        EXPECT_EQ(ev[2].payload, "are you there");
        EXPECT_EQ(ev[3].kind, WsEvent::Kind::message);
        EXPECT_EQ(ev[3].payload, "fragmented");
        EXPECT_EQ(ev[4].kind, WsEvent::Kind::pong);
        EXPECT_EQ(ev[5].kind, WsEvent::Kind::close);
        EXPECT_EQ(ev[5].code, 1000);
        EXPECT_EQ(ev[5].payload, "bye");
    }
    // 16- and 64-bit lengths.
    const std::string mid(300, 'm'), big(70000, 'b');
    auto ev = feed(p, frame(0x2, mid) + frame(0x2, big));
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].payload, mid);
    EXPECT_EQ(ev[1].payload, big);
    // A close without a code reads as 1005.
    WsParser c(100);
    ev = feed(c, frame(0x8, ""));
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].code, 1005);
}

TEST(WebSocketFrame, EveryViolationHasItsCloseCode) {
    EXPECT_EQ(only_error(frame(0x1, "x", true, false)).code, 1002) << "unmasked";
    EXPECT_EQ(only_error(frame(0x3, "x")).code, 1002) << "reserved opcode";
    EXPECT_EQ(only_error(frame(0xB, "x")).code, 1002) << "reserved control opcode";
    EXPECT_EQ(only_error(frame(0x1, "x", true, true, 0x40)).code, 1002) << "RSV1";
    EXPECT_EQ(only_error(frame(0x9, std::string(126, 'p'))).code, 1002) << "control too long";
    EXPECT_EQ(only_error(frame(0x9, "p", false)).code, 1002) << "fragmented control";
    EXPECT_EQ(only_error(frame(0x0, "x")).code, 1002) << "continuation first";
    EXPECT_EQ(only_error(frame(0x1, "a", false) + frame(0x1, "b")).code, 1002)
        << "a new message inside one";
    EXPECT_EQ(only_error(frame(0x2, std::string(2000, 'x')), 1000).code, 1009) << "oversize";
    EXPECT_EQ(
        only_error(frame(0x1, "a", false, true) + frame(0x0, std::string(1000, 'x')), 1000).code,
        1009)
        << "oversize across fragments";
    EXPECT_EQ(only_error(frame(0x1, "\xff\xfe")).code, 1007) << "invalid UTF-8";
    EXPECT_EQ(only_error(frame(0x8, "\x03")).code, 1002) << "close of one byte";
    EXPECT_EQ(only_error(frame(0x8, "\x03\xed")).code, 1002) << "close code 1005 sent";
    EXPECT_EQ(only_error(frame(0x8, "\x03\xe8\xff")).code, 1007) << "close reason not UTF-8";
    // Invalid UTF-8 is found in the first fragment, before the message is complete.
    WsParser p(1 << 20);
    auto ev = feed(p, frame(0x1, "ok \xc3\x28 bad", false));
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].code, 1007);
    // A sequence split between fragments is fine.
    WsParser q(1 << 20);
    ev = feed(q, frame(0x1, "caf\xc3", false) + frame(0x0, "\xa9"));
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, WsEvent::Kind::message);
    EXPECT_EQ(ev[0].payload, "caf\xc3\xa9");
}

TEST(WebSocketFrame, ServerFramesAndTheAcceptKey) {
    std::string out;
    weft::http::detail::ws_encode(out, WsOpcode::text, "hi");
    EXPECT_EQ(out, std::string("\x81\x02hi", 4));
    out.clear();
    weft::http::detail::ws_encode(out, WsOpcode::binary, std::string(300, 'x'));
    EXPECT_EQ(out.substr(0, 4), std::string("\x82\x7e\x01\x2c", 4));
    EXPECT_EQ(out.size(), 304u);
    EXPECT_EQ(weft::http::detail::ws_close_payload(1001, "gone"), std::string("\x03\xe9gone", 6));
    EXPECT_EQ(weft::http::detail::ws_close_payload(1000, std::string(200, 'r')).size(), 125u);
    // RFC 6455 section 1.3's example.
    EXPECT_EQ(weft::http::detail::ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
              "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
