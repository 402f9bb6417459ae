// The signal handler and its pipe (see signal_pipe.hpp).
#include "signal_pipe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

namespace weft::server::signals {

namespace {

int g_pipe[2] = {-1, -1};
std::atomic<bool> g_serving{false};

extern "C" void on_signal(int sig) {
    const int saved = errno;
    if ((sig == SIGINT || sig == SIGTERM) && !g_serving.load(std::memory_order_relaxed)) {
        // Still starting: the default action. The signal stays blocked while this handler runs,
        // so the one raised here ends the process as soon as the handler returns.
        ::signal(sig, SIG_DFL);
        ::raise(sig);
    } else {
        const auto b = static_cast<unsigned char>(sig);
        // The system call itself: libc's write() may be patched to park a fiber, which a signal
        // handler must never do. The pipe does not block; a full one drops the signal.
        (void)::syscall(SYS_write, g_pipe[1], &b, 1);
    }
    errno = saved;
}

}  // namespace

void install() {
    if (g_pipe[0] >= 0) return;
    if (::pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "signal pipe");
    // A process forked without exec (by a plugin) must not answer the server's signals by
    // writing into the server's pipe: its own go back to their defaults.
    ::pthread_atfork(nullptr, nullptr, [] {
        for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP})
            ::signal(s, SIG_DFL);
    });
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    // On the thread's alternate stack where it has one (hub threads do, for the watchdog's
    // stack capture): a fiber's small stack need not hold the signal frame.
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP})
        if (::sigaction(s, &sa, nullptr) != 0)
            throw std::system_error(errno, std::generic_category(), "sigaction");
}

void serving() noexcept {
    g_serving.store(true, std::memory_order_relaxed);
}

void done_serving() noexcept {
    g_serving.store(false, std::memory_order_relaxed);
}

int next(std::chrono::milliseconds timeout) noexcept {
    pollfd p{g_pipe[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) return 0;
    unsigned char b = 0;
    return ::read(g_pipe[0], &b, 1) == 1 ? b : 0;
}

}  // namespace weft::server::signals
