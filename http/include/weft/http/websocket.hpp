// WebSocket (RFC 6455) for handlers: a route registered with Router::websocket() answers the
// opening handshake itself, then hands its handler a WebSocket on the connection's own fiber, so
// the handler is a plain loop:
//
//     router.websocket("/ws/echo", [](weft::http::Request&, weft::http::WebSocket& ws) {
//         while (auto m = ws.recv())
//             if (!(m->text ? ws.send_text(m->data) : ws.send_binary(m->data))) break;
//     });
//
// recv() returns whole messages (fragments joined; text checked as UTF-8), answers pings, and
// keeps the connection alive: while it waits, a ping goes out after `websocket_ping_interval`
// of silence, and a client that answers nothing within another interval, or sends no message
// for `websocket_idle_timeout` (pings and pongs keep the connection, not the WebSocket, alive),
// is closed. Frames that break the protocol (unmasked, a reserved
// opcode, a control frame over 125 bytes or fragmented, a message over the size limit, invalid
// UTF-8) are answered with the close code RFC 6455 names (1002, 1009, 1007) and end recv().
// When the handler returns, the server closes the WebSocket (1000, or 1011 if it threw).
//
// Threads: a WebSocket belongs to its connection's hub. Fibers of that hub may send, and close,
// while the handler's fiber waits in recv() (sends are serialized; only the handler's fiber
// receives); other threads must not touch it. It ends with the handler: fibers that use it
// must be done (joined) before the handler returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"
#include "weft/http/request.hpp"

namespace weft::http {

namespace detail {
class WebSocketCore;
}

/// Close codes (RFC 6455 §7.4.1).
namespace ws_close {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;  ///< the close frame carried no code
inline constexpr std::uint16_t abnormal = 1006;   ///< the connection ended without a close
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t service_restart = 1012;
inline constexpr std::uint16_t try_again_later = 1013;
inline constexpr std::uint16_t bad_gateway = 1014;
}  // namespace ws_close

/// What a WebSocket route may set for itself.
struct WebSocketOptions {
    /// Subprotocols this route speaks, preferred first: the first one the client also offers
    /// (Sec-WebSocket-Protocol) is chosen; with none in common, none is (the client decides).
    std::vector<std::string> subprotocols;
    /// The largest message recv() accepts (1009 beyond), in place of the server's
    /// websocket_max_message_bytes (larger or smaller); 0: the server's.
    std::size_t max_message_bytes = 0;
    /// The origins whose pages may open this route's WebSocket besides the server's own (see
    /// ServerOptions::websocket_allowed_origins, which it replaces when not empty).
    std::vector<std::string> allowed_origins;
};

class WebSocket {
  public:
    struct Message {
        bool text = false;
        std::string data;
    };

    /// The next whole message. Errors: Errc::closed once the WebSocket is closed (by the
    /// client, by a protocol violation, by close(), or by a keep-alive timeout; close_code()
    /// says which), Errc::eof when the connection ended without a close frame, Errc::timed_out
    /// at `deadline` or at the fiber's own deadline (a route's timeout; the WebSocket stays
    /// open), Errc::cancelled.
    [[nodiscard]] Result<Message> recv(Deadline deadline = {});
    /// Sends one message. Errc::closed after a close; a client that reads nothing for the
    /// server's send_timeout ends the connection. send_text() refuses text that is not UTF-8
    /// (Errc::invalid_argument, nothing sent): a client would fail the connection (1007).
    [[nodiscard]] Result<void> send_text(std::string_view text);
    [[nodiscard]] Result<void> send_binary(std::string_view data);
    /// Sends a ping (the client's pong is taken by recv()).
    [[nodiscard]] Result<void> ping(std::string_view payload = {});
    /// Starts the closing handshake with `code` and `reason` (UTF-8, cut to 123 bytes), and
    /// waits up to two seconds for the client's close frame, dropping messages that come
    /// before it. Called by another fiber while the handler waits in recv(), it sends the frame
    /// and returns; recv() takes the answer, dropping messages before it, and returns
    /// Errc::closed (within the same two seconds: past them the connection's read side is
    /// shut). Idempotent; once it has begun, sends from other fibers fail with Errc::closed.
    /// ws_close::no_status sends a close frame without a code; while the WebSocket is open, a code
    /// no close frame may carry (1004, 1006, 1015, below 1000, 1016 to 2999, 5000 and above) or a
    /// reason that is not UTF-8 throws std::invalid_argument.
    void close(std::uint16_t code = ws_close::normal, std::string_view reason = {});

    bool is_open() const noexcept;
    /// How it closed: the client's code (ws_close::no_status if its frame had none), ours,
    /// or ws_close::abnormal; 0 while open.
    std::uint16_t close_code() const noexcept;
    const std::string& close_reason() const noexcept;
    /// The subprotocol chosen in the handshake ("" when none).
    std::string_view subprotocol() const noexcept;

    explicit WebSocket(detail::WebSocketCore& core) noexcept : core_(core) {}
    WebSocket(const WebSocket&) = delete;
    WebSocket& operator=(const WebSocket&) = delete;

  private:
    detail::WebSocketCore& core_;
};

/// A WebSocket route's handler: runs on the connection's fiber after the handshake.
using WebSocketHandler = std::function<void(Request&, WebSocket&)>;

}  // namespace weft::http
