// Engine hooks, not for handler authors: the libc calls that syscall patching covers (see
// RuntimeOptions::patch_syscalls), by name, for the per-hub counters the monitor exports and for
// the watchdog's "is this call covered?" in its reports. Not installed with the SDK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace weft::internal {

enum class PatchedCall : std::uint8_t {
    connect,
    accept,
    accept4,
    read,
    readv,
    recv,
    recvfrom,
    recvmsg,
    write,
    writev,
    send,
    sendto,
    sendmsg,
    poll,
    ppoll,
    select,
    pselect,
    epoll_wait,
    epoll_pwait,
    sleep,
    usleep,
    nanosleep,
    clock_nanosleep,
    getaddrinfo,
    getnameinfo,
    gethostbyname,
    gethostbyname_r,
    sendfile,
    sendmmsg,
    recvmmsg,
    pthread_join,
    pthread_mutex_lock,
    pthread_cond_wait,
    pthread_rwlock_rdlock,
    pthread_rwlock_wrlock,
};
inline constexpr std::size_t kPatchedCallCount =
    static_cast<std::size_t>(PatchedCall::pthread_rwlock_wrlock) + 1;

/// "recv", "clock_nanosleep", ...
const char* patched_call_name(PatchedCall c) noexcept;

/// What patching does about a thread found blocked in system call `syscall` (the kernel's name,
/// as /proc/TID/syscall gives its number: "read", "nanosleep", "futex"...) when the call came
/// through libc's function of that name from a fiber: `covered` is false for calls patching never
/// makes cooperative; `advice` says what to use instead ("" when there is nothing to say).
struct SyscallCoverage {
    bool covered = false;
    std::string_view advice;
};
SyscallCoverage syscall_coverage(std::string_view syscall) noexcept;

}  // namespace weft::internal
