// Patched socket and pipe I/O: connect, accept, read/write and their socket and vector forms,
// sendfile to a socket, and sendmmsg/recvmmsg.
// On a fiber of a patching hub, a call on a descriptor the caller left blocking is made without
// blocking (MSG_DONTWAIT on sockets; a readiness check before each piece on pipes and the like;
// O_NONBLOCK for the length of the call only for connect, accept and sendfile, which have no
// per-call flag); when it would block, only the fiber parks until the descriptor is ready or the
// socket's SO_RCVTIMEO/SO_SNDTIMEO passes. The caller sees libc's results and errno.
// Everywhere else, and on descriptors the caller made nonblocking or that cannot be waited on
// (regular files), the call is libc's own.
#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fd_wait.hpp"
#include "patch/patch.hpp"
#include "weft/core/log.hpp"
#include "weft/core/socket_address.hpp"

namespace weft::detail::patch {

namespace {

bool would_block(ssize_t n) noexcept {
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// A connected stream socket with a named peer (`peer`, `plen`): the kind of descriptor that
// carries a library's exchange, not a listener, a datagram socket, a socketpair's end (an event
// loop's wake-up channel: libcurl's multi handle polls one beside its connections), a pipe or a
// file.
bool connection_socket(int fd, sockaddr_storage& peer, socklen_t& plen) noexcept {
    int type = 0;
    int listening = 0;
    socklen_t len = sizeof type;
    plen = sizeof peer;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
           (len = sizeof listening,
            ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && !listening) &&
           ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0 &&
           !(peer.ss_family == AF_UNIX && plen <= sizeof(sa_family_t));
}

// Parks until `fd` has `events`; false (with errno set) when the wait ended otherwise, or
// could not start (see cannot_park), or `fd` is a connection another fiber waits on in the
// same direction (see refuse_shared).
bool park(HubImpl& h, PatchedCall c, int fd, short events, Deadline dl, int timeout_errno) {
    if (const int e = refuse_park(h, wanted(dl))) {
        abandon(fd);
        errno = e;
        return false;
    }
    const ExclusiveUse use(fd, (events & POLLIN) == 0, h.running());
    if (use.other() && refuse_shared(h, c, fd, use.other())) return false;
    count_wait(h, c);
    auto r = wait_one(h, fd, events, dl);
    if (r) return true;
    errno = wait_errno(r.error(), dl, timeout_errno);
    if (r.error() == Errc::cancelled || (r.error() == Errc::timed_out && !dl.passed())) {
        // A socket shut down now would read as the server's close when called again after
        // EINTR (libpq: "server closed the connection unexpectedly"): the cancel says itself.
        if (abandon(fd) && r.error() == Errc::cancelled) errno = ECANCELED;
    }
    return false;
}

// Retries of a call that would block again right after its descriptor was reported ready, or
// whose readiness nothing signals: from the second such wait in a row, sleeps of 1 ms,
// doubling up to 16 ms.
class Backoff {
  public:
    bool spurious() const noexcept { return ready_again_ >= 2; }
    void waited() noexcept { ++ready_again_; }
    void reset() noexcept { ready_again_ = steps_ = 0; }
    // Sleeps the next step, within `dl`; false (errno set) when the fiber cannot, or `dl`
    // passed (EAGAIN, as the socket's own timeout). `fd` is the descriptor waited for.
    bool sleep(HubImpl& h, int fd, Deadline dl) {
        if (const int e = refuse_park(h, wanted(dl))) {
            abandon(fd);
            errno = e;
            return false;
        }
        if (dl.passed()) {
            errno = EAGAIN;
            return false;
        }
        const auto step = std::chrono::milliseconds(1 << std::min(steps_++, 4));
        if (auto r = this_fiber::sleep_until(earliest(dl, Deadline(step))); !r) {
            const bool shut = abandon(fd);
            errno = r.error() == Errc::cancelled ? (shut ? ECANCELED : EINTR) : ETIMEDOUT;
            return false;
        }
        return true;
    }

  private:
    int ready_again_ = 0;
    int steps_ = 0;
};

// Runs `op(extra_flags)` for a socket call until it does not block. Input calls return as soon
// as they have data; output calls with `all` keep going until every byte is out (a blocking
// stream socket's send), returning what was sent if the wait then fails.
template <class Op>
ssize_t on_socket(HubImpl& h, PatchedCall c, int fd, const FdInfo& info, bool input, Op op,
                  std::size_t total = 0, bool all = false) {
    count(h, c);
    const Deadline dl = after(input ? info.rcv_timeout : info.snd_timeout);
    std::size_t done = 0;
    Backoff backoff;
    for (;;) {
        ssize_t n = op(done, MSG_DONTWAIT);
        if (n >= 0) {
            done += static_cast<std::size_t>(n);
            if (!all || done >= total || n == 0) return static_cast<ssize_t>(done);
            backoff.reset();
            continue;
        }
        if (!would_block(n)) return done > 0 ? static_cast<ssize_t>(done) : -1;
        // Ready, and still it would block: readiness that says nothing (an unconnected Unix
        // datagram socket is always writable, whatever its peer's queue holds). Waiting for
        // readiness again would spin; a short sleep, growing, does not.
        if (fd_now_nonblocking(info, fd)) {  // set through a dup: EAGAIN, as libc's
            errno = EAGAIN;
            return done > 0 ? static_cast<ssize_t>(done) : -1;
        }
        const bool ok = backoff.spurious() ? backoff.sleep(h, fd, dl)
                                           : park(h, c, fd, input ? POLLIN : POLLOUT, dl, EAGAIN);
        if (!ok) return done > 0 ? static_cast<ssize_t>(done) : -1;
        backoff.waited();
    }
}

// A read on a pipe, FIFO, eventfd or terminal the caller left blocking: wait for readiness
// first, then read (which does not block once the descriptor is readable).
template <class Op>
ssize_t read_pollable(HubImpl& h, PatchedCall c, int fd, const FdInfo& info, Op op) {
    count(h, c);
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int r = real::calls().poll(&p, 1, 0);
        if (r != 0) return op();                        // ready, or in error: the read says which
        if (fd_now_nonblocking(info, fd)) return op();  // EAGAIN, as libc's
        if (!park(h, c, fd, POLLIN, Deadline::never(), EAGAIN)) return -1;
    }
}

// O_NONBLOCK on a descriptor for the length of one call, then the caller's flags again. The
// flag belongs to the open file, which fibers of several hubs may use at once (an accept loop
// per hub on one listener): the first of them sets it and the last puts the caller's flags
// back, so that none finds it set by another and calls the blocking libc (which would block
// its hub, or fail with EAGAIN once the other one cleared it) nor clears it under another.
class NonblockingFor {
  public:
    explicit NonblockingFor(int fd) noexcept : fd_(fd) {
        std::lock_guard<std::mutex> g(mu());
        try {
            Shared& sh = shared()[fd];
            if (sh.users++ == 0) {
                sh.set = false;
                sh.flags = real::calls().fcntl(fd, F_GETFL);
                if (sh.flags >= 0 && !(sh.flags & O_NONBLOCK))
                    sh.set = real::calls().fcntl(fd, F_SETFL, sh.flags | O_NONBLOCK) == 0;
            }
            ok_ = sh.set;
            joined_ = true;
        } catch (...) {  // no memory for the entry: the caller's libc call
        }
    }
    ~NonblockingFor() {
        if (!joined_) return;
        const int e = errno;
        std::lock_guard<std::mutex> g(mu());
        auto it = shared().find(fd_);
        if (it != shared().end() && --it->second.users == 0) {
            if (it->second.set) real::calls().fcntl(fd_, F_SETFL, it->second.flags);
            shared().erase(it);
        }
        errno = e;
    }
    bool ok() const noexcept { return ok_; }

  private:
    struct Shared {
        int users = 0;
        int flags = -1;
        bool set = false;
    };
    static std::mutex& mu() noexcept {
        static std::mutex m;
        return m;
    }
    static std::unordered_map<int, Shared>& shared() noexcept {
        static std::unordered_map<int, Shared> m;
        return m;
    }
    int fd_;
    bool ok_ = false;
    bool joined_ = false;
};

// A write on a pipe or the like the caller left blocking: every byte written (as a blocking
// write does), in pieces of at most PIPE_BUF, each once poll(2) says there is room. Linux
// reports a pipe writable when it has a free slot, which takes a PIPE_BUF write without
// blocking; so the descriptor's flags, which a child process may share, are never touched.
template <class Op>
ssize_t write_pollable(HubImpl& h, PatchedCall c, int fd, const FdInfo& info, std::size_t total,
                       Op op) {
    count(h, c);
    std::size_t done = 0;
    for (;;) {
        pollfd p{fd, POLLOUT, 0};
        if (real::calls().poll(&p, 1, 0) == 0) {
            if (fd_now_nonblocking(info, fd)) {  // what fits, or EAGAIN, as libc's
                const ssize_t n = op(done, total - done);
                if (n < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
                return static_cast<ssize_t>(done + static_cast<std::size_t>(n));
            }
            if (!park(h, c, fd, POLLOUT, Deadline::never(), EAGAIN))
                return done > 0 ? static_cast<ssize_t>(done) : -1;
            continue;
        }
        ssize_t n = op(done, std::min<std::size_t>(total - done, PIPE_BUF));
        if (n < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
        done += static_cast<std::size_t>(n);
        if (done >= total || n == 0) return static_cast<ssize_t>(done);
    }
}

// read() or write() done as a socket call on a descriptor the table called a socket, but which
// is not one any more: it was closed where no wrapper saw it (a raw syscall, libc's own internal
// close) and its number reused. Forget what the table knew, so that the caller looks afresh.
bool stale_socket(int fd, ssize_t r) noexcept {
    if (r >= 0 || errno != ENOTSOCK) return false;
    fd_forget(fd);
    return true;
}

// Receives that never wait in the kernel either: the error queue and urgent data give EAGAIN
// at once when empty (parking for POLLIN would wait for unrelated data).
constexpr int kNeverWaits = MSG_DONTWAIT | MSG_ERRQUEUE | MSG_OOB;

// Whether a receive with `flags` must gather the whole length, as the kernel does for
// MSG_WAITALL on a stream socket. Not for a peek (each piece would peek the same bytes again:
// the peek returns what is there) nor on datagram sockets, where the kernel ignores the flag.
bool wait_all(int fd, int flags) noexcept {
    if (!(flags & MSG_WAITALL) || (flags & MSG_PEEK)) return false;
    int type = 0;
    socklen_t len = sizeof type;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

std::size_t iov_total(const iovec* iov, int n) noexcept {
    std::size_t t = 0;
    for (int i = 0; i < n; ++i)
        t += iov[i].iov_len;
    return t;
}

// The buffers of `iov` after the first `skip` bytes (for a write that went out in parts), at
// most `cap` bytes of them.
std::vector<iovec> iov_after(const iovec* iov, int n, std::size_t skip,
                             std::size_t cap = SIZE_MAX) {
    std::vector<iovec> out;
    for (int i = 0; i < n && cap > 0; ++i) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        const std::size_t len = std::min(iov[i].iov_len - skip, cap);
        out.push_back({static_cast<char*>(iov[i].iov_base) + skip, len});
        cap -= len;
        skip = 0;
    }
    return out;
}

}  // namespace

bool refuse_shared(HubImpl& h, PatchedCall c, int fd, const FiberRecord* other) {
    // Standard input, output and error are everyone's (under systemd, output and error are a
    // stream socket to the journal, which every fiber that prints writes to).
    if (fd <= STDERR_FILENO) return false;
    sockaddr_storage peer{};
    socklen_t plen = 0;
    const int saved = errno;
    const bool refuse = connection_socket(fd, peer, plen);
    errno = saved;
    if (!refuse) return false;
    static std::atomic<std::int64_t> next_log_ns{0};
    static std::atomic<std::uint64_t> unlogged{0};
    const std::int64_t now = clock_ns();
    std::int64_t due = next_log_ns.load(std::memory_order_relaxed);
    if (now < due || !next_log_ns.compare_exchange_strong(due, now + 10'000'000'000)) {
        unlogged.fetch_add(1, std::memory_order_relaxed);
        errno = EBUSY;
        return true;
    }
    try {
        const FiberRecord* f = h.running();
        std::string serving;
        if (const FiberLabels* l = f->shown_labels())
            for (int i = 0; i < l->count && i < FiberLabels::kMax; ++i)
                if (l->keys[i])
                    serving += fmt::format("{}{}={}", serving.empty() ? ", serving " : " ",
                                           l->keys[i], l->values[i]);
        std::string to;
        if (peer.ss_family == AF_UNIX) {
            const auto& un = reinterpret_cast<const sockaddr_un&>(peer);
            to = un.sun_path[0] ? std::string(un.sun_path, strnlen(un.sun_path, sizeof un.sun_path))
                                : std::string("an abstract Unix socket");
        } else {
            to = SocketAddress(reinterpret_cast<const sockaddr*>(&peer), plen).to_string();
        }
        // The other fiber is alive while its claim stands, but only one of this hub may be
        // looked at from here.
        const std::string waiter = h.fd_waits().waits(fd, other)
                                       ? fmt::format("fiber '{}' (id {})", other->name, other->id)
                                       : std::string("a fiber of another hub");
        const std::uint64_t more = unlogged.exchange(0, std::memory_order_relaxed);
        weft::logger()->error(
            "two fibers use the connection to {} (descriptor {}) at once: fiber '{}' (id {}{}) "
            "called {} on it while {} waits in one. A library connection (hiredis, "
            "a client socket) kept in a thread_local or a global is shared by every fiber of "
            "its hub: give each fiber its own, or take one from a pool (weft::SharedPool). The "
            "call fails with EBUSY{}",
            to, fd, f->name, f->id, serving, patched_call_name(c), waiter,
            more ? fmt::format(" ({} more such call(s) failed since the last line)", more)
                 : std::string());
    } catch (...) {
    }
    errno = EBUSY;
    return true;
}

bool abandon(int fd) noexcept {
    const int saved = errno;  // the caller's errno is what its caller reads
    bool shut = false;
    sockaddr_storage peer{};
    socklen_t plen = 0;
    if (connection_socket(fd, peer, plen)) shut = ::shutdown(fd, SHUT_RDWR) == 0;
    errno = saved;
    return shut;
}

// connect: a blocking socket connects without blocking the hub; SO_SNDTIMEO bounds it (then
// EINPROGRESS, as libc), a cancel gives EINTR (the connection goes on in the background, as after
// a signal).
int connect_impl(int fd, const sockaddr* addr, socklen_t len) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h) return real.connect(fd, addr, len);
    const FdInfo info = fd_info(fd);
    if (info.kind != FdKind::socket || info.nonblocking) return real.connect(fd, addr, len);
    count(*h, PatchedCall::connect);
    const Deadline dl = after(info.snd_timeout);
    Backoff backoff;
    int r;
    for (;;) {
        {
            NonblockingFor nb(fd);
            if (!nb.ok()) return real.connect(fd, addr, len);
            r = real.connect(fd, addr, len);
        }
        // A Unix socket whose server's backlog is full says EAGAIN where a blocking connect
        // waits for room; nothing signals the room, so the wait is in short sleeps.
        if (r == 0 || errno != EAGAIN || !addr || addr->sa_family != AF_UNIX) break;
        if (!backoff.sleep(*h, fd, dl)) return -1;
    }
    if (r == 0 || errno != EINPROGRESS) return r;
    if (!park(*h, PatchedCall::connect, fd, POLLOUT, dl, EINPROGRESS)) return -1;
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int accept_impl(PatchedCall c, int fd, sockaddr* addr, socklen_t* len, int flags) {
    HubImpl* h = active();
    const auto& real = real::calls();
    auto plain = [&] { return real.accept4(fd, addr, len, flags); };
    int r;
    if (!h) {
        r = plain();
    } else if (FdInfo info = fd_info(fd); info.kind != FdKind::socket || info.nonblocking) {
        r = plain();
    } else {
        count(*h, c);
        const Deadline dl = after(info.rcv_timeout);
        for (;;) {
            {
                NonblockingFor nb(fd);
                if (!nb.ok()) {
                    r = plain();
                    break;
                }
                r = plain();
            }
            if (r >= 0 || !would_block(r)) break;
            if (!park(*h, c, fd, POLLIN, dl, EAGAIN)) return -1;
        }
    }
    // What the table knows of it is looked up when first needed: the kernel copies the
    // listener's SO_RCVTIMEO and SO_SNDTIMEO into it.
    if (r >= 0) fd_forget(r);
    return r;
}

ssize_t recvfrom_impl(PatchedCall c, int fd, void* buf, size_t n, int flags, sockaddr* from,
                      socklen_t* len) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || (flags & kNeverWaits)) return real.recvfrom(fd, buf, n, flags, from, len);
    const FdInfo info = fd_info(fd);
    if (info.kind != FdKind::socket || info.nonblocking)
        return real.recvfrom(fd, buf, n, flags, from, len);
    // MSG_WAITALL on a blocking stream socket: every byte asked for, unless the peer closes or
    // an error or timeout comes first (then what arrived so far).
    const bool all = wait_all(fd, flags);
    return on_socket(
        *h, c, fd, info, true,
        [&](std::size_t done, int extra) {
            return real.recvfrom(fd, static_cast<char*>(buf) + done, n - done, flags | extra, from,
                                 len);
        },
        n, all);
}

ssize_t recvmsg_impl(PatchedCall c, int fd, msghdr* msg, int flags) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || (flags & kNeverWaits)) return real.recvmsg(fd, msg, flags);
    const FdInfo info = fd_info(fd);
    if (info.kind != FdKind::socket || info.nonblocking) return real.recvmsg(fd, msg, flags);
    const bool all = wait_all(fd, flags);
    const std::size_t total = iov_total(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
    return on_socket(
        *h, c, fd, info, true,
        [&](std::size_t done, int extra) -> ssize_t {
            if (done == 0) return real.recvmsg(fd, msg, flags | extra);
            // The rest of a MSG_WAITALL read: into what is left of the buffers.
            auto rest = iov_after(msg->msg_iov, static_cast<int>(msg->msg_iovlen), done);
            msghdr m = *msg;
            m.msg_iov = rest.data();
            m.msg_iovlen = rest.size();
            m.msg_control = nullptr;
            m.msg_controllen = 0;
            const ssize_t r = real.recvmsg(fd, &m, flags | extra);
            msg->msg_flags |= m.msg_flags;
            return r;
        },
        total, all);
}

ssize_t sendto_impl(PatchedCall c, int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                    socklen_t len) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || (flags & MSG_DONTWAIT)) return real.sendto(fd, buf, n, flags, to, len);
    const FdInfo info = fd_info(fd);
    if (info.kind != FdKind::socket || info.nonblocking)
        return real.sendto(fd, buf, n, flags, to, len);
    return on_socket(
        *h, c, fd, info, false,
        [&](std::size_t done, int extra) {
            return real.sendto(fd, static_cast<const char*>(buf) + done, n - done, flags | extra,
                               to, len);
        },
        n, true);
}

ssize_t sendmsg_impl(PatchedCall c, int fd, const msghdr* msg, int flags) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || (flags & MSG_DONTWAIT)) return real.sendmsg(fd, msg, flags);
    const FdInfo info = fd_info(fd);
    if (info.kind != FdKind::socket || info.nonblocking) return real.sendmsg(fd, msg, flags);
    const std::size_t total = iov_total(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
    return on_socket(
        *h, c, fd, info, false,
        [&](std::size_t done, int extra) -> ssize_t {
            if (done == 0) return real.sendmsg(fd, msg, flags | extra);
            // The rest of a stream write: the same message without what went out already.
            auto rest = iov_after(msg->msg_iov, static_cast<int>(msg->msg_iovlen), done);
            msghdr m = *msg;
            m.msg_iov = rest.data();
            m.msg_iovlen = rest.size();
            m.msg_control = nullptr;  // ancillary data went with the first part
            m.msg_controllen = 0;
            return real.sendmsg(fd, &m, flags | extra);
        },
        total, true);
}

ssize_t read_impl(int fd, void* buf, size_t n) {
    HubImpl* h = active();
    const auto& real = real::calls();
    // Nothing to read (a zero-length read checks for errors, and never waits): libc's.
    if (!h || n == 0) return real.read(fd, buf, n);
    const FdInfo info = fd_info(fd);
    if (info.nonblocking) {
        if (info.kind != FdKind::socket) return real.read(fd, buf, n);
        // The socket's own call with MSG_DONTWAIT, as nonblocking as the caller made it: a
        // number that stopped being that socket (closed behind the wrappers, reused by a FIFO
        // opened blocking) fails with ENOTSOCK here instead of holding the hub in read().
        const ssize_t r = real.recv(fd, buf, n, MSG_DONTWAIT);
        if (stale_socket(fd, r)) return read_impl(fd, buf, n);
        return r;
    }
    if (info.kind == FdKind::socket) {
        const ssize_t r =
            on_socket(*h, PatchedCall::read, fd, info, true,
                      [&](std::size_t, int extra) { return real.recv(fd, buf, n, extra); });
        if (stale_socket(fd, r)) return read_impl(fd, buf, n);
        return r;
    }
    if (info.kind == FdKind::pollable)
        return read_pollable(*h, PatchedCall::read, fd, info,
                             [&] { return real.read(fd, buf, n); });
    return real.read(fd, buf, n);
}

ssize_t readv_impl(int fd, const iovec* iov, int n) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h) return real.readv(fd, iov, n);
    const FdInfo info = fd_info(fd);
    if (info.nonblocking) {
        if (info.kind != FdKind::socket) return real.readv(fd, iov, n);
        msghdr m{};  // as read_impl: a stale socket entry fails instead of blocking
        m.msg_iov = const_cast<iovec*>(iov);
        m.msg_iovlen = static_cast<std::size_t>(n);
        const ssize_t r = real.recvmsg(fd, &m, MSG_DONTWAIT);
        if (stale_socket(fd, r)) return readv_impl(fd, iov, n);
        return r;
    }
    if (info.kind == FdKind::socket) {
        const ssize_t r =
            on_socket(*h, PatchedCall::readv, fd, info, true, [&](std::size_t, int extra) {
                msghdr m{};
                m.msg_iov = const_cast<iovec*>(iov);
                m.msg_iovlen = static_cast<std::size_t>(n);
                return real.recvmsg(fd, &m, extra);
            });
        if (stale_socket(fd, r)) return readv_impl(fd, iov, n);
        return r;
    }
    if (info.kind == FdKind::pollable)
        return read_pollable(*h, PatchedCall::readv, fd, info,
                             [&] { return real.readv(fd, iov, n); });
    return real.readv(fd, iov, n);
}

ssize_t write_impl(int fd, const void* buf, size_t n) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || n == 0) return real.write(fd, buf, n);  // as read_impl
    const FdInfo info = fd_info(fd);
    if (info.nonblocking) {
        if (info.kind != FdKind::socket) return real.write(fd, buf, n);
        // As read_impl (SIGPIPE as write's: send without MSG_NOSIGNAL raises it too).
        const ssize_t r = real.send(fd, buf, n, MSG_DONTWAIT);
        if (stale_socket(fd, r)) return write_impl(fd, buf, n);
        return r;
    }
    auto rest = [&](std::size_t done, std::size_t cap) {
        return real.write(fd, static_cast<const char*>(buf) + done, std::min(n - done, cap));
    };
    if (info.kind == FdKind::socket) {
        const ssize_t r = on_socket(
            *h, PatchedCall::write, fd, info, false,
            [&](std::size_t done, int extra) {
                return real.send(fd, static_cast<const char*>(buf) + done, n - done, extra);
            },
            n, true);
        if (stale_socket(fd, r)) return write_impl(fd, buf, n);
        return r;
    }
    if (info.kind == FdKind::pollable)
        return write_pollable(*h, PatchedCall::write, fd, info, n, rest);
    return real.write(fd, buf, n);
}

ssize_t writev_impl(int fd, const iovec* iov, int n) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h) return real.writev(fd, iov, n);
    const FdInfo info = fd_info(fd);
    if (info.nonblocking) {
        if (info.kind != FdKind::socket) return real.writev(fd, iov, n);
        msghdr m{};  // as read_impl
        m.msg_iov = const_cast<iovec*>(iov);
        m.msg_iovlen = static_cast<std::size_t>(n);
        const ssize_t r = real.sendmsg(fd, &m, MSG_DONTWAIT);
        if (stale_socket(fd, r)) return writev_impl(fd, iov, n);
        return r;
    }
    const std::size_t total = iov_total(iov, n);
    auto rest = [&](std::size_t done, std::size_t cap) -> ssize_t {
        auto r = iov_after(iov, n, done, cap);
        return real.writev(fd, r.data(), static_cast<int>(r.size()));
    };
    if (info.kind == FdKind::socket) {
        const ssize_t r = on_socket(
            *h, PatchedCall::writev, fd, info, false,
            [&](std::size_t done, int extra) -> ssize_t {
                auto rest_iov = iov_after(iov, n, done);
                msghdr m{};
                m.msg_iov = rest_iov.data();
                m.msg_iovlen = rest_iov.size();
                return real.sendmsg(fd, &m, extra);
            },
            total, true);
        if (stale_socket(fd, r)) return writev_impl(fd, iov, n);
        return r;
    }
    if (info.kind == FdKind::pollable)
        return write_pollable(*h, PatchedCall::writev, fd, info, total, rest);
    return real.writev(fd, iov, n);
}

// sendfile to a socket the caller left blocking: every byte asked for (as the blocking call
// sends them), the socket nonblocking for each piece (sendfile has no per-call flag), parking
// while its buffer is full. The input is a file: reading it takes disk time, never forever.
// While a piece goes out, the socket's open file is nonblocking for every thread: a blocking
// call another thread makes on it at that moment gets EAGAIN (as with connect and accept).
ssize_t sendfile_impl(int out_fd, int in_fd, off_t* offset, size_t n) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || n == 0) return real.sendfile(out_fd, in_fd, offset, n);
    const FdInfo info = fd_info(out_fd);
    if (info.kind != FdKind::socket || info.nonblocking)
        return real.sendfile(out_fd, in_fd, offset, n);
    count(*h, PatchedCall::sendfile);
    const Deadline dl = after(info.snd_timeout);
    std::size_t done = 0;
    Backoff backoff;
    for (;;) {
        ssize_t r;
        {
            NonblockingFor nb(out_fd);
            if (!nb.ok() && done == 0) return real.sendfile(out_fd, in_fd, offset, n);
            r = real.sendfile(out_fd, in_fd, offset, n - done);
        }
        if (r > 0) {
            done += static_cast<std::size_t>(r);
            backoff.reset();
            if (done >= n) return static_cast<ssize_t>(done);
            continue;
        }
        if (r == 0 || !would_block(r))  // the end of the input, or an error
            return done > 0 ? static_cast<ssize_t>(done) : r;
        if (fd_now_nonblocking(info, out_fd)) {
            errno = EAGAIN;
            return done > 0 ? static_cast<ssize_t>(done) : -1;
        }
        const bool ok = backoff.spurious()
                            ? backoff.sleep(*h, out_fd, dl)
                            : park(*h, PatchedCall::sendfile, out_fd, POLLOUT, dl, EAGAIN);
        if (!ok) return done > 0 ? static_cast<ssize_t>(done) : -1;
        backoff.waited();
    }
}

// sendmmsg on a blocking socket: every message, each whole (on a stream socket a message may
// go out in parts), parking while the socket's buffer is full. Returns how many were sent, or
// -1 when none was.
int sendmmsg_impl(int fd, mmsghdr* vec, unsigned vlen, int flags) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || vlen == 0 || (flags & MSG_DONTWAIT)) return real.sendmmsg(fd, vec, vlen, flags);
    const FdInfo info = fd_info(fd);
    if (info.kind != FdKind::socket || info.nonblocking) return real.sendmmsg(fd, vec, vlen, flags);
    count(*h, PatchedCall::sendmmsg);
    const Deadline dl = after(info.snd_timeout);
    unsigned done = 0;
    Backoff backoff;
    auto wait = [&] {
        if (fd_now_nonblocking(info, fd)) {
            errno = EAGAIN;
            return false;
        }
        const bool ok = backoff.spurious()
                            ? backoff.sleep(*h, fd, dl)
                            : park(*h, PatchedCall::sendmmsg, fd, POLLOUT, dl, EAGAIN);
        backoff.waited();
        return ok;
    };
    for (;;) {
        const int r = real.sendmmsg(fd, vec + done, vlen - done, flags | MSG_DONTWAIT);
        if (r > 0) {
            done += static_cast<unsigned>(r);
            backoff.reset();
            // The last message counted may have gone out in part: the rest, as a blocking
            // send would, before the next.
            mmsghdr& last = vec[done - 1];
            const std::size_t want =
                iov_total(last.msg_hdr.msg_iov, static_cast<int>(last.msg_hdr.msg_iovlen));
            while (last.msg_len < want) {
                auto rest = iov_after(last.msg_hdr.msg_iov,
                                      static_cast<int>(last.msg_hdr.msg_iovlen), last.msg_len);
                msghdr m{};
                m.msg_iov = rest.data();
                m.msg_iovlen = rest.size();
                const ssize_t s = real.sendmsg(fd, &m, flags | MSG_DONTWAIT);
                if (s > 0) {
                    last.msg_len += static_cast<unsigned>(s);
                    backoff.reset();
                } else if (s == 0 || !would_block(s) || !wait()) {
                    return static_cast<int>(done);
                }
            }
            if (done >= vlen) return static_cast<int>(done);
            continue;
        }
        if (r == 0 || !would_block(r)) return done > 0 ? static_cast<int>(done) : r;
        if (!wait()) return done > 0 ? static_cast<int>(done) : -1;
    }
}

// recvmmsg on a blocking socket: waits for the first message (bounded by SO_RCVTIMEO, as the
// kernel's), then for more until `vlen` came (or one, with MSG_WAITFORONE) or `timeout` passed.
// The kernel looks at `timeout` only as each message arrives, and may wait past it; this does
// not. `timeout`, when given, is left holding what remains of it.
int recvmmsg_impl(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout) {
    HubImpl* h = active();
    const auto& real = real::calls();
    if (!h || vlen == 0 || (flags & kNeverWaits))
        return real.recvmmsg(fd, vec, vlen, flags, timeout);
    const FdInfo info = fd_info(fd);
    if (info.kind != FdKind::socket || info.nonblocking)
        return real.recvmmsg(fd, vec, vlen, flags, timeout);
    if (timeout &&
        (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)) {
        errno = EINVAL;
        return -1;
    }
    count(*h, PatchedCall::recvmmsg);
    if (wait_all(fd, flags)) {
        // MSG_WAITALL on a stream: the kernel fills each entry whole before the next. Entry
        // by entry, as recvmsg does it (the call's timeout is not applied here).
        unsigned i = 0;
        for (; i < vlen; ++i) {
            const ssize_t r =
                recvmsg_impl(PatchedCall::recvmmsg, fd, &vec[i].msg_hdr, flags & ~MSG_WAITFORONE);
            if (r < 0) return i > 0 ? static_cast<int>(i) : -1;
            vec[i].msg_len = static_cast<unsigned>(r);
            if (r == 0 || (flags & MSG_WAITFORONE)) return static_cast<int>(i + 1);
        }
        return static_cast<int>(i);
    }
    // SO_RCVTIMEO bounds each message's wait, as in the kernel (a call per message).
    Deadline dl = after(info.rcv_timeout);
    const Deadline call_dl = timeout ? after(timeout->tv_sec, timeout->tv_nsec) : Deadline::never();
    unsigned got = 0;
    auto result = [&](int r) {
        // The kernel writes the time left back only when it received something.
        if (timeout && !call_dl.is_never() && got > 0) {
            const auto left = call_dl.remaining();
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
            timeout->tv_sec = ns > 0 ? static_cast<time_t>(ns / 1'000'000'000) : 0;
            timeout->tv_nsec = ns > 0 ? static_cast<long>(ns % 1'000'000'000) : 0;
        }
        return r;
    };
    Backoff backoff;
    for (;;) {
        if (got > 0) {
            // A socket error that came after some messages stays for the next call, as the
            // kernel keeps it (calling again here would take it, and the caller would never
            // see it).
            pollfd p{fd, POLLIN, 0};
            if (real.poll(&p, 1, 0) > 0 && (p.revents & POLLERR))
                return result(static_cast<int>(got));
        }
        const int r = real.recvmmsg(fd, vec + got, vlen - got, flags | MSG_DONTWAIT, nullptr);
        if (r > 0) {
            got += static_cast<unsigned>(r);
            backoff.reset();
            dl = after(info.rcv_timeout);
            if (got >= vlen || (flags & MSG_WAITFORONE) || call_dl.passed())
                return result(static_cast<int>(got));
            continue;
        }
        if (r == 0 || !would_block(r)) return result(got > 0 ? static_cast<int>(got) : r);
        if (fd_now_nonblocking(info, fd)) {
            errno = EAGAIN;
            return result(got > 0 ? static_cast<int>(got) : -1);
        }
        // Before the first message only the socket's own timeout bounds the wait.
        const Deadline w = got > 0 ? earliest(dl, call_dl) : dl;
        const bool ok = backoff.spurious() ? backoff.sleep(*h, fd, w)
                                           : park(*h, PatchedCall::recvmmsg, fd, POLLIN, w, EAGAIN);
        if (!ok) return result(got > 0 ? static_cast<int>(got) : -1);
        backoff.waited();
    }
}

}  // namespace weft::detail::patch

// The exported wrappers. libweft_core is loaded before libc, so these are the definitions every
// library and plugin of the process binds to.
using namespace weft::detail;
using namespace weft::detail::patch;
using weft::internal::PatchedCall;

extern "C" {

int connect(int fd, const sockaddr* addr, socklen_t len) {
    return connect_impl(fd, addr, len);
}
int accept(int fd, sockaddr* addr, socklen_t* len) {
    return accept_impl(PatchedCall::accept, fd, addr, len, 0);
}
int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    return accept_impl(PatchedCall::accept4, fd, addr, len, flags);
}
ssize_t read(int fd, void* buf, size_t n) {
    return read_impl(fd, buf, n);
}
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
    if (n > buflen) __builtin_trap();  // what fortify's own check does, in effect
    return read_impl(fd, buf, n);
}
ssize_t readv(int fd, const iovec* iov, int n) {
    return readv_impl(fd, iov, n);
}
ssize_t recv(int fd, void* buf, size_t n, int flags) {
    return recvfrom_impl(PatchedCall::recv, fd, buf, n, flags, nullptr, nullptr);
}
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
    if (n > buflen) __builtin_trap();
    return recvfrom_impl(PatchedCall::recv, fd, buf, n, flags, nullptr, nullptr);
}
ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* len) {
    return recvfrom_impl(PatchedCall::recvfrom, fd, buf, n, flags, from, len);
}
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from,
                       socklen_t* len) {
    if (n > buflen) __builtin_trap();
    return recvfrom_impl(PatchedCall::recvfrom, fd, buf, n, flags, from, len);
}
ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    return recvmsg_impl(PatchedCall::recvmsg, fd, msg, flags);
}
ssize_t write(int fd, const void* buf, size_t n) {
    return write_impl(fd, buf, n);
}
ssize_t writev(int fd, const iovec* iov, int n) {
    return writev_impl(fd, iov, n);
}
ssize_t send(int fd, const void* buf, size_t n, int flags) {
    return sendto_impl(PatchedCall::send, fd, buf, n, flags, nullptr, 0);
}
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t len) {
    return sendto_impl(PatchedCall::sendto, fd, buf, n, flags, to, len);
}
ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    return sendmsg_impl(PatchedCall::sendmsg, fd, msg, flags);
}
ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t n) noexcept {
    return sendfile_impl(out_fd, in_fd, offset, n);
}
ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset, size_t n) noexcept {
    static_assert(sizeof(off64_t) == sizeof(off_t));  // one call on 64-bit Linux, as in libc
    return sendfile_impl(out_fd, in_fd, reinterpret_cast<off_t*>(offset), n);
}
int sendmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags) {
    return sendmmsg_impl(fd, vec, vlen, flags);
}
int recvmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout) {
    return recvmmsg_impl(fd, vec, vlen, flags, timeout);
}

}  // extern "C"
