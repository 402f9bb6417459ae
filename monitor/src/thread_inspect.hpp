// What a thread of this process is doing, from the outside: its CPU time, its scheduler state,
// the system call it sits in (/proc/self/task/<tid>/syscall) and the kernel wait channel. Used
// by the watchdog to tell "running on CPU" from "blocked in a system call".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor::detail {

/// CPU time consumed by thread `tid` of this process, in ns; -1 if unknown.
std::int64_t thread_cpu_ns(int tid) noexcept;

/// Where a thread's time went, cumulative: on a CPU, and runnable but waiting for one
/// (/proc/self/task/<tid>/schedstat; wait_ns is -1 without scheduler statistics); and how
/// often it went to sleep (voluntary_ctxt_switches in its status; -1 if unknown).
struct SchedSample {
    std::int64_t cpu_ns = -1;
    std::int64_t wait_ns = -1;
    std::int64_t sleeps = -1;
};
SchedSample sched_sample(int tid) noexcept;

struct SyscallState {
    bool valid = false;    ///< the file could be read
    bool running = false;  ///< "running": on a CPU or runnable, not in a system call
    long nr = -1;          ///< the system call number (x86_64), -1 if none
    std::uint64_t args[6] = {};
};
SyscallState read_syscall(int tid);

/// The kernel function the thread sleeps in ("pipe_read", "futex_wait_queue"...), or "".
std::string read_wchan(int tid);
/// Scheduler state letter from /proc: R, S, D, T, Z...; '?' if unknown.
char thread_state(int tid);
/// The thread's name (comm).
std::string thread_name(int tid);
/// True when `sig` is blocked in thread `tid`'s signal mask.
bool signal_blocked(int tid, int sig);

/// What held a hub, judged from two scheduler samples of its thread `wall_ns` apart (`base`
/// when the slice was first seen, `now` at the report), the system call state at the report,
/// and whether the thread is queued for a CPU right now (runnable, its CPU time standing still).
/// A thread queued now that never slept since `base` spent the time schedstat has not counted
/// waiting for a CPU; one that slept may have slept it.
struct CauseEstimate {
    BlockingCause cause = BlockingCause::unknown;
    double cpu_share = 0;
    double cpu_wait_share = -1;
};
CauseEstimate classify_blockage(const SchedSample& base, const SchedSample& now, double wall_ns,
                                const SyscallState& sys, bool queued_now = false) noexcept;

/// classify_blockage for thread `tid`, sampled at `base_ns` and `now_ns`. When the samples
/// cannot tell a wait in a system call from a wait for a CPU (the kernel adds a wait for a CPU
/// to schedstat only once it ends), it looks again 2 ms later.
CauseEstimate judge_blockage(int tid, const SchedSample& base, std::int64_t base_ns,
                             const SchedSample& now, std::int64_t now_ns, const SyscallState& sys);

/// For thread `tid` waiting in futex (`s`): whether the lock it waits for is a glibc pthread
/// mutex (std::mutex) whose owner is `tid` itself, and it still waits there. The memory is
/// read with process_vm_readv: an address that is not mapped reads as "no". Read-write locks
/// (std::shared_mutex) are not recognized.
bool waits_for_own_lock(const SyscallState& s, int tid);

/// x86_64 system call name for `nr` ("read", "futex"...), or "syscall <nr>".
std::string syscall_name(long nr);
/// For system calls whose first argument is a file descriptor: "fd 7 -> pipe:[1234]"; else "".
std::string syscall_detail(const SyscallState& s);

/// Every thread of this process: tid, name, state.
struct ThreadRow {
    int tid;
    std::string name;
    char state;
};
std::vector<ThreadRow> list_threads();

/// Resident set size of this process in bytes (from /proc/self/statm); 0 if unknown.
std::uint64_t resident_bytes() noexcept;

}  // namespace weft::monitor::detail
