// RFC 6455 framing, without I/O: a parser that takes bytes from a client (which must mask) and
// yields whole messages (fragments joined, text checked as UTF-8 as it arrives) and control
// frames, or the close code a violation calls for; and the encoder of server frames (unmasked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weft::http::detail {

enum class WsOpcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

/// What the parser found.
struct WsEvent {
    enum class Kind : std::uint8_t {
        need_more,  ///< give it more bytes
        message,    ///< a whole text or binary message in `payload`
        ping,       ///< answer with a pong carrying `payload`
        pong,
        close,  ///< the client's close frame: `code` (1005 when it carried none), `reason`
        error,  ///< a violation: close with `code` (1002, 1007, 1009) and `reason`
    };
    Kind kind = Kind::need_more;
    bool text = false;
    std::string payload;  ///< message data, ping/pong data, close reason
    std::uint16_t code = 0;
};

class WsParser {
  public:
    explicit WsParser(std::size_t max_message) noexcept : max_message_(max_message) {}
    /// Consumes bytes from the front of `in` (how many in `used`) and returns the event they
    /// complete. need_more with `used` > 0 means a fragment was taken in: call again with the
    /// rest; need_more with `used` == 0 means the next frame is not all there yet.
    WsEvent next(std::string_view in, std::size_t& used);
    /// The fragments of a message joined so far.
    std::size_t buffered() const noexcept { return message_.size(); }

  private:
    WsEvent fail(std::uint16_t code, std::string reason);

    std::size_t max_message_;
    std::string message_;  ///< fragments joined so far
    bool in_message_ = false;
    bool message_text_ = false;
    std::size_t utf8_checked_ = 0;  ///< bytes of message_ known to be valid UTF-8 (a prefix)
    bool failed_ = false;
};

/// A server frame (FIN set, unmasked) with `payload`.
void ws_encode(std::string& out, WsOpcode op, std::string_view payload);
/// Only the header of such a frame, for a payload of `n` bytes sent separately.
void ws_encode_header(std::string& out, WsOpcode op, std::size_t n);
/// Whether a close frame may carry `code` (RFC 6455 7.4, and the codes IANA registered since).
bool ws_close_code_valid(std::uint16_t code) noexcept;
/// A close frame's payload: the code, big-endian, then the reason (cut to fit 123 bytes).
std::string ws_close_payload(std::uint16_t code, std::string_view reason);
/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string ws_accept_key(std::string_view client_key);

}  // namespace weft::http::detail
