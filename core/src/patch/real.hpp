// libc's own versions of the calls Weft patches, found with dlsym(RTLD_NEXT) (the next
// definition after libweft_core in the process's lookup order: libc's, or a sanitizer's). The
// engine calls these for its own I/O, so that none of its calls takes the patched path, and the
// wrappers call them to do the work.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <cstdarg>

namespace weft::detail::real {

// One pointer per call; resolved before main (and lazily by the first caller if earlier).
struct Table {
    int (*connect)(int, const sockaddr*, socklen_t);
    int (*accept)(int, sockaddr*, socklen_t*);
    int (*accept4)(int, sockaddr*, socklen_t*, int);
    ssize_t (*read)(int, void*, size_t);
    ssize_t (*readv)(int, const iovec*, int);
    ssize_t (*recv)(int, void*, size_t, int);
    ssize_t (*recvfrom)(int, void*, size_t, int, sockaddr*, socklen_t*);
    ssize_t (*recvmsg)(int, msghdr*, int);
    ssize_t (*write)(int, const void*, size_t);
    ssize_t (*writev)(int, const iovec*, int);
    ssize_t (*send)(int, const void*, size_t, int);
    ssize_t (*sendto)(int, const void*, size_t, int, const sockaddr*, socklen_t);
    ssize_t (*sendmsg)(int, const msghdr*, int);
    int (*poll)(pollfd*, nfds_t, int);
    int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*);
    int (*select)(int, fd_set*, fd_set*, fd_set*, timeval*);
    int (*pselect)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
    int (*epoll_wait)(int, epoll_event*, int, int);
    int (*epoll_pwait)(int, epoll_event*, int, int, const sigset_t*);
    unsigned (*sleep)(unsigned);
    int (*usleep)(useconds_t);
    int (*nanosleep)(const timespec*, timespec*);
    int (*clock_nanosleep)(clockid_t, int, const timespec*, timespec*);
    int (*getaddrinfo)(const char*, const char*, const addrinfo*, addrinfo**);
    int (*getnameinfo)(const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int);
    hostent* (*gethostbyname)(const char*);
    int (*gethostbyname_r)(const char*, hostent*, char*, size_t, hostent**, int*);
    int (*close)(int);
    int (*socket)(int, int, int);
    int (*socketpair)(int, int, int, int*);
    int (*pipe)(int*);
    int (*pipe2)(int*, int);
    int (*eventfd)(unsigned, int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*setsockopt)(int, int, int, const void*, socklen_t);
    int (*close_range)(unsigned, unsigned, int);
    ssize_t (*sendfile)(int, int, off_t*, size_t);
    int (*sendmmsg)(int, mmsghdr*, unsigned, int);
    int (*recvmmsg)(int, mmsghdr*, unsigned, int, timespec*);
    int (*pthread_join)(pthread_t, void**);
    int (*pthread_tryjoin_np)(pthread_t, void**);
    int (*pthread_mutex_lock)(pthread_mutex_t*);
    int (*pthread_mutex_trylock)(pthread_mutex_t*);
    int (*pthread_mutex_unlock)(pthread_mutex_t*);
    int (*pthread_mutex_clocklock)(pthread_mutex_t*, clockid_t, const timespec*);
    int (*pthread_cond_wait)(pthread_cond_t*, pthread_mutex_t*);
    int (*pthread_cond_timedwait)(pthread_cond_t*, pthread_mutex_t*, const timespec*);
    int (*pthread_cond_clockwait)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*);
    int (*pthread_cond_signal)(pthread_cond_t*);
    int (*pthread_cond_broadcast)(pthread_cond_t*);
    int (*pthread_rwlock_rdlock)(pthread_rwlock_t*);
    int (*pthread_rwlock_wrlock)(pthread_rwlock_t*);
    int (*pthread_rwlock_tryrdlock)(pthread_rwlock_t*);
    int (*pthread_rwlock_trywrlock)(pthread_rwlock_t*);
    int (*pthread_rwlock_unlock)(pthread_rwlock_t*);
    int (*pthread_rwlock_timedrdlock)(pthread_rwlock_t*, const timespec*);
    int (*pthread_rwlock_clockrdlock)(pthread_rwlock_t*, clockid_t, const timespec*);
};

/// The table, resolved on first use.
const Table& calls() noexcept;

}  // namespace weft::detail::real
