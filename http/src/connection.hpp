// Connection and HubState: one server's presence on one hub. HubState owns the hub's listener,
// its accept fiber, its list of connections and a pool of sessions. A Connection is an accepted
// socket: while idle it is only a watch (no fiber, no buffer); when bytes arrive it borrows a
// fiber and a session, answers, and goes back to watching.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "serializer.hpp"
#include "session.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/internal/recv_watch.hpp"
#include "weft/core/tcp.hpp"
#include "weft/core/wait_queue.hpp"
#include "weft/http/server.hpp"

namespace weft::http::detail {

class HubState;

class Connection final : public internal::RecvWatcher, private Transport {
  public:
    Connection(HubState& hub, TcpStream stream, const SocketAddress& peer) noexcept;
    /// Waits (fiber-less) for the first request.
    void start() noexcept;
    void on_recv(Result<RecvBuffer> bytes) noexcept override;
    /// Drain: an idle connection stops waiting and closes; with `hard`, a busy one is
    /// cancelled too.
    void shut(bool hard) noexcept;

    Connection* prev = nullptr;  // the hub's list
    Connection* next = nullptr;

  private:
    enum class State : std::uint8_t { watching, active };
    void serve(RecvBuffer first) noexcept;
    Result<void> send(std::span<const iovec> bufs) override;
    void linger() noexcept;
    void destroy() noexcept;

    HubState& hub_;
    TcpStream stream_;
    Fiber<void> fiber_;
    ConnectionInfo info_;
    SocketAddress peer_;
    State state_ = State::watching;
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
    SessionContext ctx;

    /// Binds this hub's listener (hub thread).
    Result<SocketAddress> open_listener(const SocketAddress& addr);
    /// Starts the accept fiber (hub thread).
    void start_accepting();
    void close_listener() noexcept;
    /// Drain or stop this hub's part of the server (hub thread).
    void begin_drain(bool hard) noexcept;

    Http1Session* acquire_session();
    void release_session(Http1Session* s) noexcept;
    void add(Connection* c) noexcept;
    void remove(Connection* c) noexcept;

  private:
    void accept_loop() noexcept;
    /// Counts one more connection unless max_connections is reached.
    bool reserve_connection() noexcept;
    /// Waits a little for room under max_connections; false when draining or cancelled.
    bool wait_below_max(bool& logged) noexcept;

    TcpListener listener_;
    Connection* head_ = nullptr;
    WaitQueue accept_wait_;  // the accept fiber, paused at max_connections
    std::vector<std::unique_ptr<Http1Session>> free_sessions_;
    friend class Connection;
};

}  // namespace weft::http::detail
