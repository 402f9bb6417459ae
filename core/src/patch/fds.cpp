// The calls that make, change and close descriptors, wrapped so that the patched calls know
// each descriptor: its kind, whether the caller made it nonblocking (fcntl, ioctl FIONBIO), its
// socket timeouts (setsockopt), and that it is gone (close, dup2). A close also wakes every fiber
// waiting on the descriptor (Errc::closed, EBADF), on any hub, instead of leaving it parked on
// a dead one. These run on every thread; their own work is libc's. And vfork(), which is fork()
// here.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdarg>

#include "fd_wait.hpp"
#include "patch/patch.hpp"

using namespace weft::detail;
using namespace weft::detail::patch;

namespace {

void created_pair(const int* fds, FdKind kind, bool nonblocking) noexcept {
    fd_created(fds[0], kind, nonblocking);
    fd_created(fds[1], kind, nonblocking);
}

std::chrono::milliseconds timeval_ms(const void* v, socklen_t len) noexcept {
    if (!v || len < static_cast<socklen_t>(sizeof(timeval))) return std::chrono::milliseconds(0);
    const auto* tv = static_cast<const timeval*>(v);
    return std::chrono::milliseconds(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
}

// `to` is a new descriptor of `from`'s open file: looked at afresh, and both marked shared.
void duplicated(int from, int to) noexcept {
    fd_forget(to);
    if (from == to) return;
    fd_set_shared(from);
    fd_set_shared(to);
}

int fcntl_impl(int fd, int cmd, void* arg) {
    const int r = real::calls().fcntl(fd, cmd, arg);
    if (r < 0) return r;
    if (cmd == F_SETFL) {
        fd_set_nonblocking(fd, (reinterpret_cast<std::intptr_t>(arg) & O_NONBLOCK) != 0);
    } else if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
        duplicated(fd, r);
    }
    return r;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) noexcept {
    const int fd = real::calls().socket(domain, type, protocol);
    if (fd >= 0) fd_created(fd, FdKind::socket, (type & SOCK_NONBLOCK) != 0);
    return fd;
}

int socketpair(int domain, int type, int protocol, int fds[2]) noexcept {
    const int r = real::calls().socketpair(domain, type, protocol, fds);
    if (r == 0) created_pair(fds, FdKind::socket, (type & SOCK_NONBLOCK) != 0);
    return r;
}

int pipe(int fds[2]) noexcept {
    const int r = real::calls().pipe(fds);
    if (r == 0) created_pair(fds, FdKind::pollable, false);
    return r;
}

int pipe2(int fds[2], int flags) noexcept {
    const int r = real::calls().pipe2(fds, flags);
    if (r == 0) created_pair(fds, FdKind::pollable, (flags & O_NONBLOCK) != 0);
    return r;
}

int eventfd(unsigned int count, int flags) noexcept {
    const int fd = real::calls().eventfd(count, flags);
    if (fd >= 0) fd_created(fd, FdKind::pollable, (flags & EFD_NONBLOCK) != 0);
    return fd;
}

// The child of vfork() shares its parent's memory and thread-locals: to the patched calls it
// would be the parent's hub thread, and a close() there (the usual cleanup before exec) would
// wake the parent's fibers waiting on that descriptor with EBADF and drop it from the parent's
// table, although it stays open in the parent. POSIX lets vfork() be fork(): the child gets
// copies, and fork's handler marks it as no hub's. (posix_spawn does not come here.)
pid_t vfork() noexcept {
    return ::fork();
}

int close(int fd) {
    fd_closing(fd);
    fd_forget(fd);
    return real::calls().close(fd);
}

// close_range: as close() for each descriptor of the range it closes. Not for CLOEXEC (it only
// marks them) nor UNSHARE (it closes them in a private copy of the table: the calling thread's,
// as a child about to exec does; every other thread keeps them).
int close_range(unsigned first, unsigned last, int flags) noexcept {
    // Only a plain close: with CLOEXEC or UNSHARE, or a flag this does not know (EINVAL), no
    // descriptor closes here.
    if (flags == 0 && first <= last) {
        fd_closing_range(first, last);
        fd_forget_range(first, last);
    }
    return real::calls().close_range(first, last, flags);
}

int dup(int fd) noexcept {
    const int r = real::calls().dup(fd);
    if (r >= 0) duplicated(fd, r);
    return r;
}

int dup2(int from, int to) noexcept {
    if (from != to) fd_closing(to);
    const int r = real::calls().dup2(from, to);
    if (r >= 0) duplicated(from, r);
    return r;
}

int dup3(int from, int to, int flags) noexcept {
    if (from != to) fd_closing(to);
    const int r = real::calls().dup3(from, to, flags);
    if (r >= 0) duplicated(from, r);
    return r;
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);  // as glibc reads it: every argument fits a pointer
    va_end(ap);
    return fcntl_impl(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return fcntl_impl(fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    const int r = real::calls().ioctl(fd, request, arg);
    if (r == 0 && request == FIONBIO && arg)
        fd_set_nonblocking(fd, *static_cast<const int*>(arg) != 0);
    return r;
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) noexcept {
    const int r = real::calls().setsockopt(fd, level, name, value, len);
    if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
        fd_set_timeout(fd, name == SO_RCVTIMEO, timeval_ms(value, len));
    return r;
}

}  // extern "C"
