// WebSocketCore: one WebSocket's state over a connection's Transport, behind the public
// WebSocket (websocket.hpp). The session makes it after answering the opening handshake, runs
// the route's handler with it, and closes it when the handler returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "body_budget.hpp"
#include "session.hpp"
#include "websocket_frame.hpp"
#include "weft/core/mutex.hpp"
#include "weft/http/websocket.hpp"

namespace weft::http::detail {

struct WebSocketSettings {
    std::size_t max_message = 0;
    std::chrono::nanoseconds ping_interval{0};
    std::chrono::nanoseconds idle_timeout{0};
    /// What all connections may hold of received input at once (the server's request-body
    /// budget): a message being received takes from it. Null: no limit.
    BodyBudget* budget = nullptr;
    /// The hub's metrics, which count each message as it goes (weft_websocket_messages_total).
    /// Null: not counted there.
    HubRequestMetrics* metrics = nullptr;
};

class WebSocketCore {
  public:
    ~WebSocketCore();
    /// `early`: bytes the client sent after its handshake, before our answer reached it.
    WebSocketCore(Transport& transport, const WebSocketSettings& settings, std::string subprotocol,
                  std::string_view early);

    Result<WebSocket::Message> recv(Deadline deadline);
    Result<void> send(WsOpcode op, std::string_view payload);
    void close(std::uint16_t code, std::string_view reason);
    /// close() for the handler: a code a close frame may not carry, or a reason that is not
    /// UTF-8, throws std::invalid_argument; ws_close::no_status sends a close frame without one.
    void close_checked(std::uint16_t code, std::string_view reason);

    /// The server drains: the connection's read side is shut down next, and recv() then ends
    /// the WebSocket with 1001 instead of an abnormal close.
    void going_away() noexcept { going_away_ = true; }

    bool is_open() const noexcept { return state_ == State::open; }
    /// The client's close frame came: the closing handshake is complete, nothing more follows.
    bool peer_closed() const noexcept { return peer_closed_; }
    std::uint16_t close_code() const noexcept { return close_code_; }
    const std::string& close_reason() const noexcept { return close_reason_; }
    std::string_view subprotocol() const noexcept { return subprotocol_; }
    std::uint64_t messages_in() const noexcept { return messages_in_; }
    std::uint64_t messages_out() const noexcept { return messages_out_; }

  private:
    enum class State : std::uint8_t { open, closing, closed };
    /// Parses what is buffered; true with `event` set when it completes one worth returning.
    bool parse_one(WsEvent& event);
    /// Receives more bytes until `until`; Errc::eof at the end of the stream.
    Result<void> fill(Deadline until);
    void closed(std::uint16_t code, std::string reason) noexcept;
    /// Brings what this WebSocket holds of received input (bytes not parsed yet, fragments
    /// joined so far) to the budget: false when it would go beyond it.
    bool charge() noexcept;

    Transport& transport_;
    WebSocketSettings settings_;
    WsParser parser_;
    std::string subprotocol_;
    std::string in_;
    std::size_t in_pos_ = 0;
    Mutex send_mu_;
    State state_ = State::open;
    std::uint16_t close_code_ = 0;
    std::string close_reason_;
    Clock::time_point heard_at_;     // the last bytes from the client
    Clock::time_point message_at_;   // the last message from it (the idle timeout's start)
    Clock::time_point pinged_at_{};  // our unanswered ping, if any
    bool ping_out_ = false;
    bool going_away_ = false;
    bool close_sent_ = false;  // nothing follows our close frame (RFC 6455 5.5.1)
    bool peer_closed_ = false;
    // A fiber waits for the client's bytes (recv(), or close() for the client's close frame):
    // a close() from another fiber meanwhile only sends its frame (and sees that the wait
    // ends), and the reader takes the answer (two fibers may not read one connection).
    bool reading_ = false;
    std::size_t charged_ = 0;      // taken from settings_.budget
    Deadline close_until_;         // closing: how long the client's close frame is waited for
    std::shared_ptr<bool> alive_;  // false once this is gone (for a close's timer fiber)
    bool close_timer_ = false;     // that fiber was started
    std::uint64_t messages_in_ = 0;
    std::uint64_t messages_out_ = 0;
};

}  // namespace weft::http::detail
