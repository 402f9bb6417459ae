// RFC 6455 frames: parsing a client's (masked) frames into events, encoding the server's.
#include "websocket_frame.hpp"

#include <array>

#include "tls.hpp"
#include "weft/core/text.hpp"

namespace weft::http::detail {

namespace {

constexpr std::uint16_t kProtocolError = 1002;
constexpr std::uint16_t kInvalidPayload = 1007;
constexpr std::uint16_t kTooBig = 1009;

// The length of the longest prefix of `s` that ends on a whole UTF-8 sequence (a sequence cut
// by the end of `s` is left out, to be checked once its rest arrives).
std::size_t complete_prefix(std::string_view s) noexcept {
    std::size_t n = s.size();
    for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
        const auto c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) != 0x80) {  // a lead byte (or ASCII)
            std::size_t need = c < 0x80           ? 1
                               : (c >> 5) == 0x6  ? 2
                               : (c >> 4) == 0xE  ? 3
                               : (c >> 3) == 0x1E ? 4
                                                  : 1;
            return back < need ? n - back : n;
        }
    }
    return n;
}

}  // namespace

bool ws_close_code_valid(std::uint16_t c) noexcept {
    // Registered codes (1012-1014 came after RFC 6455) and those for libraries and applications;
    // 1004 is reserved, and 1005, 1006 and 1015 only ever describe a close, never travel in one.
    if (c >= 3000 && c <= 4999) return true;
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014);
}

WsEvent WsParser::fail(std::uint16_t code, std::string reason) {
    failed_ = true;
    WsEvent e;
    e.kind = WsEvent::Kind::error;
    e.code = code;
    e.payload = std::move(reason);
    return e;
}

WsEvent WsParser::next(std::string_view in, std::size_t& used) {
    used = 0;
    if (failed_) return fail(kProtocolError, "the connection already failed");
    if (in.size() < 2) return {};
    const auto b0 = static_cast<unsigned char>(in[0]);
    const auto b1 = static_cast<unsigned char>(in[1]);
    const bool fin = b0 & 0x80;
    const auto op = static_cast<WsOpcode>(b0 & 0x0F);
    if (b0 & 0x70) return fail(kProtocolError, "reserved bits set (no extension was agreed)");
    if (!(b1 & 0x80)) return fail(kProtocolError, "a client frame must be masked");
    const bool control = (b0 & 0x08) != 0;
    switch (op) {
        case WsOpcode::continuation:
        case WsOpcode::text:
        case WsOpcode::binary:
        case WsOpcode::close:
        case WsOpcode::ping:
        case WsOpcode::pong:
            break;
        default:
            return fail(kProtocolError, "unknown opcode " + std::to_string(b0 & 0x0F));
    }
    std::uint64_t len = b1 & 0x7F;
    std::size_t pos = 2;
    if (len == 126) {
        if (in.size() < 4) return {};
        len = (std::uint64_t(static_cast<unsigned char>(in[2])) << 8) |
              static_cast<unsigned char>(in[3]);
        pos = 4;
    } else if (len == 127) {
        if (in.size() < 10) return {};
        len = 0;
        for (int i = 0; i < 8; ++i)
            len = (len << 8) | static_cast<unsigned char>(in[2 + i]);
        if (len >> 63) return fail(kProtocolError, "a 64-bit length with its top bit set");
        pos = 10;
    }
    if (control) {
        if (!fin) return fail(kProtocolError, "a fragmented control frame");
        if (len > 125) return fail(kProtocolError, "a control frame over 125 bytes");
    } else if ((in_message_ ? message_.size() : 0) + len > max_message_) {
        return fail(kTooBig, "a message over " + std::to_string(max_message_) + " bytes");
    }
    if (in.size() < pos + 4 + len) return {};
    const char* key = in.data() + pos;
    std::string payload(in.data() + pos + 4, static_cast<std::size_t>(len));
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>(payload[i] ^ key[i & 3]);
    used = pos + 4 + static_cast<std::size_t>(len);

    WsEvent e;
    switch (op) {
        case WsOpcode::ping:
            e.kind = WsEvent::Kind::ping;
            e.payload = std::move(payload);
            return e;
        case WsOpcode::pong:
            e.kind = WsEvent::Kind::pong;
            e.payload = std::move(payload);
            return e;
        case WsOpcode::close: {
            e.kind = WsEvent::Kind::close;
            if (payload.empty()) {
                e.code = 1005;  // no status code present
                return e;
            }
            if (payload.size() == 1) return fail(kProtocolError, "a close frame of one byte");
            e.code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                                static_cast<unsigned char>(payload[1]));
            if (!ws_close_code_valid(e.code))
                return fail(kProtocolError, "invalid close code " + std::to_string(e.code));
            e.payload = payload.substr(2);
            if (!valid_utf8(e.payload))
                return fail(kInvalidPayload, "a close reason that is not UTF-8");
            return e;
        }
        case WsOpcode::continuation:
            if (!in_message_) return fail(kProtocolError, "a continuation with no message begun");
            break;
        default:  // text, binary
            if (in_message_)
                return fail(kProtocolError, "a new message before the last one finished");
            in_message_ = true;
            message_text_ = op == WsOpcode::text;
            message_.clear();
            utf8_checked_ = 0;
            break;
    }
    message_ += payload;
    if (message_text_) {
        // Check what is complete now, so that a bad text fails before it is all in.
        const std::size_t upto = fin ? message_.size() : complete_prefix(message_);
        if (!valid_utf8(std::string_view(message_).substr(utf8_checked_, upto - utf8_checked_)))
            return fail(kInvalidPayload, "a text message that is not UTF-8");
        utf8_checked_ = upto;
    }
    if (!fin) return {};  // more fragments to come; the caller asks again with the rest
    in_message_ = false;
    e.kind = WsEvent::Kind::message;
    e.text = message_text_;
    e.payload = std::move(message_);
    message_.clear();
    return e;
}

void ws_encode(std::string& out, WsOpcode op, std::string_view payload) {
    ws_encode_header(out, op, payload.size());
    out.append(payload);
}

void ws_encode_header(std::string& out, WsOpcode op, std::size_t n) {
    out += static_cast<char>(0x80 | static_cast<unsigned>(op));
    if (n < 126) {
        out += static_cast<char>(n);
    } else if (n <= 0xFFFF) {
        out += static_cast<char>(126);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFF);
    } else {
        out += static_cast<char>(127);
        for (int i = 7; i >= 0; --i)
            out += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF);
    }
}

std::string ws_close_payload(std::uint16_t code, std::string_view reason) {
    std::string p;
    p += static_cast<char>(code >> 8);
    p += static_cast<char>(code & 0xFF);
    // At most 123 bytes of reason, cut on a UTF-8 boundary.
    if (reason.size() > 123) reason = reason.substr(0, complete_prefix(reason.substr(0, 123)));
    p.append(reason);
    return p;
}

std::string ws_accept_key(std::string_view client_key) {
    static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto digest =
        sha1(std::string(client_key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");  // RFC 6455 4.2.2
    std::string out;
    for (std::size_t i = 0; i < digest.size(); i += 3) {
        const unsigned v = (unsigned(digest[i]) << 16) |
                           (i + 1 < digest.size() ? unsigned(digest[i + 1]) << 8 : 0u) |
                           (i + 2 < digest.size() ? unsigned(digest[i + 2]) : 0u);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += i + 1 < digest.size() ? kB64[(v >> 6) & 63] : '=';
        out += i + 2 < digest.size() ? kB64[v & 63] : '=';
    }
    return out;
}

}  // namespace weft::http::detail
