// Shared by the patched libc calls: whether the caller is a fiber of a hub that patches, the
// per-hub counters, and how a failed wait reads as errno.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>

#include "hub_impl.hpp"
#include "patch/fd_table.hpp"
#include "patch/real.hpp"
#include "weft/core/internal/patched_calls.hpp"

namespace weft::detail::patch {

using internal::PatchedCall;

/// Set in the child of a fork() made while hubs existed: it has copies of them, not hubs, so
/// every call is libc's.
extern bool g_forked;

/// The hub whose fiber makes this call, when the call is to be patched; nullptr otherwise (the
/// common case off the hubs: one thread-local load and a branch).
[[gnu::always_inline]] inline HubImpl* active() noexcept {
    HubImpl* h = HubImpl::current();
    if (__builtin_expect(h == nullptr, 1)) return nullptr;
    if (!h->patching() || !h->running() || g_forked) return nullptr;
    return h;
}

inline void bump(std::atomic<std::uint64_t>& a) noexcept {
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
/// One patched call (hub thread).
inline void count(HubImpl& h, PatchedCall c) noexcept {
    bump(h.mutable_probe().patched_calls[static_cast<std::size_t>(c)]);
}
/// One park of a patched call.
inline void count_wait(HubImpl& h, PatchedCall c) noexcept {
    bump(h.mutable_probe().patched_waits[static_cast<std::size_t>(c)]);
}

/// errno for a wait that ended without the descriptor being ready: the call's own timeout
/// (`dl`) reads as `timeout_errno` (EAGAIN for SO_RCVTIMEO, as libc), the fiber's deadline as
/// ETIMEDOUT, a cancel as EINTR (the fiber should stop; called again, it gets ECANCELED: see
/// cannot_park; a socket the cancel shut down gets ECANCELED at once: see abandon), a close of
/// the descriptor as EBADF.
inline int wait_errno(const Error& e, Deadline dl, int timeout_errno) noexcept {
    switch (e.code) {
        case Errc::timed_out:
            return dl.passed() ? timeout_errno : ETIMEDOUT;
        case Errc::cancelled:
            return EINTR;
        case Errc::closed:
            return EBADF;
        default:
            return e.sys_errno ? e.sys_errno : EIO;
    }
}

/// 0 when the calling fiber may park for a patched call. One that cannot (cancelled, or past
/// its own deadline: the request's) gets an error a library does not retry, ECANCELED or
/// ETIMEDOUT, returned here: EINTR or EAGAIN would have a retrying caller (libpq's and
/// hiredis's loops, a plain `while (read(...) < 0 && errno == EINTR)`) call again at once,
/// forever, and the hub spin instead of running its other fibers.
inline int cannot_park(HubImpl& h) noexcept {
    auto r = h.check_interrupt(Deadline::never());
    if (r) return 0;
    return r.error() == Errc::cancelled ? ECANCELED : ETIMEDOUT;
}

/// The longest a patched call pauses once its fiber cannot wait any more (see refuse_park and
/// the patched sleeps): short, so that code winding down after a 504 or a hang-up ends soon,
/// but not nothing, so that a retry loop cannot spin its hub.
constexpr std::chrono::nanoseconds kPauseWhenOver = std::chrono::milliseconds(10);

/// Waits `d` (at most kPauseWhenOver) although the fiber is cancelled or past its deadline:
/// neither ends this wait, and a cancellation that comes meanwhile stays for the next call.
void pause_when_over(HubImpl& h, std::chrono::nanoseconds d);

/// Sets the running fiber's own deadline and a cancel aside for a wait that neither may end
/// (a cancel that came before would otherwise keep park() from arming the wait's own timer).
/// A cancel that comes meanwhile stays requested.
struct InterruptsAside {
    FiberRecord* f;
    std::int64_t deadline;
    bool cancelled;
    explicit InterruptsAside(FiberRecord* fiber) noexcept
        : f(fiber), deadline(fiber->deadline_ns), cancelled(fiber->cancel_requested) {
        f->deadline_ns = INT64_MAX;
        f->cancel_requested = false;
    }
    ~InterruptsAside() {
        f->deadline_ns = deadline;
        f->cancel_requested = f->cancel_requested || cancelled;
    }
    InterruptsAside(const InterruptsAside&) = delete;
    InterruptsAside& operator=(const InterruptsAside&) = delete;
};

/// cannot_park() for a call that would park, with a brake: the first refusal returns at once
/// (a library that stops on ECANCELED or ETIMEDOUT, as libpq and hiredis do, loses no time),
/// a later one of the same fiber pauses first (`wanted`, the call's own timeout, at most
/// kPauseWhenOver), so that a loop that ignores the error (poll, fail, poll again) calls at
/// most a hundred times a second instead of spinning its hub.
inline int refuse_park(HubImpl& h, std::chrono::nanoseconds wanted) {
    const int e = cannot_park(h);
    if (e == 0) return 0;
    FiberRecord* f = h.running();
    if (f->park_refused) {
        if (wanted.count() > 0) pause_when_over(h, wanted);
    } else {
        f->park_refused = true;
    }
    return e;
}
/// The time left to `dl`, as refuse_park's `wanted` (a never-ending wait wants the longest).
inline std::chrono::nanoseconds wanted(Deadline dl) noexcept {
    if (dl.is_never()) return kPauseWhenOver;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(dl.remaining());
}

/// A library's wait on `fd` was cut short by the fiber (a cancellation, or its own deadline:
/// the request's), not by the call's timeout. The exchange the library was in the middle of
/// (a query sent, its answer unread) is lost to it, yet the connection would look healthy:
/// libpq keeps CONNECTION_OK, and the next query on it reads this one's rows. A connected
/// stream socket is shut down, so that the library's next use of it fails and it, or its pool,
/// connects again (psycopg2 closes the connection when gevent interrupts its wait; Go's
/// database/sql drops a connection whose context ended). Listening sockets, socketpairs
/// (wake-up channels), datagram sockets, pipes and files are left alone; errno is kept. True
/// when it shut the socket down: a cancelled caller then gets ECANCELED rather than EINTR,
/// since a retry after EINTR would read the shutdown as the peer's close.
bool abandon(int fd) noexcept;

/// A fiber is about to park in a read (write) of `fd` while fiber `other` waits in one there
/// already. On a connection this is a library connection used by two fibers at once (kept in a
/// thread_local or a global: one per hub, not per fiber): whatever this call reads would be
/// the other's answer, and the library's buffers are being changed under the fiber that waits.
/// True (errno EBUSY, logged) when the call is to fail, as gevent's ConcurrentObjectUseError;
/// fibers sharing a listener's accepts or a datagram socket's messages are fine.
bool refuse_shared(HubImpl& h, PatchedCall c, int fd, const FiberRecord* other);

/// `sec` seconds and `nsec` nanoseconds from now; never past ~292 years (a timeout of
/// LONG_MAX seconds means forever, and in nanoseconds would overflow).
inline Deadline after(std::int64_t sec, std::int64_t nsec) noexcept {
    constexpr std::int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
    if (sec >= kMaxSeconds) return Deadline::never();
    return Deadline(std::chrono::nanoseconds(sec * 1'000'000'000 + nsec));
}

/// "No timeout" (0) or one from now.
inline Deadline after(std::chrono::milliseconds t) noexcept {
    return t.count() > 0 ? Deadline(t) : Deadline::never();
}

}  // namespace weft::detail::patch
