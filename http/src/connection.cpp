// Connections and the per-hub accept loop. An idle keep-alive connection is a RecvWatcher and a
// socket, nothing more: when bytes arrive, on_recv() spawns a fiber (stacks are pooled) that
// borrows a session from the hub, answers everything it has, and — when the input is drained
// and the connection stays open — arms the watch again and ends.
#include "connection.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <exception>

#include "metrics_table.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/log.hpp"

namespace weft::http::detail {

namespace {
constexpr std::size_t kMaxCachedSessions = 256;
constexpr std::size_t kLingerMaxBytes = 1 << 20;
}  // namespace

// ---------------------------------------------------------------------------------------------
// Connection

Connection::Connection(HubState& hub, TcpStream stream, const SocketAddress& peer) noexcept
    : hub_(hub), stream_(std::move(stream)), peer_(peer) {
    peer_.format(peer_text_, sizeof peer_text_);
    info_.peer = &peer_;
    info_.peer_text = peer_text_;
}

void Connection::start() noexcept {
    (void)stream_.set_nodelay(true);
    state_ = State::watching;
    // The first request's first byte must come within the header timeout.
    internal::watch(stream_, *this, Deadline(hub_.server.options_.header_timeout));
}

void Connection::on_recv(Result<RecvBuffer> bytes) noexcept {
    // eof, timed out (idle: close silently), cancelled (drain), or an error: close.
    if (!bytes || hub_.stopping) {
        destroy();
        return;
    }
    state_ = State::active;
    try {
        fiber_ = weft::spawn("http-connection",
                             [this, b = std::move(*bytes)]() mutable { serve(std::move(b)); });
    } catch (const std::exception& e) {
        weft::logger("http")->error("cannot start a fiber for {}: {}", peer_text_, e.what());
        destroy();
    }
}

void Connection::shut(bool hard) noexcept {
    if (state_ == State::watching)
        internal::unwatch(*this);
    else if (hard)
        fiber_.cancel();
}

Result<void> Connection::send(std::span<const iovec> bufs) {
    // The send timeout bounds a stall, not the transfer: a slow reader of a large response
    // keeps its connection while bytes keep going out.
    const auto stall = std::chrono::nanoseconds(hub_.server.options_.send_timeout);
    // The common batch is one buffer: a plain send is cheaper for the kernel than sendmsg.
    if (bufs.size() == 1)
        return stream_.send_until_stalled(
            std::string_view(static_cast<const char*>(bufs[0].iov_base), bufs[0].iov_len), stall);
    return stream_.writev_until_stalled(bufs, stall);
}

void Connection::serve(RecvBuffer first) noexcept {
    Http1Session* s = nullptr;
    Step step;
    step.kind = Step::Kind::close;
    try {
        s = hub_.acquire_session();
        s->start(info_, *this);
        this_fiber::set_labels(s->labels());
        RecvBuffer buf = std::move(first);
        step = s->on_bytes(buf.view(), Clock::now(), &buf);
        while (step.kind == Step::Kind::read) {
            auto r = stream_.recv_buffer(step.deadline);
            if (!r) {
                if (r.error() == Errc::timed_out) {
                    step = s->on_timeout();
                } else {
                    step = Step{Step::Kind::close, {}, false};
                }
                break;
            }
            buf = std::move(*r);
            step = s->on_bytes(buf.view(), Clock::now(), &buf);
        }
    } catch (const std::exception& e) {
        weft::logger("http")->error("connection {}: {}", peer_text_, e.what());
        step = Step{Step::Kind::close, {}, false};
    } catch (...) {
        weft::logger("http")->error("connection {}: unknown exception", peer_text_);
        step = Step{Step::Kind::close, {}, false};
    }
    this_fiber::set_labels(nullptr);
    if (s) {
        s->finish();
        hub_.release_session(s);
    }
    fiber_.detach();
    if (step.kind == Step::Kind::idle && !hub_.draining && !this_fiber::cancelled()) {
        state_ = State::watching;
        internal::watch(stream_, *this, Deadline(hub_.server.options_.idle_timeout));
        return;
    }
    if (step.linger && !this_fiber::cancelled()) linger();
    destroy();
}

void Connection::linger() noexcept {
    // Our answer is out; the client may still be sending what we will never read. Closing now
    // would reset the connection and could destroy the answer in flight, so read and drop
    // for a while (nginx's lingering close).
    (void)stream_.shutdown(SHUT_WR);
    Deadline until(hub_.server.options_.linger_timeout);
    std::size_t total = 0;
    while (total < kLingerMaxBytes) {
        auto r = stream_.recv_buffer(until);
        if (!r) break;
        total += r->size();
    }
}

void Connection::destroy() noexcept {
    stream_.close();
    Server& srv = hub_.server;
    hub_.remove(this);
    delete this;
    srv.release(srv.live_connections_);
}

// ---------------------------------------------------------------------------------------------
// HubState

HubState::HubState(Server& srv, const Router& router, unsigned idx)
    : server(srv),
      index(idx),
      date(server_header_line(srv.options_)),
      ctx(make_session_context(srv.options_, router, &srv.metrics_.hub(idx), date, draining, idx)) {
}

HubState::~HubState() = default;

Result<SocketAddress> HubState::open_listener(const SocketAddress& addr) {
    ListenOptions lo;
    lo.reuse_port = true;
    lo.backlog = server.options_.listen_backlog;
    auto l = TcpListener::bind(addr, lo);
    if (!l) return l.error();
    auto local = l->local_address();
    if (!local) return local.error();
    listener_ = std::move(*l);
    return *local;
}

void HubState::close_listener() noexcept {
    listener_.close();
}

void HubState::start_accepting() {
    if (!listener_.is_open() || draining) return;
    server.live_listeners_.fetch_add(1, std::memory_order_relaxed);
    try {
        weft::spawn("http-accept", [this] { accept_loop(); }).detach();
    } catch (...) {
        server.live_listeners_.fetch_sub(1, std::memory_order_relaxed);
        listener_.close();
        throw;
    }
}

bool HubState::reserve_connection() noexcept {
    const std::size_t max = server.options_.max_connections;
    auto& live = server.live_connections_;
    std::size_t n = live.load(std::memory_order_relaxed);
    do {
        if (max && n >= max) return false;
    } while (!live.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
}

bool HubState::wait_below_max(bool& logged) noexcept {
    // Back off: leave newcomers in the kernel's backlog until a connection closes. Closing
    // connections of this hub wake us; those of other hubs are seen by the periodic look.
    if (!logged) {
        weft::logger("http")->warn("hub {}: {} connections (max_connections): accepting paused",
                                   index, server.options_.max_connections);
        logged = true;
    }
    auto r = accept_wait_.wait(Deadline(std::chrono::milliseconds(10)), "max connections");
    return (r || r.error() == Errc::timed_out) && !draining;
}

void HubState::accept_loop() noexcept {
    Server& srv = server;
    const std::size_t max = srv.options_.max_connections;
    std::chrono::milliseconds backoff{0};
    std::uint64_t refused = 0;
    bool at_max_logged = false;
    auto log = weft::logger("http");
    while (!draining && !this_fiber::cancelled()) {
        if (max && srv.live_connections_.load(std::memory_order_relaxed) >= max) {
            if (!wait_below_max(at_max_logged)) break;
            continue;
        }
        SocketAddress peer;
        auto s = listener_.accept(Deadline::never(), &peer);
        if (!s) {
            Errc e = s.error().code;
            if (e == Errc::closed || e == Errc::cancelled) break;
            ++refused;
            if (e == Errc::too_many_files) {
                if (!srv.emfile_logged_.exchange(true))
                    log->error(
                        "out of file descriptors ({}): accepting slows down until some "
                        "close; raise the limit (ulimit -n) or lower max_connections",
                        s.error().message());
            } else if (refused == 1) {
                log->warn("hub {}: accept failed: {}", index, s.error().message());
            }
            backoff = std::clamp(backoff * 2, std::chrono::milliseconds(10),
                                 std::chrono::milliseconds(1000));
            if (!weft::sleep_for(backoff)) break;
            continue;
        }
        if (refused > 0) {
            if (srv.emfile_logged_.exchange(false))
                log->info("accepting again after {} refused accept(s)", refused);
            refused = 0;
            backoff = std::chrono::milliseconds(0);
        }
        // Another hub may have filled the last places while this one waited in accept():
        // hold the newcomer (unserved) until there is room.
        bool room = true;
        while (!reserve_connection()) {
            if (!wait_below_max(at_max_logged)) {
                room = false;
                break;
            }
        }
        if (!room) break;  // draining or cancelled: the held stream closes here
        at_max_logged = false;
        Connection* c = new (std::nothrow) Connection(*this, std::move(*s), peer);
        if (!c) {
            srv.live_connections_.fetch_sub(1, std::memory_order_relaxed);
            continue;  // the stream closes as it goes out of scope
        }
        add(c);
        c->start();
    }
    listener_.close();
    srv.release(srv.live_listeners_);
}

void HubState::begin_drain(bool hard) noexcept {
    draining = true;
    if (hard) stopping = true;
    listener_.close();  // wakes the accept fiber with Errc::closed
    accept_wait_.notify_all();
    for (Connection* c = head_; c; c = c->next)
        c->shut(hard);
}

Http1Session* HubState::acquire_session() {
    if (!free_sessions_.empty()) {
        Http1Session* s = free_sessions_.back().release();
        free_sessions_.pop_back();
        return s;
    }
    return new Http1Session(ctx);
}

void HubState::release_session(Http1Session* s) noexcept {
    if (free_sessions_.size() < kMaxCachedSessions) {
        try {
            free_sessions_.emplace_back(s);
            return;
        } catch (...) {
        }
    }
    delete s;
}

void HubState::add(Connection* c) noexcept {
    c->prev = nullptr;
    c->next = head_;
    if (head_) head_->prev = c;
    head_ = c;
}

void HubState::remove(Connection* c) noexcept {
    if (c->prev)
        c->prev->next = c->next;
    else
        head_ = c->next;
    if (c->next) c->next->prev = c->prev;
    accept_wait_.notify_one();
}

}  // namespace weft::http::detail
