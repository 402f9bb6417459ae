// Waiting on a file descriptor someone else owns: what a library's nonblocking API needs to
// cooperate (libpq's PQsocket, curl's multi socket callback, hiredis's async adapter). The
// calling fiber parks until the descriptor is ready; the hub runs its other fibers meanwhile.
//
//     while (PQisBusy(conn)) {
//         if (auto r = weft::wait_readable(PQsocket(conn), deadline); !r) return r.error();
//         PQconsumeInput(conn);
//     }
#pragma once

#include <poll.h>

#include <span>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"

namespace weft {

/// Parks the calling fiber until `fd` has one of `events` (POLLIN, POLLOUT, POLLPRI, or'ed) and
/// returns the events it has (POLLHUP, POLLERR and POLLNVAL included, as poll(2) reports them).
///
/// Blocking: parks the fiber only. Errc::timed_out at the deadline, Errc::cancelled when the
/// fiber is cancelled, Errc::closed when the descriptor is closed (through close(2), patched)
/// while the fiber waits. Several fibers may wait on one descriptor. Outside a fiber (another
/// thread, or a hub's own callback) it blocks the calling thread in poll(2) instead, with the
/// same results.
[[nodiscard]] Result<short> wait_fd(int fd, short events, Deadline deadline = {});
/// wait_fd(fd, POLLIN): readable, or at the end of its input, or in error.
[[nodiscard]] Result<void> wait_readable(int fd, Deadline deadline = {});
/// wait_fd(fd, POLLOUT): writable, or in error.
[[nodiscard]] Result<void> wait_writable(int fd, Deadline deadline = {});

/// poll(2) for fibers: parks until at least one of `fds` has one of its events, fills in every
/// revents and returns how many descriptors have events (0 when the deadline passed first, as
/// poll's timeout). Entries with a negative fd are ignored. For libraries that hand over
/// several descriptors at once (curl's multi socket interface).
///
/// Blocking: parks the fiber only, whether syscall patching is on or not. Errc::cancelled when
/// the fiber is cancelled, Errc::timed_out when the fiber's own deadline (ScopedDeadline, the
/// request's) passes before `deadline`; a descriptor closed while the fiber waits shows
/// POLLNVAL. Outside a fiber it is poll(2) on the calling thread.
[[nodiscard]] Result<int> poll_fds(std::span<pollfd> fds, Deadline deadline = {});

}  // namespace weft
