// epoll backend: the fallback when io_uring is refused (a container's seccomp profile, an old
// kernel) or chosen by configuration. Non-blocking sockets registered edge-triggered once; a
// fiber tries the system call first and parks on readiness only after EAGAIN.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include "hub_impl.hpp"
#include "io_backend.hpp"
#include "log.hpp"
#include "patch/real.hpp"

namespace weft::detail {

namespace {

class EpollBackend;

struct FdWaiter;
struct WatchState;

struct PollWaiter;

struct FdSlot {
    // Fibers parked until the descriptor is readable / writable (several may be: two
    // acceptors of one listener), oldest first; an event wakes them all, to look again.
    FdWaiter* reader = nullptr;
    FdWaiter* writer = nullptr;
    WatchState* watch = nullptr;
    PollWaiter* polls = nullptr;  ///< fibers in wait_fd()/wait_fds() on this descriptor
    bool registered = false;      ///< one of ours: edge-triggered for every event
    /// Someone else's descriptor that a wait added to the set: level-triggered and one-shot,
    /// re-armed (EPOLL_CTL_MOD) by each wait and never deleted (closing the descriptor takes
    /// it out; a MOD that finds it gone adds it again).
    bool foreign_added = false;
};

struct PollGroup;

/// One descriptor of a wait_fds(): in its slot's list until the group wakes.
struct PollWaiter {
    PollWaiter* prev = nullptr;
    PollWaiter* next = nullptr;
    PollGroup* group = nullptr;
    int fd = -1;
    std::uint32_t events = 0;  ///< EPOLLIN / EPOLLOUT / EPOLLPRI
    std::uint32_t fired = 0;   ///< the epoll events that woke the group, if this one did
};

/// The fiber of a wait_fds(): woken by the first of its descriptors to be ready.
struct PollGroup final : Interruptible {
    EpollBackend* be = nullptr;
    FiberRecord* fiber = nullptr;
    PollWaiter* waiters = nullptr;
    std::size_t n = 0;
    void interrupt(FiberRecord* f, Errc why) noexcept override;
};

struct FdWaiter final : Interruptible {
    EpollBackend* be = nullptr;
    int fd = -1;
    bool write = false;
    FiberRecord* fiber = nullptr;
    FdWaiter* prev = nullptr;
    FdWaiter* next = nullptr;
    void interrupt(FiberRecord* f, Errc why) noexcept override;
};

void link_waiter(FdWaiter*& head, FdWaiter* w) noexcept {
    w->prev = w->next = nullptr;
    if (!head) {
        head = w;
        return;
    }
    FdWaiter* last = head;
    while (last->next)
        last = last->next;
    last->next = w;
    w->prev = last;
}

void unlink_waiter(FdWaiter*& head, FdWaiter* w) noexcept {
    if (w->prev)
        w->prev->next = w->next;
    else if (head == w)
        head = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = nullptr;
}

struct WatchState {
    EpollBackend* be = nullptr;
    internal::RecvWatcher* watcher = nullptr;
    int fd = -1;
    bool detached = false;
    TimerNode timer;
};

class EpollBackend final : public IoBackend {
  public:
    EpollBackend(HubImpl& hub, const RuntimeOptions& o);
    ~EpollBackend() override;

    const char* name() const noexcept override { return "epoll"; }
    void poll(std::int64_t timeout_ns) override;
    void cancel_all() noexcept override;
    std::size_t pending_ops() const noexcept override { return watches_; }
    int socket_flags() const noexcept override { return SOCK_NONBLOCK; }

    Result<std::size_t> recv(int fd, char* buf, std::size_t len, Deadline dl) override;
    Result<RecvBuffer> recv_buffer(int fd, Deadline dl) override;
    Result<std::size_t> send(int fd, const char* buf, std::size_t len, Deadline dl) override;
    Result<std::size_t> sendmsg(int fd, const iovec* iov, int iovcnt, Deadline dl) override;
    Result<void> connect(int fd, const sockaddr* addr, socklen_t len, Deadline dl) override;
    Result<int> accept(ListenState& ls, Deadline dl) override;
    Result<short> wait_fd(int fd, short events, Deadline dl) override;
    Result<void> wait_fds(pollfd* fds, std::size_t n, Deadline dl) override;
    /// Takes every waiter of `g` out of its slot.
    void detach_group(PollGroup& g) noexcept;
    void listen_open(ListenState&) noexcept override {}
    void listen_close(std::unique_ptr<ListenState> ls) noexcept override;
    void close(int fd) noexcept override;
    void watch(int fd, internal::RecvWatcher& w, Deadline dl) override;
    void unwatch(internal::RecvWatcher& w) noexcept override;

    FdSlot& slot(int fd) {
        if (static_cast<std::size_t>(fd) >= slots_.size()) slots_.resize(fd + 1024);
        return slots_[fd];
    }
    HubImpl& hub() noexcept { return hub_; }

  private:
    /// Parks until `fd` is readable (or writable); the socket must have returned EAGAIN.
    Result<void> wait_ready(int fd, bool write, Deadline dl, const char* reason);
    bool ensure_registered(int fd) noexcept;
    void on_readable(int fd, FdSlot& s) noexcept;
    /// Wakes every fiber of a reader or writer list with `why`.
    void wake_waiters(FdWaiter*& head, Errc why) noexcept;
    void wake_polls(int fd, FdSlot& s, std::uint32_t ev) noexcept;
    /// Arms a foreign descriptor (one-shot, level-triggered) for its waiters' events; false
    /// when epoll refuses the descriptor (a regular file: always ready).
    bool arm_foreign(int fd, FdSlot& s) noexcept;
    void finish_watch(WatchState* ws, Result<RecvBuffer> r) noexcept;
    bool detach_watch(WatchState* ws) noexcept;
    void deliver(WatchState* ws, Result<RecvBuffer> r) noexcept;
    char* get_buffer() noexcept;
    static void release_buffer(void* owner, std::uint32_t, char* data) noexcept;
    static void watch_timer_fired(TimerNode* n) noexcept;
    static void release_listen(ListenState* ls) noexcept {
        if (ls->users == 0) delete ls;
    }

    HubImpl& hub_;
    int epfd_ = -1;
    std::vector<FdSlot> slots_;
    std::vector<char*> free_bufs_;
    std::size_t buf_size_;
    std::size_t max_cached_bufs_;
    std::size_t watches_ = 0;
};

void PollGroup::interrupt(FiberRecord* f, Errc why) noexcept {
    be->detach_group(*this);
    be->hub().make_ready(f, why);
}

void FdWaiter::interrupt(FiberRecord* f, Errc why) noexcept {
    FdSlot& s = be->slot(fd);
    unlink_waiter(write ? s.writer : s.reader, this);  // only this one: others stay parked
    be->hub().make_ready(f, why);
}

void EpollBackend::wake_waiters(FdWaiter*& head, Errc why) noexcept {
    while (FdWaiter* w = head) {
        unlink_waiter(head, w);
        hub_.make_ready(w->fiber, why);
    }
}

EpollBackend::EpollBackend(HubImpl& hub, const RuntimeOptions& o)
    : hub_(hub),
      buf_size_(o.recv_buffer_size ? o.recv_buffer_size : 16 * 1024),
      max_cached_bufs_(o.recv_buffers ? o.recv_buffers : 512) {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = hub.wake_fd();
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, hub.wake_fd(), &ev) < 0)
        throw std::system_error(errno, std::system_category(), "epoll_ctl(eventfd)");
    slots_.resize(1024);
}

EpollBackend::~EpollBackend() {
    ::close(epfd_);
    for (char* b : free_bufs_)
        std::free(b);
}

bool EpollBackend::ensure_registered(int fd) noexcept {
    FdSlot& s = slot(fd);
    if (s.registered) return true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, s.foreign_added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0) {
        // The set holds it already (as a foreign one we did not know of), or no longer does.
        const int op = errno == EEXIST ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (errno != EEXIST && errno != ENOENT) return false;
        if (::epoll_ctl(epfd_, op, fd, &ev) < 0) return false;
    }
    s.registered = true;
    s.foreign_added = false;
    return true;
}

bool EpollBackend::arm_foreign(int fd, FdSlot& s) noexcept {
    if (s.registered) return true;  // ours: every edge is seen anyway
    std::uint32_t want = 0;
    for (PollWaiter* w = s.polls; w; w = w->next)
        want |= w->events;
    if (want == 0) return true;  // left dormant: a one-shot fires at most once more
    epoll_event ev{};
    ev.events = want | EPOLLONESHOT;
    ev.data.fd = fd;
    // One system call per wait: re-arm what an earlier wait added. A descriptor closed since
    // (and maybe its number reused) is gone from the set: add it.
    if (s.foreign_added && ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) return true;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0 &&
        (errno != EEXIST || ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0))
        return false;
    s.foreign_added = true;
    return true;
}

void EpollBackend::detach_group(PollGroup& g) noexcept {
    for (std::size_t i = 0; i < g.n; ++i) {
        PollWaiter& w = g.waiters[i];
        if (w.group == nullptr) continue;  // never attached
        FdSlot& s = slot(w.fd);
        if (w.prev)
            w.prev->next = w.next;
        else
            s.polls = w.next;
        if (w.next) w.next->prev = w.prev;
        w.group = nullptr;
    }
}

void EpollBackend::wake_polls(int fd, FdSlot& s, std::uint32_t ev) noexcept {
    // Waking a group takes its waiters out of this list: start over after each.
    for (PollWaiter* w = s.polls; w;) {
        if ((w->events | EPOLLERR | EPOLLHUP) & ev) {
            w->fired = ev;
            PollGroup* g = w->group;
            detach_group(*g);
            hub_.make_ready(g->fiber, Errc::ok);
            w = s.polls;
        } else {
            w = w->next;
        }
    }
    // The one-shot fired: waiters for other events still need it.
    if (s.polls) arm_foreign(fd, s);
}

void EpollBackend::poll(std::int64_t timeout_ns) {
    epoll_event events[256];
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1'000'000'000;
        ts.tv_nsec = timeout_ns % 1'000'000'000;
        tsp = &ts;
    }
    int n = ::epoll_pwait2(epfd_, events, 256, tsp, nullptr);
    hub_.woke(timeout_ns != 0);
    if (n < 0) {
        if (errno != EINTR) core_log().error("epoll_pwait2 failed: {}", std::strerror(errno));
        return;
    }
    for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        std::uint32_t ev = events[i].events;
        if (fd == hub_.wake_fd()) {
            std::uint64_t v;
            while (real::calls().read(fd, &v, sizeof v) > 0) {
            }
            continue;
        }
        FdSlot& s = slot(fd);
        if (s.polls) wake_polls(fd, s, ev);
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) on_readable(fd, s);
        if ((ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && s.writer) wake_waiters(s.writer, Errc::ok);
    }
    // A watched descriptor's event costs a recv() here: more than one dates the slice back.
    hub_.handled(n > 1);
}

void EpollBackend::on_readable(int fd, FdSlot& s) noexcept {
    if (s.reader) wake_waiters(s.reader, Errc::ok);
    if (WatchState* ws = s.watch) {
        char* buf = get_buffer();
        if (!buf) return;
        ssize_t n = real::calls().recv(fd, buf, buf_size_, MSG_DONTWAIT);
        if (n > 0) {
            finish_watch(ws, internal::RecvBufferAccess::make(buf, static_cast<std::size_t>(n),
                                                              &release_buffer, this, 0));
            return;
        }
        release_buffer(this, 0, buf);
        if (n == 0)
            finish_watch(ws, Errc::eof);
        else if (errno != EAGAIN && errno != EINTR)
            finish_watch(ws, Error::from_errno(errno));
    }
}

void EpollBackend::cancel_all() noexcept {
    std::vector<WatchState*> all;
    for (auto& s : slots_)
        if (s.watch) all.push_back(s.watch);
    for (WatchState* ws : all)
        finish_watch(ws, Errc::cancelled);
}

Result<void> EpollBackend::wait_ready(int fd, bool write, Deadline dl, const char* reason) {
    if (auto r = hub_.check_interrupt(dl); !r) return r;
    if (!ensure_registered(fd)) return Error::from_errno(errno);
    FdWaiter w;
    w.be = this;
    w.fd = fd;
    w.write = write;
    w.fiber = hub_.running();
    FdSlot& s = slot(fd);
    link_waiter(write ? s.writer : s.reader, &w);
    return hub_.park(&w, dl, reason);
}

Result<std::size_t> EpollBackend::recv(int fd, char* buf, std::size_t len, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    for (;;) {
        ssize_t n = real::calls().recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return Error::from_errno(errno);
        if (auto r = wait_ready(fd, false, dl, "recv"); !r) return r.error();
    }
}

char* EpollBackend::get_buffer() noexcept {
    if (!free_bufs_.empty()) {
        char* b = free_bufs_.back();
        free_bufs_.pop_back();
        return b;
    }
    return static_cast<char*>(std::malloc(buf_size_));
}

void EpollBackend::release_buffer(void* owner, std::uint32_t, char* data) noexcept {
    auto* be = static_cast<EpollBackend*>(owner);
    if (be->free_bufs_.size() < be->max_cached_bufs_)
        be->free_bufs_.push_back(data);
    else
        std::free(data);
}

Result<RecvBuffer> EpollBackend::recv_buffer(int fd, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    for (;;) {
        char* buf = get_buffer();
        if (!buf) return Error(Errc::system, ENOMEM);
        ssize_t n = real::calls().recv(fd, buf, buf_size_, MSG_DONTWAIT);
        if (n > 0)
            return internal::RecvBufferAccess::make(buf, static_cast<std::size_t>(n),
                                                    &release_buffer, this, 0);
        int e = errno;
        release_buffer(this, 0, buf);
        if (n == 0) return Errc::eof;
        if (e == EINTR) continue;
        if (e != EAGAIN) return Error::from_errno(e);
        // Wait without holding a buffer.
        if (auto r = wait_ready(fd, false, dl, "recv"); !r) return r.error();
    }
}

Result<std::size_t> EpollBackend::send(int fd, const char* buf, std::size_t len, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    for (;;) {
        ssize_t n = real::calls().send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return Error::from_errno(errno);
        if (auto r = wait_ready(fd, true, dl, "send"); !r) return r.error();
    }
}

Result<std::size_t> EpollBackend::sendmsg(int fd, const iovec* iov, int iovcnt, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
    for (;;) {
        ssize_t n = real::calls().sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return Error::from_errno(errno);
        if (auto r = wait_ready(fd, true, dl, "send"); !r) return r.error();
    }
}

Result<void> EpollBackend::connect(int fd, const sockaddr* addr, socklen_t len, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    if (real::calls().connect(fd, addr, len) == 0) return {};
    if (errno != EINPROGRESS && errno != EINTR) return Error::from_errno(errno);
    if (auto r = wait_ready(fd, true, dl, "connect"); !r) return r.error();
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) return Error::from_errno(errno);
    if (err != 0) return Error::from_errno(err);
    return {};
}

Result<int> EpollBackend::accept(ListenState& ls, Deadline dl) {
    ListenUse use(ls, &EpollBackend::release_listen);
    for (;;) {
        if (ls.closing) return Errc::closed;
        if (auto r = hub_.check_interrupt(dl); !r) return r.error();
        int fd = real::calls().accept4(ls.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) return fd;
        int e = errno;
        if (e == EINTR || e == ECONNABORTED) continue;
        if (e != EAGAIN) return Error::from_errno(e);
        if (auto r = wait_ready(ls.fd, false, dl, "accept"); !r) return r.error();
    }
}

Result<void> EpollBackend::wait_fds(pollfd* fds, std::size_t n, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r;
    constexpr std::size_t kInline = 8;
    PollWaiter inline_waiters[kInline];
    std::unique_ptr<PollWaiter[]> heap_waiters;
    PollGroup g;
    g.be = this;
    g.fiber = hub_.running();
    g.waiters = inline_waiters;
    if (n > kInline) {
        heap_waiters = std::make_unique<PollWaiter[]>(n);
        g.waiters = heap_waiters.get();
    }
    g.n = n;
    bool edge_triggered = false;
    for (std::size_t i = 0; i < n; ++i) {
        PollWaiter& w = g.waiters[i];
        w.fd = fds[i].fd;
        // Every poll event has its epoll twin; errors and hang-ups are reported to every poll
        // (events 0 included: a wait for the end of a descriptor) and are waited for too.
        const short e = fds[i].events;
        w.events = ((e & (POLLIN | POLLRDNORM)) ? EPOLLIN : 0u) |
                   ((e & (POLLOUT | POLLWRNORM)) ? EPOLLOUT : 0u) |
                   ((e & POLLRDBAND) ? EPOLLRDBAND : 0u) | ((e & POLLWRBAND) ? EPOLLWRBAND : 0u) |
                   ((e & POLLPRI) ? EPOLLPRI : 0u) | ((e & POLLRDHUP) ? EPOLLRDHUP : 0u) |
                   EPOLLERR | EPOLLHUP;
        if (w.fd < 0) continue;
        FdSlot& s = slot(w.fd);
        w.group = &g;
        w.prev = nullptr;
        w.next = s.polls;
        if (s.polls) s.polls->prev = &w;
        s.polls = &w;
        edge_triggered = edge_triggered || s.registered;
        if (!arm_foreign(w.fd, s)) {
            // epoll refused it (a regular file: EPERM), or it is not open (EBADF): poll tells.
            detach_group(g);
            return {};
        }
    }
    // A level-triggered arm reports a descriptor that is ready already; one of our own sockets
    // (edge-triggered) may have had its edge before we listened: look once.
    if (edge_triggered && real::calls().poll(fds, n, 0) != 0) {
        detach_group(g);
        return {};
    }
    auto r = hub_.park(&g, dl, "poll");
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t ev = g.waiters[i].fired;
        fds[i].revents = static_cast<short>(
            ((ev & EPOLLIN) ? POLLIN : 0) | ((ev & EPOLLOUT) ? POLLOUT : 0) |
            ((ev & EPOLLPRI) ? POLLPRI : 0) | ((ev & EPOLLERR) ? POLLERR : 0) |
            ((ev & EPOLLHUP) ? POLLHUP : 0) | ((ev & EPOLLRDHUP) ? POLLRDHUP : 0));
    }
    return r;
}

Result<short> EpollBackend::wait_fd(int fd, short events, Deadline dl) {
    pollfd p{fd, events, 0};
    for (;;) {
        p.revents = 0;
        if (auto w = wait_fds(&p, 1, dl); !w) return w.error();
        if (p.revents) return p.revents;
        // Returned at once without an event (a regular file, a descriptor not open), or woken
        // for another waiter's events: poll(2) says which.
        p.revents = 0;
        const int r = real::calls().poll(&p, 1, 0);
        if (r > 0) return p.revents;
        if (r < 0 && errno != EINTR) return Error::from_errno(errno);
    }
}

void EpollBackend::listen_close(std::unique_ptr<ListenState> owned) noexcept {
    ListenState* ls = owned.release();
    ls->closing = true;
    ::shutdown(ls->fd, SHUT_RDWR);
    FdSlot& s = slot(ls->fd);
    wake_waiters(s.reader, Errc::closed);
    close(ls->fd);
    release_listen(ls);  // or the last fiber leaving accept() frees it
}

void EpollBackend::close(int fd) noexcept {
    if (fd < 0) return;
    FdSlot& s = slot(fd);
    WEFT_ASSERT(!s.reader && !s.writer, "close() while a fiber waits on the socket");
    if (WatchState* ws = s.watch; ws && detach_watch(ws))
        hub_.defer([ws] { ws->be->deliver(ws, Errc::cancelled); });
    while (PollWaiter* w = s.polls)  // a close wakes whoever waits on the descriptor
        w->group->interrupt(w->group->fiber, Errc::closed);
    s = FdSlot{};
    ::close(fd);
}

// ---------------------------------------------------------------------------------------------
// Fiber-less watch.

void EpollBackend::watch(int fd, internal::RecvWatcher& w, Deadline dl) {
    auto* ws = new WatchState();
    ws->be = this;
    ws->watcher = &w;
    ws->fd = fd;
    watcher_op(w) = ws;
    ++watches_;
    slot(fd).watch = ws;
    if (!dl.is_never()) {
        ws->timer.when_ns = deadline_ns(dl);
        ws->timer.fire = &EpollBackend::watch_timer_fired;
        hub_.add_timer(&ws->timer);
    }
    if (!ensure_registered(fd)) {
        int e = errno;
        hub_.defer([ws, e] { ws->be->finish_watch(ws, Error::from_errno(e)); });
        return;
    }
    // Bytes may already be waiting (their edge passed while nobody watched): look once, soon.
    hub_.defer([this, fd, ws] {
        FdSlot& s = slot(fd);
        if (s.watch == ws) on_readable(fd, s);
    });
}

void EpollBackend::watch_timer_fired(TimerNode* n) noexcept {
    auto* ws =
        reinterpret_cast<WatchState*>(reinterpret_cast<char*>(n) - offsetof(WatchState, timer));
    ws->be->finish_watch(ws, Errc::timed_out);
}

void EpollBackend::unwatch(internal::RecvWatcher& w) noexcept {
    auto* ws = static_cast<WatchState*>(watcher_op(w));
    // Deliver the cancellation from the loop, never inside the caller.
    if (ws && detach_watch(ws)) hub_.defer([ws] { ws->be->deliver(ws, Errc::cancelled); });
}

bool EpollBackend::detach_watch(WatchState* ws) noexcept {
    if (ws->detached) return false;
    ws->detached = true;
    FdSlot& s = slot(ws->fd);
    if (s.watch == ws) s.watch = nullptr;
    if (ws->timer.armed()) hub_.remove_timer(&ws->timer);
    return true;
}

void EpollBackend::deliver(WatchState* ws, Result<RecvBuffer> r) noexcept {
    internal::RecvWatcher* rw = ws->watcher;
    watcher_op(*rw) = nullptr;
    --watches_;
    delete ws;
    rw->on_recv(std::move(r));
}

void EpollBackend::finish_watch(WatchState* ws, Result<RecvBuffer> r) noexcept {
    if (detach_watch(ws)) deliver(ws, std::move(r));
}

}  // namespace

std::unique_ptr<IoBackend> make_epoll_backend(HubImpl& hub, const RuntimeOptions& o) {
    return std::make_unique<EpollBackend>(hub, o);
}

}  // namespace weft::detail
