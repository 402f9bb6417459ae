// The names of the patched calls (for the per-hub counters) and what patching does about a
// system call a hub was found blocked in (for the watchdog's reports).
#include <array>
#include <string_view>

#include "weft/core/internal/patched_calls.hpp"

namespace weft::internal {

namespace {

// clang-format off
constexpr std::array<const char*, kPatchedCallCount> kNames = {
    "connect",       "accept",          "accept4",         "read",        "readv",
    "recv",          "recvfrom",        "recvmsg",         "write",       "writev",
    "send",          "sendto",          "sendmsg",         "poll",        "ppoll",
    "select",        "pselect",         "epoll_wait",      "epoll_pwait", "sleep",
    "usleep",        "nanosleep",       "clock_nanosleep", "getaddrinfo", "getnameinfo",
    "gethostbyname", "gethostbyname_r", "sendfile",        "sendmmsg",    "recvmmsg",
    "pthread_join",  "pthread_mutex_lock", "pthread_cond_wait", "pthread_rwlock_rdlock",
    "pthread_rwlock_wrlock",
};
// clang-format on

constexpr std::string_view kSocketAdvice =
    "call it through libc's function (not a raw syscall or a libc-internal path such as stdio on "
    "a pipe), or wait with weft::wait_readable/wait_writable before it";

struct Row {
    std::string_view syscall;
    bool covered;
    std::string_view advice;
};

// Kernel names, as /proc/TID/syscall numbers are named (x86_64).
constexpr Row kRows[] = {
    {"read", true, kSocketAdvice},
    {"readv", true, kSocketAdvice},
    {"recvfrom", true, kSocketAdvice},
    {"recvmsg", true, kSocketAdvice},
    {"write", true, kSocketAdvice},
    {"writev", true, kSocketAdvice},
    {"sendto", true, kSocketAdvice},
    {"sendmsg", true, kSocketAdvice},
    {"connect", true, kSocketAdvice},
    {"accept", true, kSocketAdvice},
    {"accept4", true, kSocketAdvice},
    {"poll", true, kSocketAdvice},
    {"ppoll", true, kSocketAdvice},
    {"select", true, kSocketAdvice},
    {"pselect6", true, kSocketAdvice},
    {"epoll_wait", true, kSocketAdvice},
    {"epoll_pwait", true, kSocketAdvice},
    {"epoll_pwait2", false,
     "use epoll_wait or epoll_pwait, or weft::wait_readable on the epoll fd"},
    {"nanosleep", true, "call sleep/nanosleep through libc, or use weft::sleep_for"},
    {"clock_nanosleep", true, "call sleep/nanosleep through libc, or use weft::sleep_for"},
    {"futex", false,
     "a thread lock or condition variable (pthread_mutex_lock waits cooperatively only for a "
     "lock a fiber holds, of this hub or another; not for one a thread that runs no hub "
     "holds, nor a timed, shared or robust lock; a read-write lock only when fibers of the same "
     "hub hold it; condition variables wait cooperatively unless process-shared): "
     "use weft::Mutex, weft::Event or weft::Semaphore between fibers, or move the call to "
     "weft::offload"},
    {"flock", false, "file locks are not made cooperative: take them in weft::offload"},
    {"fcntl", false, "a blocking file lock (F_SETLKW): take it in weft::offload"},
    {"wait4", false, "waiting for a child process: do it in weft::offload"},
    {"waitid", false, "waiting for a child process: do it in weft::offload"},
    {"pread64", false, "file I/O is not made cooperative: use weft::offload"},
    {"pwrite64", false, "file I/O is not made cooperative: use weft::offload"},
    {"fsync", false, "file I/O is not made cooperative: use weft::offload"},
    {"fdatasync", false, "file I/O is not made cooperative: use weft::offload"},
    {"openat", false, "opening a file (a FIFO, a slow file system) blocks: use weft::offload"},
    {"open", false, "opening a file (a FIFO, a slow file system) blocks: use weft::offload"},
    {"msgrcv", false, "System V IPC is not made cooperative: use weft::offload"},
    {"semop", false, "System V IPC is not made cooperative: use weft::offload"},
    {"semtimedop", false, "System V IPC is not made cooperative: use weft::offload"},
    {"pause", false, "pause() waits for a signal: use weft::Event"},
    {"rt_sigtimedwait", false, "waiting for a signal: use signalfd with weft::wait_readable"},
    {"sendfile", false,
     "sendfile is patched only to a socket the caller left blocking: to a pipe or a file, or "
     "from a slow disk, use weft::offload"},
    {"sendmmsg", true, kSocketAdvice},
    {"recvmmsg", true, kSocketAdvice},
    {"splice", false, "use weft::offload"},
};

}  // namespace

const char* patched_call_name(PatchedCall c) noexcept {
    const auto i = static_cast<std::size_t>(c);
    return i < kNames.size() ? kNames[i] : "?";
}

SyscallCoverage syscall_coverage(std::string_view syscall) noexcept {
    for (const Row& r : kRows) {
        if (r.syscall == syscall) return {r.covered, r.advice};
    }
    return {false, "not made cooperative by patching: move the call to weft::offload"};
}

}  // namespace weft::internal
