// Connections and the per-hub accept loop. An idle keep-alive connection is a RecvWatcher and a
// socket, nothing more: when bytes arrive, on_recv() spawns a fiber (stacks are pooled) that
// borrows a session from the hub, answers everything it has, and — when the input is drained
// and the connection stays open — goes back to watching and ends. With io_uring, a plain
// connection's watch is one multishot receive armed for its whole life (bytes that come while
// its fiber serves are queued for that fiber); TLS and epoll arm a receive per idle period.
#include "connection.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>

#include "metrics_table.hpp"
#include "websocket_core.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/clock.hpp"
#include "weft/core/log.hpp"

namespace weft::http::detail {

namespace {
constexpr std::size_t kMaxCachedSessions = 256;
// The lingering close (see Connection::linger): silence that ends it, and reads between turns.
constexpr std::chrono::seconds kLingerIdle{5};
constexpr unsigned kLingerTurn = 16;
// Unsent bytes the kernel may hold for a connection beyond what is in flight. Without a bound,
// a response that fits in the send buffer (up to tcp_wmem's 4 MiB) is "sent" at once even to a
// client that reads nothing, and then held until idle_timeout; with it, the send stalls and
// send_timeout applies.
constexpr int kNotSentLowat = 128 * 1024;
// Answers up to this size are sent detached (see Connection::send), from buffers of this hub
// kept for reuse (at most kSpareTails of them).
constexpr std::size_t kTailMax = 16 * 1024;
constexpr std::size_t kSpareTails = 64;
// Bytes a stream watch may queue for a busy fiber; beyond, it stops receiving (the kernel's
// socket buffer and TCP's flow control hold the rest) until the fiber has read them.
constexpr std::size_t kMaxQueuedInput = 64 * 1024;
// TLS: plaintext read at once (a whole record), and the bytes written per record batch.
constexpr std::size_t kPlainBuf = 16 * 1024;
constexpr std::size_t kTlsWriteSlice = 64 * 1024;
// A TLS record of the handshake starts with content type 22.
constexpr unsigned char kTlsHandshakeRecord = 0x16;
constexpr std::string_view kPlainHttpToTls =
    "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    "Content-Length: 49\r\n\r\nThe plain HTTP request was sent to an HTTPS port\n";
static_assert(kPlainHttpToTls.size() - kPlainHttpToTls.find("\r\n\r\n") - 4 == 49,
              "the answer's Content-Length");
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

struct Connection::Input {
    std::deque<RecvBuffer> q;
    std::size_t bytes = 0;
    Error end{Errc::ok};  // how the input ended (eof, an error) while a fiber served
    WaitQueue reader;     // the fiber, waiting for input
    bool paused = false;  // unwatched because `q` holds too much
};

Connection::Connection(HubState& hub, TcpStream stream, const SocketAddress& peer) noexcept
    : hub_(hub), stream_(std::move(stream)), accepted_at_(Clock::now()), peer_(peer) {
    peer_.format(peer_text_, sizeof peer_text_);
    info_.peer = &peer_;
    info_.fd = stream_.fd();
    info_.peer_text = peer_text_;
    info_.accepted_at = accepted_at_;
}

void Connection::start() noexcept {
    (void)stream_.set_nodelay(true);
    (void)::setsockopt(stream_.fd(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kNotSentLowat,
                       sizeof kNotSentLowat);
    state_ = State::watching;
    hub_.fresh.push_back(this, Clock::now());
    // The first request's first byte must come within the header timeout.
    const Deadline first(hub_.server.options_.header_timeout);
    // TLS reads its records itself; plain HTTP keeps one receive armed for the connection's life.
    if (hub_.stream_watch_ && !hub_.server.tls()) {
        if (internal::watch_stream(stream_, *this, first)) {
            stream_watch_ = armed_ = true;
            return;
        }
        hub_.stream_watch_ = false;  // this backend has none
    }
    internal::watch(stream_, *this, first);
}

void Connection::on_recv(Result<RecvBuffer> bytes) noexcept {
    if (stream_watch_) {
        stream_input(std::move(bytes));
        return;
    }
    leave_queue();
    // eof, timed out (idle: close silently), cancelled (drain, reclaim), or an error: close.
    if (!bytes || hub_.stopping) {
        // TLS says it is the server that closes (RFC 8446 §6.1), not a cut: clients that
        // insist on close_notify (OpenSSL 3) would report an unexpected end otherwise.
        if (tls_ && !bytes &&
            (bytes.error().code == Errc::timed_out || bytes.error().code == Errc::cancelled))
            tls_->close_now(stream_.fd());
        destroy();
        return;
    }
    start_fiber(std::move(*bytes));
}

void Connection::start_fiber(RecvBuffer first) noexcept {
    state_ = State::active;
    try {
        fiber_ = weft::spawn("http-connection",
                             [this, b = std::move(first)]() mutable { serve(std::move(b)); });
    } catch (const std::exception& e) {
        weft::logger("http")->error("cannot start a fiber for {}: {}", peer_text_, e.what());
        destroy();
    }
}

void Connection::stream_input(Result<RecvBuffer> bytes) noexcept {
    if (!bytes) {
        // The watch has ended.
        armed_ = false;
        const Errc code = bytes.error().code;
        const bool paused = in_ && in_->paused;
        if (in_) in_->paused = false;
        if (destroy_pending_) {
            destroy();
            return;
        }
        if (state_ == State::watching) {
            // Our own pause ended: watch on. Otherwise eof, the idle timeout (close silently),
            // drain or reclaim (cancelled), or an error: close.
            if (paused && code == Errc::cancelled && !hub_.stopping) {
                armed_ = internal::watch_stream(stream_, *this, idle_deadline());
                if (armed_) return;
            }
            leave_queue();
            destroy();
            return;
        }
        // A fiber serves. A pause, or an idle deadline that fell due as the request came, only
        // ended the watch (the fiber arms another when it needs one); anything else ends the
        // input.
        if (!in_) in_.reset(new (std::nothrow) Input());
        if (!in_) {
            (void)stream_.shutdown(SHUT_RDWR);  // the fiber's next read or send fails
            return;
        }
        if (!(paused && code == Errc::cancelled) && code != Errc::timed_out)
            in_->end = bytes.error();
        in_->reader.notify_all();
        return;
    }
    if (destroy_pending_) return;  // closing: the bytes are dropped
    if (state_ == State::watching) {
        leave_queue();
        if (hub_.stopping) {
            destroy();
            return;
        }
        internal::set_watch_deadline(*this, Deadline::never());
        start_fiber(std::move(*bytes));
        return;
    }
    // The fiber is busy: the bytes wait for it, in order.
    if (!in_) in_.reset(new (std::nothrow) Input());
    if (!in_) {
        (void)stream_.shutdown(SHUT_RDWR);
        return;
    }
    in_->bytes += bytes->size();
    try {
        in_->q.push_back(std::move(*bytes));
    } catch (...) {
        (void)stream_.shutdown(SHUT_RDWR);
        return;
    }
    in_->reader.notify_all();
    if (in_->bytes > kMaxQueuedInput && !in_->paused && armed_) {
        in_->paused = true;
        internal::unwatch(*this);
    }
}

Result<RecvBuffer> Connection::read_input(Deadline deadline) {
    if (!stream_watch_) return stream_.recv_buffer(deadline);
    if (!in_) in_ = std::make_unique<Input>();
    for (;;) {
        if (!in_->q.empty()) {
            RecvBuffer b = std::move(in_->q.front());
            in_->q.pop_front();
            in_->bytes -= b.size();
            return b;
        }
        if (in_->end.code != Errc::ok) return in_->end;
        if (!armed_ && !in_->paused) {
            if (!internal::watch_stream(stream_, *this, Deadline::never())) return Errc::closed;
            armed_ = true;
        }
        if (auto r = in_->reader.wait(deadline, "recv"); !r) return r.error();
    }
}

Deadline Connection::idle_deadline() const noexcept {
    const ServerOptions& o = hub_.server.options_;
    return info_.requests == 0 ? Deadline(accepted_at_ + o.header_timeout) : idle_until_;
}

void Connection::shut(bool hard) noexcept {
    if (hard && tail_) internal::cancel_send(*tail_);
    if (state_ == State::watching) {
        stop_watching();
    } else if (hard) {
        info_.cut = true;
        fiber_.cancel();
        // The client learns now that no answer comes, even if the handler does not end when
        // cancelled (it waits for offload()ed work): a cancelled fiber sends nothing more, and
        // the send in flight was cancelled above. (A handler that blocks its hub holds this
        // too, until the hub runs again.)
        (void)stream_.shutdown(SHUT_RDWR);
    } else if (info_.websocket) {
        // A WebSocket would never end by itself: its read side ends now, and its recv() closes
        // it with 1001 ("going away") so that the client reconnects elsewhere.
        info_.websocket->going_away();
        (void)stream_.shutdown(SHUT_RD);
    }
}

void Connection::reclaim() noexcept {
    leave_queue();
    if (state_ == State::watching) {
        stop_watching();
    } else {
        info_.cut = true;
        fiber_.cancel();
    }
}

void Connection::stop_watching() noexcept {
    // The watch's end closes the connection, even if it was ending for a pause.
    if (in_) in_->paused = false;
    if (!stream_watch_ || armed_)
        internal::unwatch(*this);
    else
        destroy();
}

void Connection::leave_queue() noexcept {
    if (queue) queue->erase(this);
}

bool Connection::may_detach(std::size_t total, Result<void>& why) {
    // What an earlier send left in flight goes out first.
    if (why = wait_tail(); !why) return false;
    // An answer that fits goes out detached: the fiber goes on at once (and ends, if the
    // connection has nothing more to read) instead of parking until the kernel has the bytes,
    // and the next send waits for this one. A failure closes the connection.
    if (total == 0 || total > kTailMax || !hub_.detached_sends_) return false;
    // As a send from the fiber would: a cancelled fiber, or one past its deadline, sends
    // nothing.
    if (this_fiber::cancelled()) {
        why = Errc::cancelled;
        return false;
    }
    if (this_fiber::deadline().passed()) {
        why = Errc::timed_out;
        return false;
    }
    return true;
}

Result<void> Connection::send_buffer(ByteBuffer& bytes) {
    Result<void> why;
    if (!tls_ && may_detach(bytes.size(), why) && start_tail({}, &bytes)) return {};
    if (!why) return why;
    return Transport::send_buffer(bytes);
}

bool Connection::send_now(ByteBuffer& bytes) noexcept {
    // A detached send, when one can start at once: none in flight (this one would wait for
    // it), plain TCP, small enough. The fiber's own cancellation or deadline do not stop it:
    // these are earlier requests' answers.
    if (tls_ || tail_ || tail_error_.code != Errc::ok || !hub_.detached_sends_ ||
        bytes.size() == 0 || bytes.size() > kTailMax)
        return false;
    try {
        return start_tail({}, &bytes);
    } catch (...) {
        return false;  // no memory for the tail: they go with the batch
    }
}

Result<void> Connection::send(std::span<const iovec> bufs) {
    if (tls_) return tls_send(bufs);
    std::size_t total = 0;
    for (const iovec& b : bufs)
        total += b.iov_len;
    Result<void> why;
    if (may_detach(total, why) && start_tail(bufs)) return {};
    if (!why) return why;
    // The send timeout bounds a stall, not the transfer: a slow reader of a large response
    // keeps its connection while bytes keep going out.
    const auto stall = std::chrono::nanoseconds(hub_.server.options_.send_timeout);
    // The common batch is one buffer: a plain send is cheaper for the kernel than sendmsg.
    if (bufs.size() == 1)
        return stream_.send_until_stalled(
            std::string_view(static_cast<const char*>(bufs[0].iov_base), bufs[0].iov_len), stall);
    return stream_.writev_until_stalled(bufs, stall);
}

Deadline Connection::stall_deadline() const noexcept {
    const auto stall = std::chrono::nanoseconds(hub_.server.options_.send_timeout);
    return stall.count() > 0 ? internal::coarse_deadline(stall) : Deadline::never();
}

bool Connection::start_tail(std::span<const iovec> bufs, ByteBuffer* take) {
    std::unique_ptr<Tail> t = hub_.take_tail();
    t->conn = this;
    t->bytes.clear();
    if (take) {
        t->bytes.swap(*take);  // no copy: the session gets the tail's empty storage
    } else {
        for (const iovec& b : bufs)
            t->bytes.append(static_cast<const char*>(b.iov_base), b.iov_len);
    }
    t->sent = 0;
    bool started = false;
    try {
        started = internal::send_detached(
            stream_, std::string_view(t->bytes.data(), t->bytes.size()), *t, stall_deadline());
    } catch (...) {
        if (take) t->bytes.swap(*take);  // the session keeps its bytes (out of memory)
        hub_.give_back_tail(std::move(t));
        throw;
    }
    if (!started) {
        hub_.detached_sends_ = false;    // this backend has none: send from the fiber
        if (take) t->bytes.swap(*take);  // the bytes go back to the session, to send them
        hub_.give_back_tail(std::move(t));
        return false;
    }
    tail_ = t.release();  // back to the hub in tail_ended()
    return true;
}

void Tail::on_sent(Result<std::size_t> r) noexcept {
    conn->tail_ended(r);
}

void Connection::tail_ended(Result<std::size_t> sent) noexcept {
    Tail* t = tail_;
    if (sent && *sent > 0 && t->sent + *sent < t->bytes.size()) {
        // A part went out: the rest, with a fresh stall bound.
        t->sent += static_cast<std::uint32_t>(*sent);
        (void)internal::send_detached(
            stream_, std::string_view(t->bytes.data(), t->bytes.size()).substr(t->sent), *t,
            stall_deadline());
        return;
    }
    if (!sent || *sent == 0) {
        // The answer cannot be delivered: the connection closes. A watch ends at once; a fiber
        // serving it fails at its next send or read.
        tail_error_ = sent ? Error(Errc::closed) : sent.error();
        (void)stream_.shutdown(SHUT_RDWR);
    }
    tail_ = nullptr;
    t->waiters.notify_all();  // woken, a waiter no longer touches the tail
    hub_.give_back_tail(std::unique_ptr<Tail>(t));
    if (destroy_pending_) destroy();
}

Result<void> Connection::wait_tail() {
    while (tail_)
        if (auto r = tail_->waiters.wait(Deadline::never(), "send"); !r) return r;
    if (tail_error_.code != Errc::ok) return tail_error_;
    return {};
}

Result<std::size_t> Connection::recv_append(std::string& out, Deadline deadline) {
    if (tls_) {
        auto r = tls_read(deadline);
        if (!r) return r.error() == Errc::eof ? Result<std::size_t>(std::size_t{0}) : r.error();
        out.append(*r);
        return r->size();
    }
    auto b = read_input(deadline);
    if (!b) return b.error() == Errc::eof ? Result<std::size_t>(std::size_t{0}) : b.error();
    out.append(b->view());
    return b->size();
}

void Connection::shutdown_read() noexcept {
    (void)stream_.shutdown(SHUT_RD);
}

bool Connection::watch_again() noexcept {
    if (stream_watch_ && in_) {
        // What came while the fiber served is served first, by a fresh fiber; an input that
        // ended closes the connection.
        if (!in_->q.empty()) {
            RecvBuffer b = std::move(in_->q.front());
            in_->q.pop_front();
            in_->bytes -= b.size();
            start_fiber(std::move(b));
            return true;
        }
        if (in_->end.code != Errc::ok) return false;
    }
    state_ = State::watching;
    // The idle queue's order is what counts, and the idle timeout is seconds long: the coarse
    // clock is good enough for both (never early, a tick late at most), and cheaper. A TLS
    // connection whose fiber decrypted no request stays idle since it was first: ciphertext
    // dripped a byte at a time must not hold it open past the idle timeout. (It does go to
    // the back of the queue that max_connections reclaims from.)
    if (!still_idle_ || idle_since_ == Clock::time_point{}) {
        idle_since_ = internal::coarse_now();
        const Clock::duration timeout = hub_.server.options_.idle_timeout;
        const Clock::time_point from = idle_since_ + internal::coarse_tick();
        idle_until_ = timeout >= Clock::time_point::max() - from ? Deadline::never()
                                                                 : Deadline(from + timeout);
    }
    still_idle_ = false;
    (info_.requests == 0 ? hub_.fresh : hub_.idle).push_back(this, idle_since_);
    // Before the first request (a TLS connection after its handshake) the header timeout
    // still runs from the accept; between requests, the idle timeout.
    if (!stream_watch_) {
        internal::watch(stream_, *this, idle_deadline());
    } else if (armed_) {
        // Still armed (or its pause's end is on the way, and re-arms it): only the deadline.
        internal::set_watch_deadline(*this, idle_deadline());
    } else if (!(armed_ = internal::watch_stream(stream_, *this, idle_deadline()))) {
        leave_queue();
        return false;
    }
    return true;
}

void Connection::serve(RecvBuffer first) noexcept {
    Http1Session* s = nullptr;
    Step step;
    step.kind = Step::Kind::close;
    const auto requests_before = info_.requests;
    try {
        RecvBuffer buf = std::move(first);
        std::string_view in = buf.view();
        bool ok = true;
        if (hub_.server.tls()) {
            ok = tls_input(buf, in);
            if (ok && in.empty()) {
                step.kind = Step::Kind::idle;  // nothing to answer yet
                still_idle_ = true;
            }
        }
        if (ok && !in.empty()) {
            s = hub_.acquire_session();
            s->start(info_, *this);
            this_fiber::set_labels(s->labels());
            // The fiber has just started: the time the hub read at the switch is now (after a
            // TLS handshake's computing it is not).
            step =
                s->on_bytes(in, tls_ ? Clock::now() : internal::slice_now(), tls_ ? nullptr : &buf);
            for (;;) {
                while (step.kind == Step::Kind::read) {
                    // A head that keeps arriving stays in the queue at its first place.
                    if (step.head_started == Clock::time_point{})
                        leave_queue();
                    else if (queue != &hub_.slow_heads)
                        hub_.slow_heads.push_back(this, step.head_started);
                    Result<std::string_view> r = Errc::closed;
                    waiting_for_head = queue == &hub_.slow_heads;
                    if (tls_) {
                        r = tls_read(step.deadline);
                    } else if (auto b = read_input(step.deadline); b) {
                        buf = std::move(*b);
                        r = buf.view();
                    } else {
                        r = b.error();
                    }
                    waiting_for_head = false;
                    if (!r) {
                        step = r.error() == Errc::timed_out ? s->on_timeout()
                                                            : Step{Step::Kind::close, {}, false};
                        break;
                    }
                    step = s->on_bytes(*r, Clock::now(), tls_ ? nullptr : &buf);
                }
                // TLS: the next request may already be here, decrypted or not.
                if (step.kind != Step::Kind::idle || !tls_ || !tls_->has_buffered()) break;
                std::string_view more;
                if (!tls_buffered(more)) {
                    step = Step{Step::Kind::close, {}, false};
                    break;
                }
                if (more.empty()) break;
                step = s->on_bytes(more, Clock::now(), nullptr);
            }
        } else if (!ok) {
            step = Step{Step::Kind::close, {}, false};
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
    if (tls_) {
        // An idle TLS connection keeps its session (a few KiB), not its buffers.
        plain_.reset();
        tls_->release_buffers();
    }
    // Bytes that began no request (the empty lines RFC 9112 lets a client send between
    // requests) leave the connection idle since it was first: sent now and then, they must
    // not hold it open past the idle timeout.
    // A busy period that answered requests makes it idle from now: also when queued input
    // starts the next fiber at once (watch_again() stamps the time once that one is idle).
    if (info_.requests != requests_before) {
        still_idle_ = false;
        idle_since_ = Clock::time_point{};
    } else if (step.kind == Step::Kind::idle) {
        still_idle_ = true;
    }
    if (step.kind == Step::Kind::idle && !hub_.draining && !this_fiber::cancelled() &&
        watch_again()) {
        // Watching again (or a fresh fiber took over the queued input, and fiber_ is its
        // handle): a handle to this fiber would keep its stack after it ends.
        if (state_ == State::watching) fiber_.detach();
        return;
    }
    // Closing: the handle stays, so that a hard stop can cancel the last send's wait, the
    // close_notify or the linger.
    // The last answer goes out before the connection closes.
    (void)wait_tail();
    if (tls_ && !this_fiber::cancelled() && step.kind == Step::Kind::close)
        tls_->shutdown(Deadline(std::chrono::milliseconds(200)));
    if (step.linger && !this_fiber::cancelled()) linger();
    destroy();
}

// ---------------------------------------------------------------------------------------------
// TLS

bool Connection::tls_input(RecvBuffer& ciphertext, std::string_view& out) noexcept {
    out = {};
    try {
        if (!tls_) {
            const std::string_view first = ciphertext.view();
            if (!first.empty() && static_cast<unsigned char>(first[0]) != kTlsHandshakeRecord) {
                // Not TLS. Plain HTTP gets an answer it can show, in plain HTTP; then close.
                ConnectionCounters& counts = hub_.server.metrics_.connections();
                if (first[0] >= 'A' && first[0] <= 'Z') {
                    counts.tls_failed_plain_http.fetch_add(1, std::memory_order_relaxed);
                    // With the Server and Date fields every other answer carries.
                    const std::size_t head_end = kPlainHttpToTls.find("\r\n") + 2;
                    std::string answer;
                    answer.reserve(kPlainHttpToTls.size() + 128);
                    answer.append(kPlainHttpToTls.substr(0, head_end))
                        .append(hub_.date.line())
                        .append(kPlainHttpToTls.substr(head_end));
                    const bool sent =
                        static_cast<bool>(stream_.send(answer, Deadline(std::chrono::seconds(1))));
                    log_plain_http(first, sent);
                    // Its request is unread: closing now could reset the answer away.
                    linger();
                    weft::logger("http")->debug("{}: plain HTTP sent to the TLS port", peer_text_);
                } else {
                    counts.tls_failed_protocol.fetch_add(1, std::memory_order_relaxed);
                    weft::logger("http")->debug("{}: TLS handshake failed: not a TLS record",
                                                peer_text_);
                }
                return false;
            }
            auto ctx = hub_.server.tls_context();
            if (!ctx) return false;
            tls_ = std::make_unique<TlsSession>(std::move(ctx), stream_);
            info_.tls = true;
        }
        tls_->feed(ciphertext.view());
        ciphertext.reset();
        if (!tls_->handshake_done()) {
            const Deadline until(accepted_at_ + hub_.server.options_.header_timeout);
            // A handshake that keeps arriving is a request head that keeps arriving: at
            // max_connections it may be closed to make room (reclaim_one), as a slow head is.
            hub_.slow_heads.push_back(this, accepted_at_);
            waiting_for_head = true;
            auto r = tls_->accept(until);
            waiting_for_head = false;
            leave_queue();
            if (!r) {
                tls_failed(r.error(), true);
                return false;
            }
            ConnectionCounters& counts = hub_.server.metrics_.connections();
            counts.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
            if (tls_->resumed()) counts.tls_resumed.fetch_add(1, std::memory_order_relaxed);
        }
        return tls_buffered(out);
    } catch (const std::exception& e) {
        weft::logger("http")->error("connection {}: TLS: {}", peer_text_, e.what());
        return false;
    }
}

void Connection::log_plain_http(std::string_view first, bool sent) noexcept {
    const ServerOptions& o = hub_.server.options_;
    if (!o.access_log) return;
    // As nginx logs it: a 400 with the request line as it came (never parsed: no method or
    // target).
    constexpr std::size_t kMaxLine = 256;
    const std::size_t end = first.find_first_of("\r\n");
    AccessLogEntry e;
    e.request_line = first.substr(0, std::min({end, first.size(), kMaxLine}));
    e.status = 400;
    e.bytes = sent ? kPlainHttpToTls.size() - kPlainHttpToTls.find("\r\n\r\n") - 4 : 0;
    // From the first bytes: they came as this fiber started.
    e.duration = Clock::now() - internal::slice_now();
    e.peer = &peer_;
    e.peer_text = peer_text_;
    e.hub = hub_.index;
    e.complete = sent;
    try {
        try {
            o.access_log(e);
        } catch (const std::exception& ex) {
            weft::logger("http")->error("access log callback threw: {}", ex.what());
        }
    } catch (...) {
        // A callback that throws a non-std exception, or a log line that cannot be made.
    }
}

bool Connection::tls_buffered(std::string_view& out) noexcept {
    out = {};
    if (!plain_) plain_ = std::unique_ptr<char[]>(new (std::nothrow) char[kPlainBuf]);
    if (!plain_) return false;
    try {
        bool eof = false;
        auto n = tls_->read_buffered(std::span<char>(plain_.get(), kPlainBuf), eof);
        if (!n) {
            tls_failed(n.error(), false);
            return false;
        }
        if (eof) return false;
        out = std::string_view(plain_.get(), *n);
        return true;
    } catch (...) {
        return false;  // out of memory for an error's words: the connection closes
    }
}

Result<std::string_view> Connection::tls_read(Deadline deadline) {
    if (!plain_) plain_.reset(new char[kPlainBuf]);
    auto n = tls_->read(std::span<char>(plain_.get(), kPlainBuf), deadline);
    if (!n) {
        if (!n.error().tls) return n.error().transport;
        tls_failed(n.error(), false);
        return Errc::connection_reset;
    }
    if (*n == 0) return Errc::eof;
    return std::string_view(plain_.get(), *n);
}

void Connection::tls_failed(const TlsError& e, bool in_handshake) noexcept {
    if (!in_handshake) {
        weft::logger("http")->debug("{}: TLS: {}", peer_text_, e.message);
        return;
    }
    ConnectionCounters& counts = hub_.server.metrics_.connections();
    if (!e.tls && e.transport.code == Errc::cancelled) return;  // drain or reclaim
    if (!e.tls && e.transport.code == Errc::timed_out)
        counts.tls_failed_timeout.fetch_add(1, std::memory_order_relaxed);
    else if (!e.tls)
        counts.tls_failed_closed.fetch_add(1, std::memory_order_relaxed);
    else
        counts.tls_failed_protocol.fetch_add(1, std::memory_order_relaxed);
    // Debug only: a scanner or a client that distrusts our certificate would otherwise fill the
    // log; the metric counts them.
    weft::logger("http")->debug("{}: TLS handshake failed: {}", peer_text_, e.message);
}

Result<void> Connection::tls_send(std::span<const iovec> bufs) {
    const auto stall = std::chrono::nanoseconds(hub_.server.options_.send_timeout);
    auto deadline = [&] { return stall.count() > 0 ? Deadline(stall) : Deadline::never(); };
    auto fail = [&](const TlsError& e) -> Result<void> {
        if (!e.tls) return e.transport;
        tls_failed(e, false);
        return Errc::connection_reset;
    };
    // Small pieces (a head, a short body) go out as one record; large ones in slices, each
    // with its own stall timeout.
    std::size_t total = 0;
    for (const iovec& v : bufs)
        total += v.iov_len;
    if (bufs.size() > 1 && total <= kPlainBuf) {
        std::string joined;
        joined.reserve(total);
        for (const iovec& v : bufs)
            joined.append(static_cast<const char*>(v.iov_base), v.iov_len);
        if (auto r = tls_->write(joined, deadline()); !r) return fail(r.error());
        return {};
    }
    for (const iovec& v : bufs) {
        std::string_view data(static_cast<const char*>(v.iov_base), v.iov_len);
        while (!data.empty()) {
            const std::size_t n = std::min(data.size(), kTlsWriteSlice);
            if (auto r = tls_->write(data.substr(0, n), deadline()); !r) return fail(r.error());
            data.remove_prefix(n);
        }
    }
    return {};
}

void Connection::linger() noexcept {
    // Our answer is out; the client may still be sending what we will never read. Closing now
    // would reset the connection and could destroy the answer in flight, so read and drop
    // until the client is done or linger_timeout passes (nginx's lingering close). Bounded by
    // time, as nginx's, not bytes: a client uploading a body over the limit (without asking
    // "Expect: 100-continue") sees the 413 only once all of its body is out, however large.
    // A client silent for kLingerIdle is done (nginx's lingering_timeout). The bytes go back
    // to the pool as they come, and the hub's other fibers get a turn every kLingerTurn reads
    // (a read that finds bytes waiting does not park).
    (void)stream_.shutdown(SHUT_WR);
    const Deadline until(hub_.server.options_.linger_timeout);
    hub_.lingering.push_back(this, Clock::now());  // the first to go at max_connections
    try {
        for (unsigned reads = 1;; ++reads) {
            auto r = read_input(earliest(until, Deadline(kLingerIdle)));
            if (!r) break;
            if (reads % kLingerTurn == 0) weft::yield();
        }
    } catch (...) {
        // Out of memory for the input queue: the close comes sooner.
    }
    leave_queue();
}

void Connection::destroy() noexcept {
    leave_queue();
    if (tail_) {
        destroy_pending_ = true;  // tail_ended() ends it
        return;
    }
    if (armed_) {
        destroy_pending_ = true;  // the watch's end (stream_input) ends it
        internal::unwatch(*this);
        return;
    }
    stream_.close();
    Server& srv = hub_.server;
    // The descriptor just closed may be one the server gave up. An io_uring close is done
    // only once submitted: if it is not free yet, try again a little later.
    srv.refill_reserved_fds();
    if (srv.reserved_short_.load(std::memory_order_relaxed)) {
        srv.pending_posts_.fetch_add(1, std::memory_order_relaxed);
        try {
            weft::spawn("refill-reserved-fds", [&srv] {
                (void)weft::sleep_for(std::chrono::milliseconds(1));
                srv.refill_reserved_fds();
                srv.release(srv.pending_posts_);
            }).detach();
        } catch (...) {
            srv.release(srv.pending_posts_);
        }
    }
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
    const auto quarter = server.options_.header_timeout / 4;
    // Lingering after its last answer, a connection serves nothing more, but closing it with
    // its client's bytes unread may reset the answer away: one that has lingered for a
    // quarter of the header timeout (its client had time to read the answer) goes after the
    // idle ones. (Never reclaimed, clients that announced bodies and trickled them in held
    // every admin connection, and the probes out, for as long as they liked.)
    Connection* c = idle.front();
    if (!c && lingering.front() && now - lingering.front()->queued_at >= quarter)
        c = lingering.front();
    if (c) {
        c->reclaim();
        counts.reclaimed_idle.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    // A connection that has sent no request yet may be about to: its client connected to send
    // one, which may be on the way or already here, unread (closing it then would lose the
    // request). Only one silent for a quarter of the header timeout (a browser's spare
    // connection, an attacker's) makes room, as a slow head does.
    c = fresh.front();
    if (c && now - c->queued_at >= quarter) {
        c->reclaim();
        counts.reclaimed_idle.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    // A request head takes one packet from an honest client: one that has been arriving for a
    // good part of the header timeout, while others wait at the door, is the one to drop.
    // One whose head has come, now running its handler (the queue is left at its next read),
    // is no slow head any more.
    while ((c = slow_heads.front()) && !c->waiting_for_head)
        c->leave_queue();
    if (c && now - c->queued_at >= quarter) {
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
            auto& counts = srv.metrics_.connections();
            (e == Errc::too_many_files ? counts.accept_failed_no_fds : counts.accept_failed_other)
                .fetch_add(1, std::memory_order_relaxed);
            if (e == Errc::too_many_files) {
                // Descriptors held for this moment make room for the newcomers (the admin
                // listener's: probes and scrapes must still be answered).
                if (const std::size_t released = srv.release_reserved_fds(); released > 0) {
                    // Once a minute at most: a scraper comes back every few seconds.
                    const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 Clock::now().time_since_epoch())
                                                 .count();
                    std::int64_t last = srv.reserved_logged_ns_.load(std::memory_order_relaxed);
                    if ((last == 0 || now - last >= std::int64_t(60'000'000'000)) &&
                        srv.reserved_logged_ns_.compare_exchange_strong(last, now)) {
                        log->warn(
                            "out of file descriptors ({}): the listener on {} gave up its {} "
                            "reserved descriptor(s) to accept; it takes them back as its "
                            "connections close",
                            s.error().message(), srv.bound_.to_string(), released);
                    }
                    continue;
                }
                srv.refill_reserved_fds();
                out_of_fds.store(true, std::memory_order_relaxed);
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
            // Descriptors to be had again: no longer out of them, even if no newcomer is
            // waiting for this listener (its accept now waits for one, and /readyz must not
            // keep the load balancer's traffic away meanwhile).
            if (out_of_fds.load(std::memory_order_relaxed)) {
                if (const int probe = ::fcntl(listener_.fd(), F_DUPFD_CLOEXEC, 0); probe >= 0) {
                    ::close(probe);
                    out_of_fds.store(false, std::memory_order_relaxed);
                }
            }
            continue;
        }
        srv.metrics_.connections().accepted.fetch_add(1, std::memory_order_relaxed);
        out_of_fds.store(false, std::memory_order_relaxed);
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

std::unique_ptr<Tail> HubState::take_tail() {
    if (spare_tails_.empty()) return std::make_unique<Tail>();
    std::unique_ptr<Tail> t = std::move(spare_tails_.back());
    spare_tails_.pop_back();
    return t;
}

void HubState::give_back_tail(std::unique_ptr<Tail> t) noexcept {
    if (spare_tails_.size() >= kSpareTails) return;  // freed here
    // A tail may have taken a session's buffer that once grew for a large batch.
    t->bytes.trim(2 * kTailMax);
    try {
        spare_tails_.push_back(std::move(t));
    } catch (...) {
    }
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
