// Patched readiness waits: poll, ppoll, select, pselect, epoll_wait, epoll_pwait. On a fiber of
// a patching hub, a wait with a timeout other than zero first looks without waiting; when
// nothing is ready, only the fiber parks until one of the descriptors is ready or the timeout
// passes, then the call looks again and returns what libc would (counts, revents, fd_sets, the
// remaining select timeout). A fiber cancelled while it waits gets EINTR; one that cannot wait
// (cancelled already, or past its own deadline) ECANCELED or ETIMEDOUT (see park_any()). The
// signal masks of ppoll, pselect and epoll_pwait are not applied while the fiber waits (the hub
// thread's mask stays).
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "fd_wait.hpp"
#include "patch/patch.hpp"

namespace weft::detail::patch {

namespace {

Deadline deadline_ms(int timeout_ms) noexcept {
    if (timeout_ms < 0) return Deadline::never();
    return Deadline(std::chrono::milliseconds(timeout_ms));
}

Deadline deadline_ts(const timespec* ts) noexcept {
    if (!ts) return Deadline::never();
    return after(ts->tv_sec, ts->tv_nsec);
}

bool zero(const timespec* ts) noexcept {
    return ts && ts->tv_sec == 0 && ts->tv_nsec == 0;
}

// Parks until one of `fds` may be ready. false with errno set when the fiber was cancelled
// (EINTR, like a signal), cannot wait any more, or waits alone on a connection another fiber
// waits on (EBUSY, see refuse_shared); true otherwise (ready, or the call's own
// timeout passed: the caller looks again either way).
//
// A fiber that cannot park (cancelled before the call, or past its deadline: the request's,
// say) gets an error a library does not retry: ECANCELED, ETIMEDOUT. EINTR or a count of 0
// would have libpq's wait loop (which retries EINTR) call again at once, forever, and the hub
// would spin instead of running its other fibers.
bool park_any(HubImpl& h, PatchedCall c, const pollfd* fds, nfds_t n, Deadline dl) {
    auto abandon_all = [&] {
        bool shut = false;
        for (nfds_t i = 0; i < n; ++i)
            if (fds[i].fd >= 0) shut = abandon(fds[i].fd) || shut;
        return shut;
    };
    if (const int e = refuse_park(h, wanted(dl))) {
        abandon_all();
        errno = e;
        return false;
    }
    if (dl.passed()) return true;
    std::vector<pollfd> live;
    live.reserve(n);
    for (nfds_t i = 0; i < n; ++i)
        if (fds[i].fd >= 0) live.push_back(fds[i]);
    // A wait on one descriptor, to read or to write, is a library waiting for its connection
    // (libpq's pqSocketPoll): it claims that direction, as a read or a write does (see park),
    // so that a second fiber waiting there is refused. A wait for both directions (a library
    // flushing while it reads) and waits on several descriptors (an event loop's, libcurl's)
    // claim nothing.
    std::optional<ExclusiveUse> use;
    const int dir = live.size() == 1 ? (live[0].events & (POLLIN | POLLOUT)) : 0;
    if (dir == POLLIN || dir == POLLOUT) {
        use.emplace(live[0].fd, dir == POLLOUT, h.running());
        if (use->other() && refuse_shared(h, c, live[0].fd, use->other())) return false;
    }
    count_wait(h, c);
    Result<void> r =
        live.empty() ? this_fiber::sleep_until(dl) : wait_any(h, live.data(), live.size(), dl);
    if (r || r.error() == Errc::closed) return true;
    if (r.error() == Errc::timed_out) {
        if (dl.passed()) return true;
        abandon_all();
        errno = ETIMEDOUT;  // the fiber's deadline came first
        return false;
    }
    // Cancelled: EINTR, as a signal would; ECANCELED when a socket was shut down, which a
    // retry would read as the peer's close.
    errno = abandon_all() ? ECANCELED : EINTR;
    return false;
}

// The patched poll and ppoll.
int poll_on_fiber(HubImpl& h, PatchedCall c, pollfd* fds, nfds_t n, Deadline dl) {
    count(h, c);
    const auto& real = real::calls();
    for (;;) {
        int r = real.poll(fds, n, 0);
        if (r != 0) return r;
        if (dl.passed()) return 0;
        if (!park_any(h, c, fds, n, dl)) return -1;
    }
}

// How many descriptors a select may look at: the size of this process's descriptor table
// (FDSize in /proc/thread-self/status), which bounds what the kernel reads and writes of the
// sets whatever nfds says. The table only grows, so a size read once holds for any nfds up to
// it and is read again only past it. Where it cannot be read (no /proc), the open-file limit:
// no descriptor is above it, so none is dropped.
int select_bound(int nfds) {
    static std::atomic<int> known{FD_SETSIZE};
    const int seen = known.load(std::memory_order_relaxed);
    if (nfds <= seen) return nfds;
    const auto& real = real::calls();
    int size = 0;
    if (const int fd = ::open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC); fd >= 0) {
        char buf[4096];
        const ssize_t n = real.read(fd, buf, sizeof buf - 1);
        real.close(fd);
        if (n > 0) {
            buf[n] = '\0';
            if (const char* line = std::strstr(buf, "\nFDSize:")) {
                const long v = std::strtol(line + 8, nullptr, 10);
                if (v > 0 && v < (1L << 30)) size = static_cast<int>(v);
            }
        }
    }
    if (size == 0) {
        rlimit rl{};
        constexpr rlim_t kMost = rlim_t{1} << 20;  // Linux's default fs.nr_open
        rlim_t most =
            ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? std::max(rl.rlim_cur, rl.rlim_max) : kMost;
        if (most == RLIM_INFINITY || most > kMost) most = kMost;
        return std::min(nfds, static_cast<int>(most));
    }
    if (size > seen) known.store(size, std::memory_order_relaxed);
    return std::min(nfds, size);
}

// The patched select and pselect, in terms of poll: the fd_sets become pollfds to wait on; the
// answer comes from a select with no timeout over the caller's sets. nfds may pass FD_SETSIZE
// (callers with many descriptors allocate larger sets, as Linux allows up to RLIMIT_NOFILE).
int select_on_fiber(HubImpl& h, PatchedCall c, int nfds, fd_set* rd, fd_set* wr, fd_set* ex,
                    Deadline dl) {
    count(h, c);
    if (nfds < 0) {
        errno = EINVAL;
        return -1;
    }
    // The kernel reads and writes no word past its descriptor table, whatever nfds says;
    // neither may we (a caller's select(INT_MAX, ...) on one fd_set works with the kernel).
    nfds = select_bound(nfds);
    // Only the words that hold descriptors below nfds are the caller's: what the kernel reads
    // and writes. A caller may allocate no more than those (libevent, OpenSSH).
    const std::size_t words = (static_cast<std::size_t>(nfds) + NFDBITS - 1) / NFDBITS;
    const std::size_t bytes = words * sizeof(fd_mask);
    std::vector<fd_mask> r0(rd ? words : 0), w0(wr ? words : 0), e0(ex ? words : 0);
    if (rd) std::memcpy(r0.data(), rd, bytes);
    if (wr) std::memcpy(w0.data(), wr, bytes);
    if (ex) std::memcpy(e0.data(), ex, bytes);
    auto restore = [&] {
        if (rd) std::memcpy(rd, r0.data(), bytes);
        if (wr) std::memcpy(wr, w0.data(), bytes);
        if (ex) std::memcpy(ex, e0.data(), bytes);
    };
    auto has = [](const std::vector<fd_mask>& set, int fd) {
        const auto i = static_cast<std::size_t>(fd);
        return !set.empty() && (set[i / NFDBITS] & (fd_mask{1} << (i % NFDBITS))) != 0;
    };
    std::vector<pollfd> fds;
    for (int fd = 0; fd < nfds; ++fd) {
        short ev = 0;
        if (has(r0, fd)) ev |= POLLIN;
        if (has(w0, fd)) ev |= POLLOUT;
        if (has(e0, fd)) ev |= POLLPRI;
        if (ev) fds.push_back({fd, ev, 0});
    }
    const auto& real = real::calls();
    for (;;) {
        restore();
        timeval none{0, 0};
        int r = real.select(nfds, rd, wr, ex, &none);
        if (r != 0) return r;
        if (dl.passed()) return 0;
        if (!park_any(h, c, fds.data(), fds.size(), dl)) {
            const int e = errno;
            restore();  // as Linux leaves the sets on an error
            errno = e;
            return -1;
        }
    }
}

int epoll_on_fiber(HubImpl& h, PatchedCall c, int epfd, epoll_event* ev, int max, Deadline dl) {
    count(h, c);
    const auto& real = real::calls();
    for (;;) {
        int r = real.epoll_wait(epfd, ev, max, 0);
        if (r != 0) return r;
        if (dl.passed()) return 0;
        const pollfd p{epfd, POLLIN, 0};
        if (!park_any(h, c, &p, 1, dl)) return -1;
    }
}

}  // namespace

}  // namespace weft::detail::patch

using namespace weft::detail;
using namespace weft::detail::patch;
using weft::internal::PatchedCall;

extern "C" {

int poll(pollfd* fds, nfds_t n, int timeout) {
    HubImpl* h = active();
    if (!h || timeout == 0) return real::calls().poll(fds, n, timeout);
    return poll_on_fiber(*h, PatchedCall::poll, fds, n, deadline_ms(timeout));
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
    if (fdslen / sizeof(pollfd) < n) __builtin_trap();
    return poll(fds, n, timeout);
}

int ppoll(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask) {
    HubImpl* h = active();
    if (!h || zero(ts)) return real::calls().ppoll(fds, n, ts, mask);
    return poll_on_fiber(*h, PatchedCall::ppoll, fds, n, deadline_ts(ts));
}

// What _FORTIFY_SOURCE makes of ppoll() on an array of known size.
int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask, size_t fdslen) {
    if (fdslen / sizeof(pollfd) < n) __builtin_trap();
    return ppoll(fds, n, ts, mask);
}

int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* tv) {
    HubImpl* h = active();
    if (!h || (tv && tv->tv_sec == 0 && tv->tv_usec == 0))
        return real::calls().select(nfds, rd, wr, ex, tv);
    weft::Deadline dl =
        tv ? after(tv->tv_sec, std::int64_t{tv->tv_usec} * 1000) : weft::Deadline::never();
    int r = select_on_fiber(*h, PatchedCall::select, nfds, rd, wr, ex, dl);
    if (tv) {  // Linux's select leaves the time not slept in the timeout
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(dl.remaining());
        tv->tv_sec = static_cast<time_t>(left.count() / 1'000'000);
        tv->tv_usec = static_cast<suseconds_t>(left.count() % 1'000'000);
    }
    return r;
}

int pselect(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, const timespec* ts,
            const sigset_t* mask) {
    HubImpl* h = active();
    if (!h || zero(ts)) return real::calls().pselect(nfds, rd, wr, ex, ts, mask);
    return select_on_fiber(*h, PatchedCall::pselect, nfds, rd, wr, ex, deadline_ts(ts));
}

int epoll_wait(int epfd, epoll_event* ev, int max, int timeout) {
    HubImpl* h = active();
    if (!h || timeout == 0) return real::calls().epoll_wait(epfd, ev, max, timeout);
    return epoll_on_fiber(*h, PatchedCall::epoll_wait, epfd, ev, max, deadline_ms(timeout));
}

int epoll_pwait(int epfd, epoll_event* ev, int max, int timeout, const sigset_t* mask) {
    HubImpl* h = active();
    if (!h || timeout == 0) return real::calls().epoll_pwait(epfd, ev, max, timeout, mask);
    return epoll_on_fiber(*h, PatchedCall::epoll_pwait, epfd, ev, max, deadline_ms(timeout));
}

}  // extern "C"
