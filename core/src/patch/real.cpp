// Resolving libc's own calls once, with dlsym(RTLD_NEXT, ...). A wrapper may run before any
// constructor of ours (another library's constructor writes to a pipe), so the table is also
// filled by its first user; dlsym is safe to call more than once.
#include "patch/real.hpp"
#include "fd_wait.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace weft::detail::patch {
bool g_forked = false;
}  // namespace weft::detail::patch

namespace weft::detail::real {

namespace {

Table g_table;
std::atomic<bool> g_ready{false};

template <class F>
void resolve(F& slot, const char* name) noexcept {
    void* p = dlsym(RTLD_NEXT, name);
    if (!p) {
        // Without libc's own call nothing can work: say which one and stop.
        static const char kMsg[] = "weft: cannot find libc's ";
        ::syscall(SYS_write, 2, kMsg, sizeof kMsg - 1);
        ::syscall(SYS_write, 2, name, __builtin_strlen(name));
        ::syscall(SYS_write, 2, "\n", 1);
        std::abort();
    }
    slot = reinterpret_cast<F>(p);
}

void fill() noexcept {
    Table t;
    resolve(t.connect, "connect");
    resolve(t.accept, "accept");
    resolve(t.accept4, "accept4");
    resolve(t.read, "read");
    resolve(t.readv, "readv");
    resolve(t.recv, "recv");
    resolve(t.recvfrom, "recvfrom");
    resolve(t.recvmsg, "recvmsg");
    resolve(t.write, "write");
    resolve(t.writev, "writev");
    resolve(t.send, "send");
    resolve(t.sendto, "sendto");
    resolve(t.sendmsg, "sendmsg");
    resolve(t.poll, "poll");
    resolve(t.ppoll, "ppoll");
    resolve(t.select, "select");
    resolve(t.pselect, "pselect");
    resolve(t.epoll_wait, "epoll_wait");
    resolve(t.epoll_pwait, "epoll_pwait");
    resolve(t.sleep, "sleep");
    resolve(t.usleep, "usleep");
    resolve(t.nanosleep, "nanosleep");
    resolve(t.clock_nanosleep, "clock_nanosleep");
    resolve(t.getaddrinfo, "getaddrinfo");
    resolve(t.getnameinfo, "getnameinfo");
    resolve(t.gethostbyname, "gethostbyname");
    resolve(t.gethostbyname_r, "gethostbyname_r");
    resolve(t.close, "close");
    resolve(t.socket, "socket");
    resolve(t.socketpair, "socketpair");
    resolve(t.pipe, "pipe");
    resolve(t.pipe2, "pipe2");
    resolve(t.eventfd, "eventfd");
    resolve(t.dup, "dup");
    resolve(t.dup2, "dup2");
    resolve(t.dup3, "dup3");
    resolve(t.fcntl, "fcntl");
    resolve(t.ioctl, "ioctl");
    resolve(t.setsockopt, "setsockopt");
    resolve(t.close_range, "close_range");
    resolve(t.sendfile, "sendfile");
    resolve(t.sendmmsg, "sendmmsg");
    resolve(t.recvmmsg, "recvmmsg");
    resolve(t.pthread_join, "pthread_join");
    resolve(t.pthread_tryjoin_np, "pthread_tryjoin_np");
    resolve(t.pthread_mutex_lock, "pthread_mutex_lock");
    resolve(t.pthread_mutex_trylock, "pthread_mutex_trylock");
    resolve(t.pthread_mutex_unlock, "pthread_mutex_unlock");
    resolve(t.pthread_mutex_clocklock, "pthread_mutex_clocklock");
    resolve(t.pthread_cond_wait, "pthread_cond_wait");
    resolve(t.pthread_cond_timedwait, "pthread_cond_timedwait");
    resolve(t.pthread_cond_clockwait, "pthread_cond_clockwait");
    resolve(t.pthread_cond_signal, "pthread_cond_signal");
    resolve(t.pthread_cond_broadcast, "pthread_cond_broadcast");
    resolve(t.pthread_rwlock_rdlock, "pthread_rwlock_rdlock");
    resolve(t.pthread_rwlock_wrlock, "pthread_rwlock_wrlock");
    resolve(t.pthread_rwlock_tryrdlock, "pthread_rwlock_tryrdlock");
    resolve(t.pthread_rwlock_trywrlock, "pthread_rwlock_trywrlock");
    resolve(t.pthread_rwlock_unlock, "pthread_rwlock_unlock");
    resolve(t.pthread_rwlock_timedrdlock, "pthread_rwlock_timedrdlock");
    resolve(t.pthread_rwlock_clockrdlock, "pthread_rwlock_clockrdlock");
    g_table = t;
    g_ready.store(true, std::memory_order_release);
}

void forked_child() noexcept {
    // Only hubs that existed at the fork make the child's copies unsafe to touch: a process
    // that forks before it starts a runtime (a daemon, a pre-fork master) patches as usual.
    if (weft::detail::any_hub()) weft::detail::patch::g_forked = true;
}

[[gnu::constructor(101)]] void resolve_early() {
    if (!g_ready.load(std::memory_order_acquire)) fill();
    // The child of a fork() made by a fiber is a copy of that hub thread alone, with its
    // thread-locals: nothing would run a parked fiber there, so its calls are libc's.
    ::pthread_atfork(nullptr, nullptr, &forked_child);
}

}  // namespace

const Table& calls() noexcept {
    if (__builtin_expect(!g_ready.load(std::memory_order_acquire), 0)) fill();
    return g_table;
}

}  // namespace weft::detail::real
