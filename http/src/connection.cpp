// Connections and the per-hub accept loop. An idle keep-alive connection is a RecvWatcher and a
// socket, nothing more: when bytes arrive, on_recv() spawns a fiber (stacks are pooled) that
// borrows a session from the hub, answers everything it has, and — when the input is drained
// and the connection stays open — arms the watch again and ends.
#include "connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
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
// Unsent bytes the kernel may hold for a connection beyond what is in flight. Without a bound,
// a response that fits in the send buffer (up to tcp_wmem's 4 MiB) is "sent" at once even to a
// client that reads nothing, and then held until idle_timeout; with it, the send stalls and
// send_timeout applies.
constexpr int kNotSentLowat = 128 * 1024;
}  // namespace

// ---------------------------------------------------------------------------------------------
// ConnectionQueue

void ConnectionQueue::push_back(Connection* c, Clock::time_point at) noexcept {
    c->leave_queue();
    c->queue = this;
    c->queued_at = at;
    c->qnext = nullptr;
    c->qprev = last_;
    if (last_)
        last_->qnext = c;
    else
        first_ = c;
    last_ = c;
}

void ConnectionQueue::erase(Connection* c) noexcept {
    if (c->queue != this) return;
    if (c->qprev)
        c->qprev->qnext = c->qnext;
    else
        first_ = c->qnext;
    if (c->qnext)
        c->qnext->qprev = c->qprev;
    else
        last_ = c->qprev;
    c->qprev = c->qnext = nullptr;
    c->queue = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Connection

Connection::Connection(HubState& hub, TcpStream stream, const SocketAddress& peer) noexcept
    : hub_(hub), stream_(std::move(stream)), peer_(peer) {
    peer_.format(peer_text_, sizeof peer_text_);
    info_.peer = &peer_;
    info_.fd = stream_.fd();
    info_.peer_text = peer_text_;
}

void Connection::start() noexcept {
    (void)stream_.set_nodelay(true);
    (void)::setsockopt(stream_.fd(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kNotSentLowat,
                       sizeof kNotSentLowat);
    state_ = State::watching;
    hub_.idle.push_back(this, Clock::now());
    // The first request's first byte must come within the header timeout.
    internal::watch(stream_, *this, Deadline(hub_.server.options_.header_timeout));
}

void Connection::on_recv(Result<RecvBuffer> bytes) noexcept {
    leave_queue();
    // eof, timed out (idle: close silently), cancelled (drain, reclaim), or an error: close.
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

void Connection::reclaim() noexcept {
    leave_queue();
    if (state_ == State::watching)
        internal::unwatch(*this);
    else
        fiber_.cancel();
}

void Connection::leave_queue() noexcept {
    if (queue) queue->erase(this);
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
            // A head that keeps arriving stays in the queue at its first place.
            if (step.head_started == Clock::time_point{})
                leave_queue();
            else if (queue != &hub_.slow_heads)
                hub_.slow_heads.push_back(this, step.head_started);
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
    leave_queue();
    this_fiber::set_labels(nullptr);
    if (s) {
        s->finish();
        hub_.release_session(s);
    }
    fiber_.detach();
    if (step.kind == Step::Kind::idle && !hub_.draining && !this_fiber::cancelled()) {
        state_ = State::watching;
        hub_.idle.push_back(this, Clock::now());
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
    leave_queue();
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
      ctx(make_session_context(srv.options_, router, &srv.metrics_.hub(idx), date, draining, idx,
                               srv.bodies_.get())) {}

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

void HubState::note_at_limit() noexcept {
    ++waited_at_limit_;
    const auto now = Clock::now();
    const auto since = now - limit_logged_at_;
    if (since < std::chrono::seconds(1)) return;
    if (limit_logged_at_ == Clock::time_point{})
        weft::logger("http")->warn(
            "hub {}: at max_connections ({}): new connections wait for room, and idle "
            "connections are closed to make it (said at most once a second)",
            index, server.options_.max_connections);
    else
        weft::logger("http")->warn(
            "hub {}: at max_connections ({}): {} new connection(s) waited for room in the last "
            "{:.1f} s",
            index, server.options_.max_connections, waited_at_limit_,
            std::chrono::duration<double>(since).count());
    limit_logged_at_ = now;
    waited_at_limit_ = 0;
}

bool HubState::reclaim_one(Clock::time_point now) noexcept {
    ConnectionCounters& counts = server.metrics_.connections();
    if (Connection* c = idle.front()) {
        c->reclaim();
        counts.reclaimed_idle.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    // A request head takes one packet from an honest client: one that has been arriving for a
    // good part of the header timeout, while others wait at the door, is the one to drop.
    Connection* c = slow_heads.front();
    if (c && now - c->queued_at >= server.options_.header_timeout / 4) {
        c->reclaim();
        counts.reclaimed_slow_head.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    return false;
}

void HubState::ask_other_hub_to_reclaim() noexcept {
    const unsigned hubs = static_cast<unsigned>(server.hubs_.size());
    if (hubs < 2 || asked_other_hub_.exchange(true)) return;
    // Round robin over the other hubs, one request in flight at a time.
    next_hub_to_ask_ = (next_hub_to_ask_ + 1) % hubs;
    if (next_hub_to_ask_ == index) next_hub_to_ask_ = (next_hub_to_ask_ + 1) % hubs;
    HubState* other = server.hubs_[next_hub_to_ask_].get();
    Server& srv = server;
    srv.pending_posts_.fetch_add(1, std::memory_order_relaxed);
    srv.runtime_.hub(next_hub_to_ask_).post([this, other, &srv] {
        if (!other->draining) (void)other->reclaim_one(Clock::now());
        asked_other_hub_.store(false);
        srv.release(srv.pending_posts_);
    });
}

bool HubState::make_room() noexcept {
    // Leave further newcomers in the kernel's backlog; close one connection that waits for
    // nothing in particular (nginx's ngx_drain_connections), here or on another hub. Closing
    // connections of this hub wake us; those of other hubs are seen by the periodic look.
    if (!reclaim_one(Clock::now())) ask_other_hub_to_reclaim();
    auto r = accept_wait_.wait(Deadline(std::chrono::milliseconds(10)), "max connections");
    return (r || r.error() == Errc::timed_out) && !draining;
}

void HubState::accept_loop() noexcept {
    Server& srv = server;
    std::chrono::milliseconds backoff{0};
    std::uint64_t refused = 0;
    auto log = weft::logger("http");
    while (!draining && !this_fiber::cancelled()) {
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
        // At max_connections: hold the newcomer (unserved) until there is room.
        bool room = reserve_connection();
        if (!room) note_at_limit();
        while (!room && make_room())
            room = reserve_connection();
        if (!room) break;  // draining or cancelled: the held stream closes here
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
