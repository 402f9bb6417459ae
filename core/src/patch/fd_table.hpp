// What the patched calls know of each descriptor: whether it can be waited on (a socket, pipe,
// FIFO, eventfd, terminal... but not a regular file), whether the caller left it blocking (its
// view is kept: an fd it left blocking still looks blocking to it), and a socket's
// SO_RCVTIMEO/SO_SNDTIMEO. Kept up to date by the patched socket, accept, pipe, eventfd, fcntl,
// ioctl, setsockopt, dup and close; a descriptor first seen otherwise is looked at once (fstat,
// F_GETFL). One atomic word per descriptor: any thread may read or write it.
#pragma once

#include <chrono>
#include <cstdint>

namespace weft::detail::patch {

enum class FdKind : std::uint8_t { unknown = 0, socket, pollable, other };

struct FdInfo {
    FdKind kind = FdKind::unknown;
    bool nonblocking = false;                  ///< in the caller's view (O_NONBLOCK)
    std::chrono::milliseconds rcv_timeout{0};  ///< 0: none
    std::chrono::milliseconds snd_timeout{0};
    /// Its open file has other descriptors (a dup): O_NONBLOCK set through one of them is set
    /// for all, where the table saw only that one.
    bool shared = false;
};

/// The descriptor's info. A socket's is remembered once looked at (a stale entry shows as
/// ENOTSOCK, and the patched calls look again); any other kind is looked at afresh on every
/// call (fstat, and fcntl unless it is a file), as its number may have been closed and reused
/// behind the wrappers.
FdInfo fd_info(int fd) noexcept;
/// A new descriptor whose kind and flags are known (socket, accept, pipe, eventfd).
void fd_created(int fd, FdKind kind, bool nonblocking) noexcept;
void fd_set_nonblocking(int fd, bool on) noexcept;
/// SO_RCVTIMEO (receive) or SO_SNDTIMEO (send).
void fd_set_timeout(int fd, bool receive, std::chrono::milliseconds t) noexcept;
/// Closed or replaced (dup2): looked at afresh when next used.
void fd_forget(int fd) noexcept;
/// fd_forget() for every descriptor in [first, last] (close_range).
void fd_forget_range(unsigned first, unsigned last) noexcept;
/// One of two descriptors of one open file (dup, dup2, dup3, F_DUPFD).
void fd_set_shared(int fd) noexcept;
/// Before a patched call parks on a shared descriptor the table calls blocking: true (and the
/// table updated) when the open file is nonblocking now, set through another descriptor of it,
/// so that the call answers EAGAIN as libc's would. One fcntl, for shared descriptors only
/// (between the waits of one call: each call looks at a descriptor that is not a socket
/// afresh anyway).
bool fd_now_nonblocking(const FdInfo& info, int fd) noexcept;

}  // namespace weft::detail::patch
