// Connection and HubState: one server's presence on one hub. HubState owns the hub's listener,
// its accept fiber, its list of connections and a pool of sessions. A Connection is an accepted
// socket: while idle it is only a watch (no fiber, no buffer); when bytes arrive it borrows a
// fiber and a session, answers, and goes back to watching. At max_connections the hub makes room
// by closing what waits cheapest to close: idle connections, then slow request heads.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "serializer.hpp"
#include "session.hpp"
#include "tls.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/internal/recv_watch.hpp"
#include "weft/core/tcp.hpp"
#include "weft/core/wait_queue.hpp"
#include "weft/http/server.hpp"

namespace weft::http::detail {

class HubState;
class Connection;

/// Connections in the order they joined, through their qprev/qnext links; a connection is in
/// at most one queue.
class ConnectionQueue {
  public:
    void push_back(Connection* c, Clock::time_point at) noexcept;
    void erase(Connection* c) noexcept;
    Connection* front() const noexcept { return first_; }

  private:
    Connection* first_ = nullptr;
    Connection* last_ = nullptr;
};

/// A detached send in flight: its bytes, how many went out, and the fiber waiting for it to
/// end. The hub keeps a few for reuse; a connection holds one only while its send is in flight.
struct Tail final : internal::SendWatcher {
    Connection* conn = nullptr;
    ByteBuffer bytes;
    std::uint32_t sent = 0;
    WaitQueue waiters;
    void on_sent(Result<std::size_t> sent) noexcept override;
};

class Connection final : public internal::RecvWatcher, private Transport {
  public:
    Connection(HubState& hub, TcpStream stream, const SocketAddress& peer) noexcept;
    /// Waits (fiber-less) for the first request.
    void start() noexcept;
    void on_recv(Result<RecvBuffer> bytes) noexcept override;
    /// How the detached send of an answer ended (see send()).
    void tail_ended(Result<std::size_t> sent) noexcept;
    /// Drain: an idle connection stops waiting and closes; with `hard`, a busy one is
    /// cancelled too.
    void shut(bool hard) noexcept;
    /// Closes the connection to make room for a newcomer: an idle one stops watching, a fiber
    /// waiting for more of a request head is cancelled. It closes silently.
    void reclaim() noexcept;
    /// Leaves the hub's idle or slow-head queue, if it is in one.
    void leave_queue() noexcept;

    Connection* prev = nullptr;  // the hub's list
    Connection* next = nullptr;
    Connection* qprev = nullptr;  // the queue this connection is in, if any
    Connection* qnext = nullptr;
    ConnectionQueue* queue = nullptr;
    Clock::time_point queued_at{};  // when it went idle, or when its request head began
    // In the slow-head queue and waiting for more of the head (or of the TLS handshake) right
    // now, not running the handler of a request whose head came in pieces: the one a reclaim
    // may cut.
    bool waiting_for_head = false;

  private:
    enum class State : std::uint8_t { watching, active };
    void serve(RecvBuffer first) noexcept;
    /// An idle connection closes: its watch ends (and then on_recv closes it).
    void stop_watching() noexcept;
    /// Starts the fiber that serves what arrived (state active).
    void start_fiber(RecvBuffer first) noexcept;
    /// on_recv() of a watch_stream(): bytes start a fiber when idle, and are queued for it
    /// while it serves; a final result closes an idle connection, or tells the fiber.
    void stream_input(Result<RecvBuffer> bytes) noexcept;
    /// The fiber's next input: queued bytes, or what the stream watch brings before the
    /// deadline (a plain receive without one).
    Result<RecvBuffer> read_input(Deadline deadline);
    /// The deadline of the wait for the next request (the first's header timeout runs from the
    /// accept).
    Deadline idle_deadline() const noexcept;
    Result<void> send(std::span<const iovec> bufs) override;
    Result<void> send_buffer(ByteBuffer& bytes) override;
    bool send_now(ByteBuffer& bytes) noexcept override;
    Result<std::size_t> recv_append(std::string& out, Deadline deadline) override;
    void shutdown_read() noexcept override;
    /// Whether an answer of `total` bytes may go out detached: a failure (the earlier send's,
    /// or this fiber's cancellation or deadline) in `why` when it may not go out at all.
    bool may_detach(std::size_t total, Result<void>& why);
    /// Starts a detached send of a copy of `bufs`, or of `take`'s bytes (trading storage with
    /// it); false if the backend has no detached sends.
    bool start_tail(std::span<const iovec> bufs, ByteBuffer* take = nullptr);
    /// Waits until the detached send in flight, if any, has ended; its failure, if it failed.
    Result<void> wait_tail();
    Deadline stall_deadline() const noexcept;
    /// Waits again, fiber-less, for the next bytes; false when the connection must close
    /// instead (its input ended while the fiber served).
    bool watch_again() noexcept;
    void linger() noexcept;
    void destroy() noexcept;

    // TLS (when the server has a certificate).
    /// Takes ciphertext a watch received: the handshake (first), then the plaintext it
    /// decrypts to, in `out`. An empty `out`: nothing to answer yet. False: close.
    bool tls_input(RecvBuffer& ciphertext, std::string_view& out) noexcept;
    /// Plaintext decrypted from what is already received (no wait); false: close.
    bool tls_buffered(std::string_view& out) noexcept;
    /// Waits for more plaintext (the session's read step).
    Result<std::string_view> tls_read(Deadline deadline);
    void tls_failed(const TlsError& e, bool in_handshake) noexcept;
    /// The access log's line for plain HTTP sent to the TLS port (answered 400).
    void log_plain_http(std::string_view first, bool sent) noexcept;
    Result<void> tls_send(std::span<const iovec> bufs);

    HubState& hub_;
    TcpStream stream_;
    std::unique_ptr<TlsSession> tls_;
    std::unique_ptr<char[]> plain_;  // plaintext, while a TLS connection is active
    Clock::time_point accepted_at_;
    // Since when the connection has been idle between requests (coarse clock), and until when
    // it may stay so. A TLS read that brought no request (part of a record) keeps both.
    Clock::time_point idle_since_{};
    Deadline idle_until_;
    bool still_idle_ = false;
    Fiber<void> fiber_;
    ConnectionInfo info_;
    SocketAddress peer_;
    State state_ = State::watching;
    // The detached send in flight, if any, and how the last one failed.
    Tail* tail_ = nullptr;
    Error tail_error_{Errc::ok};
    bool destroy_pending_ = false;  // destroy() came while the tail or the watch was in flight
    // A watch_stream() (one multishot receive) stays armed while the fiber serves; what it
    // brings meanwhile waits in `in_`, made when first needed. TLS and epoll use watch().
    bool stream_watch_ = false;
    bool armed_ = false;  // the stream watch is in flight
    struct Input;
    std::unique_ptr<Input> in_;
    char peer_text_[48];
};

class HubState {
  public:
    HubState(Server& server, const Router& router, unsigned index);
    ~HubState();

    Server& server;
    const unsigned index;
    DateCache date;
    bool draining = false;
    bool stopping = false;
    /// This hub's accepts fail for want of a descriptor (read by Server::out_of_descriptors()
    /// from any thread).
    std::atomic<bool> out_of_fds{false};
    SessionContext ctx;

    /// Binds this hub's listener (hub thread).
    Result<SocketAddress> open_listener(const SocketAddress& addr);
    /// Starts the accept fiber (hub thread).
    void start_accepting();
    void close_listener() noexcept;
    int listener_fd() const noexcept { return listener_.fd(); }
    /// Drain or stop this hub's part of the server (hub thread).
    void begin_drain(bool hard) noexcept;
    /// Closes one connection of this hub to make room under max_connections: the keep-alive
    /// connection idle between requests for longest; else, if for more than a quarter of
    /// header_timeout, the one lingering after its last answer for longest (both counted as
    /// reclaimed idle); else, if for more than a quarter of
    /// header_timeout, the new one that has sent nothing for longest, or the one whose request
    /// head has been arriving for longest. False when there is none (hub thread).
    bool reclaim_one(Clock::time_point now) noexcept;

    /// Keep-alive connections watched between requests, least recently active first.
    ConnectionQueue idle;
    /// Connections watched before their first request, oldest first.
    ConnectionQueue fresh;
    /// Connections whose fiber waits for more of a request head, oldest head first.
    ConnectionQueue slow_heads;
    /// Connections answered for the last time, reading what the client still sends until it
    /// is done (lingering close), oldest first.
    ConnectionQueue lingering;

    Http1Session* acquire_session();
    void release_session(Http1Session* s) noexcept;
    void add(Connection* c) noexcept;
    void remove(Connection* c) noexcept;

  private:
    void accept_loop() noexcept;
    /// Counts one more connection unless max_connections is reached.
    bool reserve_connection() noexcept;
    /// For a newcomer held at max_connections: closes a connection here (or asks another hub
    /// to), then waits a little for room; false when draining or cancelled.
    bool make_room() noexcept;
    /// Logs that newcomers wait at max_connections: at once, then at most once a second.
    void note_at_limit() noexcept;
    void ask_other_hub_to_reclaim() noexcept;

    TcpListener listener_;
    Connection* head_ = nullptr;
    WaitQueue accept_wait_;              // the accept fiber, paused at max_connections
    std::uint64_t waited_at_limit_ = 0;  // newcomers held at the limit since the last message
    Clock::time_point limit_logged_at_{};
    unsigned next_hub_to_ask_ = 0;
    std::atomic<bool> asked_other_hub_{false};
    std::vector<std::unique_ptr<Http1Session>> free_sessions_;
    // Buffers for detached sends (their capacity is what is kept), and whether the backend
    // has detached sends (epoll has none).
    std::vector<std::unique_ptr<Tail>> spare_tails_;
    bool detached_sends_ = true;
    bool stream_watch_ = true;  // until the backend says it has no watch_stream()
    std::unique_ptr<Tail> take_tail();
    void give_back_tail(std::unique_ptr<Tail> t) noexcept;
    friend class Connection;
};

}  // namespace weft::http::detail
