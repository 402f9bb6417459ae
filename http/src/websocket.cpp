// WebSocket connections after the handshake: whole messages in, frames out, pings answered and
// sent, the closing handshake, keep-alive timeouts.
#include "websocket_core.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "metrics_table.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/text.hpp"

namespace weft::http::detail {

namespace {
// How long close() waits for the client's close frame.
constexpr auto kCloseWait = std::chrono::seconds(2);
// Whatever the handler's deadline: a send that makes no progress for this long ends the
// connection (a client that reads nothing).
constexpr auto kSendStall = std::chrono::seconds(30);
}  // namespace

WebSocketCore::WebSocketCore(Transport& transport, const WebSocketSettings& settings,
                             std::string subprotocol, std::string_view early)
    : transport_(transport),
      settings_(settings),
      parser_(settings.max_message),
      subprotocol_(std::move(subprotocol)),
      in_(early),
      heard_at_(Clock::now()),
      message_at_(heard_at_) {}

WebSocketCore::~WebSocketCore() {
    if (settings_.budget) settings_.budget->give_back(charged_);
    if (alive_) *alive_ = false;  // a close's timer fiber finds it gone
}

bool WebSocketCore::charge() noexcept {
    if (!settings_.budget) return true;
    const std::size_t held = (in_.size() - in_pos_) + parser_.buffered();
    if (held > charged_) {
        if (!settings_.budget->take(held - charged_)) return false;
    } else {
        settings_.budget->give_back(charged_ - held);
    }
    charged_ = held;
    return true;
}

void WebSocketCore::closed(std::uint16_t code, std::string reason) noexcept {
    state_ = State::closed;
    if (close_code_ == 0) {
        close_code_ = code;
        close_reason_ = std::move(reason);
    }
}

Result<void> WebSocketCore::send(WsOpcode op, std::string_view payload) {
    if (state_ != State::open && op != WsOpcode::close) return Errc::closed;
    std::string head;
    ws_encode_header(head, op, payload.size());
    // A message from another fiber of this hub waits for the one being written.
    MutexLock lock(send_mu_, Deadline(kSendStall));
    if (!lock.owns_lock()) return lock.result();
    // A close frame that went out while this send waited for the lock ends the sending.
    if (close_sent_) return Errc::closed;
    if (op == WsOpcode::close) close_sent_ = true;
    iovec v[2] = {{head.data(), head.size()}, {const_cast<char*>(payload.data()), payload.size()}};
    auto r = transport_.send(std::span<const iovec>(v, payload.empty() ? 1 : 2));
    if (!r) {
        closed(ws_close::abnormal, "the connection failed while sending");
        return r;
    }
    if (op == WsOpcode::text || op == WsOpcode::binary) {
        ++messages_out_;
        if (settings_.metrics) settings_.metrics->websocket_messages(0, 1);
    }
    return {};
}

bool WebSocketCore::parse_one(WsEvent& ev) {
    for (;;) {
        std::size_t used = 0;
        ev = parser_.next(std::string_view(in_).substr(in_pos_), used);
        in_pos_ += used;
        if (ev.kind != WsEvent::Kind::need_more) return true;
        if (used == 0) {
            // Keep only what is not parsed yet.
            in_.erase(0, in_pos_);
            in_pos_ = 0;
            // A large message's storage is not kept for an idle WebSocket.
            if (in_.empty() && in_.capacity() > 64 * 1024) std::string().swap(in_);
            return false;
        }
    }
}

Result<void> WebSocketCore::fill(Deadline until) {
    struct Reading {
        bool& flag;
        explicit Reading(bool& f) noexcept : flag(f) { flag = true; }
        ~Reading() { flag = false; }
    };
    auto n = [&] {
        Reading r(reading_);
        return transport_.recv_append(in_, until);
    }();
    if (!n) return n.error();
    if (*n == 0) return Errc::eof;
    heard_at_ = Clock::now();
    ping_out_ = false;  // any frame shows the client is alive
    return {};
}

Result<WebSocket::Message> WebSocketCore::recv(Deadline deadline) {
    if (state_ != State::open) return Errc::closed;
    // The fiber's own deadline (a route's timeout) ends the wait as the caller's does: every
    // read would fail at once past it, and the loop would spin.
    deadline = earliest(deadline, this_fiber::deadline());
    bool looked_again = false;
    for (;;) {
        WsEvent ev;
        while (parse_one(ev)) {
            // Our close frame is out (close() from another fiber): what comes before the
            // client's close frame is dropped, and nothing is answered.
            if (state_ == State::closing && ev.kind != WsEvent::Kind::close &&
                ev.kind != WsEvent::Kind::error)
                continue;
            switch (ev.kind) {
                case WsEvent::Kind::message:
                    ++messages_in_;
                    if (settings_.metrics) settings_.metrics->websocket_messages(1, 0);
                    message_at_ = Clock::now();
                    (void)charge();  // the message is the handler's now: less is held
                    return WebSocket::Message{ev.text, std::move(ev.payload)};
                case WsEvent::Kind::ping:
                    if (auto r = send(WsOpcode::pong, ev.payload); !r) return r.error();
                    break;
                case WsEvent::Kind::pong:
                    break;
                case WsEvent::Kind::close: {
                    peer_closed_ = true;
                    // Answer with the same code (none if it gave none), then it is over.
                    const std::string payload = ev.code == ws_close::no_status
                                                    ? std::string()
                                                    : ws_close_payload(ev.code, "");
                    if (state_ == State::open) (void)send(WsOpcode::close, payload);
                    closed(ev.code, std::move(ev.payload));
                    return Errc::closed;
                }
                case WsEvent::Kind::error:
                    (void)send(WsOpcode::close, ws_close_payload(ev.code, ev.payload));
                    closed(ev.code, std::move(ev.payload));
                    return Errc::closed;
                case WsEvent::Kind::need_more:
                    break;
            }
            if (state_ != State::open) return Errc::closed;
        }
        // Wait for more, waking for our own keep-alive duties.
        Deadline until = deadline;
        const auto& s = settings_;
        if (state_ == State::closing) {
            until = earliest(until, close_until_);
        } else {
            if (s.idle_timeout.count() > 0)
                until = earliest(until, Deadline(message_at_ + s.idle_timeout));
            if (s.ping_interval.count() > 0)
                until = earliest(until, Deadline(ping_out_ ? pinged_at_ + s.ping_interval
                                                           : heard_at_ + s.ping_interval));
        }
        auto r = fill(until);
        if (state_ == State::closing) {
            if (r) continue;
            if (r.error() == Errc::cancelled) return r.error();
            if (r.error() == Errc::timed_out && !close_until_.passed()) {
                if (deadline.passed()) return Errc::timed_out;
                continue;  // a keep-alive wake asked for before the close
            }
            // The client's close frame did not come within the close wait, or the stream
            // ended (close() shuts the read side at that wait's end): it is over.
            state_ = State::closed;
            return Errc::closed;
        }
        if (!r && r.error() == Errc::timed_out && !deadline.passed() && !looked_again) {
            // A keep-alive verdict is due (a ping unanswered, an idle client). A receive that
            // began past its deadline does not look at the socket: look once, briefly, so that
            // a pong or a message already there counts (a handler busy for a while between
            // receives).
            looked_again = true;
            r = fill(Deadline(std::chrono::milliseconds(1)));
        }
        if (r) {
            looked_again = false;
            if (!charge()) {
                // Every connection's input together is over the server's budget: this message
                // is not taken, and the client may try again later (1013).
                (void)send(WsOpcode::close, ws_close_payload(ws_close::try_again_later,
                                                             "server busy: too much input held"));
                closed(ws_close::try_again_later, "server busy: too much input held");
                return Errc::closed;
            }
            continue;
        }
        if (going_away_ && r.error() == Errc::eof) {
            // Our own shutdown of the read side (a drain): say goodbye properly.
            (void)send(WsOpcode::close,
                       ws_close_payload(ws_close::going_away, "server shutting down"));
            closed(ws_close::going_away, "server shutting down");
            return Errc::closed;
        }
        if (r.error() == Errc::eof || r.error() == Errc::connection_reset ||
            r.error() == Errc::closed) {
            closed(ws_close::abnormal, "the connection ended without a close frame");
            return r.error() == Errc::eof ? Errc::eof : r.error();
        }
        if (r.error() != Errc::timed_out) return r.error();  // cancelled: still open
        if (deadline.passed()) return Errc::timed_out;
        const auto t = Clock::now();
        if (s.idle_timeout.count() > 0 && t >= message_at_ + s.idle_timeout) {
            close(ws_close::going_away, "idle timeout");
            return Errc::closed;
        }
        if (s.ping_interval.count() > 0) {
            if (ping_out_ && t >= pinged_at_ + s.ping_interval) {
                // Nothing came back: the client or the path to it is gone.
                (void)send(WsOpcode::close,
                           ws_close_payload(ws_close::going_away, "no answer to a ping"));
                closed(ws_close::abnormal, "no answer to a ping");
                return Errc::closed;
            }
            if (!ping_out_ && t >= heard_at_ + s.ping_interval) {
                if (auto p = send(WsOpcode::ping, "weft"); !p) return p.error();
                ping_out_ = true;
                pinged_at_ = t;
            }
        }
    }
}

void WebSocketCore::close_checked(std::uint16_t code, std::string_view reason) {
    // Idempotent: once closed (`ws.close(ws.close_code())` after the client's abnormal end
    // included) there is no frame to check.
    if (state_ != State::open) return;
    if (code == ws_close::no_status) {
        if (!reason.empty())
            throw std::invalid_argument(
                "a WebSocket close without a status code (1005) cannot carry a reason");
    } else if (!ws_close_code_valid(code)) {
        throw std::invalid_argument("WebSocket close code " + std::to_string(code) +
                                    " cannot be sent (RFC 6455 7.4): use 1000-1003, 1007-1014 "
                                    "or 3000-4999");
    }
    if (!valid_utf8(reason))
        throw std::invalid_argument("a WebSocket close reason must be UTF-8 text");
    close(code, reason);
}

void WebSocketCore::close(std::uint16_t code, std::string_view reason) {
    if (state_ == State::open) {
        const std::string payload =
            code == ws_close::no_status ? std::string() : ws_close_payload(code, reason);
        if (!send(WsOpcode::close, payload)) {
            // Not sent (the connection failed, or another fiber's send held it too long): it
            // is over all the same, and sends fail from now on.
            closed(ws_close::abnormal, "the close frame could not be sent");
            return;
        }
        state_ = State::closing;
        close_code_ = code;
        close_reason_ = std::string(reason);
        close_until_ = Deadline(kCloseWait);
    }
    if (state_ != State::closing) return;
    if (reading_) {
        // The fiber in recv() takes the client's close frame (two fibers may not read one
        // connection), and this call returns at once (a fiber may close many). The reader's
        // wait began before the close, with a deadline of its own (none, with pings and the
        // idle timeout off): should it still wait when the close wait is over, a fiber of this
        // hub shuts the read side then, so that recv() ends.
        if (close_timer_) return;  // one timer for the WebSocket, however many close() calls
        close_timer_ = true;
        if (!alive_) alive_ = std::make_shared<bool>(true);
        try {
            weft::spawn("websocket close", [this, alive = alive_, until = close_until_] {
                // Its own deadline, not the closing fiber's (inherited: a route timeout would
                // end the close wait early).
                ScopedDeadline own(until, ScopedDeadline::Mode::replace);
                while (!until.passed())
                    if (!this_fiber::sleep_until(until)) break;  // cancelled: the hub stops
                if (*alive && state_ == State::closing && reading_) transport_.shutdown_read();
            }).detach();
        } catch (...) {
            transport_.shutdown_read();  // no fiber for it: the read ends now
        }
        return;
    }
    // Wait a little for the client's close frame, dropping what comes before it.
    const Deadline until = close_until_;
    for (;;) {
        WsEvent ev;
        while (parse_one(ev))
            if (ev.kind == WsEvent::Kind::close || ev.kind == WsEvent::Kind::error) {
                peer_closed_ = ev.kind == WsEvent::Kind::close;
                state_ = State::closed;
                return;
            }
        if (!fill(until)) break;
    }
    state_ = State::closed;
}

}  // namespace weft::http::detail

namespace weft::http {

Result<WebSocket::Message> WebSocket::recv(Deadline deadline) {
    return core_.recv(deadline);
}
Result<void> WebSocket::send_text(std::string_view text) {
    // A client fails the connection on a text message that is not UTF-8 (RFC 6455 8.1): the
    // handler hears of it instead, and may send it as binary.
    if (!valid_utf8(text)) return Errc::invalid_argument;
    return core_.send(detail::WsOpcode::text, text);
}
Result<void> WebSocket::send_binary(std::string_view data) {
    return core_.send(detail::WsOpcode::binary, data);
}
Result<void> WebSocket::ping(std::string_view payload) {
    if (payload.size() > 125) return Errc::invalid_argument;
    return core_.send(detail::WsOpcode::ping, payload);
}
void WebSocket::close(std::uint16_t code, std::string_view reason) {
    core_.close_checked(code, reason);
}
bool WebSocket::is_open() const noexcept {
    return core_.is_open();
}
std::uint16_t WebSocket::close_code() const noexcept {
    return core_.close_code();
}
const std::string& WebSocket::close_reason() const noexcept {
    return core_.close_reason();
}
std::string_view WebSocket::subprotocol() const noexcept {
    return core_.subprotocol();
}

}  // namespace weft::http
