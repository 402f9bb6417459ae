// /proc readers for one thread of this process, and the x86_64 system call names.
#include "thread_inspect.hpp"

#include "weft/core/deadline.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

namespace weft::monitor::detail {

namespace {

std::string task_path(int tid, const char* leaf) {
    return "/proc/self/task/" + std::to_string(tid) + "/" + leaf;
}

// Reads a small /proc file whole; "" on error.
std::string slurp(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > 1 << 20) break;
    }
    ::close(fd);
    return out;
}

struct SyscallEntry {
    long nr;
    const char* name;
    bool fd_first;  // the first argument is a file descriptor
};

// The common x86_64 system calls, and every one a blocked thread is likely to sit in.
constexpr SyscallEntry kSyscalls[] = {
    {0, "read", true},
    {1, "write", true},
    {2, "open", false},
    {3, "close", true},
    {4, "stat", false},
    {5, "fstat", true},
    {6, "lstat", false},
    {7, "poll", false},
    {8, "lseek", true},
    {9, "mmap", false},
    {10, "mprotect", false},
    {11, "munmap", false},
    {12, "brk", false},
    {13, "rt_sigaction", false},
    {14, "rt_sigprocmask", false},
    {16, "ioctl", true},
    {17, "pread64", true},
    {18, "pwrite64", true},
    {19, "readv", true},
    {20, "writev", true},
    {21, "access", false},
    {22, "pipe", false},
    {23, "select", false},
    {24, "sched_yield", false},
    {25, "mremap", false},
    {26, "msync", false},
    {28, "madvise", false},
    {32, "dup", true},
    {33, "dup2", true},
    {34, "pause", false},
    {35, "nanosleep", false},
    {39, "getpid", false},
    {40, "sendfile", true},
    {41, "socket", false},
    {42, "connect", true},
    {43, "accept", true},
    {44, "sendto", true},
    {45, "recvfrom", true},
    {46, "sendmsg", true},
    {47, "recvmsg", true},
    {48, "shutdown", true},
    {49, "bind", true},
    {50, "listen", true},
    {54, "setsockopt", true},
    {55, "getsockopt", true},
    {56, "clone", false},
    {57, "fork", false},
    {58, "vfork", false},
    {59, "execve", false},
    {60, "exit", false},
    {61, "wait4", false},
    {62, "kill", false},
    {65, "semop", false},
    {69, "msgsnd", false},
    {70, "msgrcv", false},
    {72, "fcntl", true},
    {73, "flock", true},
    {74, "fsync", true},
    {75, "fdatasync", true},
    {76, "truncate", false},
    {77, "ftruncate", true},
    {78, "getdents", true},
    {82, "rename", false},
    {83, "mkdir", false},
    {87, "unlink", false},
    {89, "readlink", false},
    {96, "gettimeofday", false},
    {101, "ptrace", false},
    {128, "rt_sigtimedwait", false},
    {130, "rt_sigsuspend", false},
    {162, "sync", false},
    {186, "gettid", false},
    {200, "tkill", false},
    {202, "futex", false},
    {206, "io_setup", false},
    {207, "io_destroy", false},
    {208, "io_getevents", false},
    {209, "io_submit", false},
    {213, "epoll_create", false},
    {217, "getdents64", true},
    {220, "semtimedop", false},
    {228, "clock_gettime", false},
    {230, "clock_nanosleep", false},
    {231, "exit_group", false},
    {232, "epoll_wait", true},
    {233, "epoll_ctl", true},
    {234, "tgkill", false},
    {247, "waitid", false},
    {257, "openat", false},
    {258, "mkdirat", false},
    {262, "newfstatat", false},
    {263, "unlinkat", false},
    {264, "renameat", false},
    {267, "readlinkat", false},
    {270, "pselect6", false},
    {271, "ppoll", false},
    {275, "splice", true},
    {277, "sync_file_range", true},
    {281, "epoll_pwait", true},
    {284, "eventfd", false},
    {285, "fallocate", true},
    {288, "accept4", true},
    {290, "eventfd2", false},
    {291, "epoll_create1", false},
    {293, "pipe2", false},
    {295, "preadv", true},
    {296, "pwritev", true},
    {299, "recvmmsg", true},
    {306, "syncfs", true},
    {307, "sendmmsg", true},
    {316, "renameat2", false},
    {318, "getrandom", false},
    {319, "memfd_create", false},
    {332, "statx", false},
    {425, "io_uring_setup", false},
    {426, "io_uring_enter", true},
    {427, "io_uring_register", true},
    {435, "clone3", false},
    {441, "epoll_pwait2", true},
    {449, "futex_waitv", false},
};

const SyscallEntry* find_syscall(long nr) {
    for (const auto& e : kSyscalls)
        if (e.nr == nr) return &e;
    return nullptr;
}

}  // namespace

std::int64_t thread_cpu_ns(int tid) noexcept {
    if (tid <= 0) return -1;
    // The kernel's per-thread CPU clock id for a tid of this process (what
    // pthread_getcpuclockid computes): CPUCLOCK_SCHED (2) | CPUCLOCK_PERTHREAD (4).
    clockid_t cid = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6u);
    struct timespec ts;
    if (clock_gettime(cid, &ts) == 0)
        return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    // Fallback: the first field of schedstat is the time spent on a CPU, in ns.
    std::string s = slurp(task_path(tid, "schedstat"));
    if (s.empty()) return -1;
    return std::strtoll(s.c_str(), nullptr, 10);
}

SchedSample sched_sample(int tid) noexcept {
    SchedSample out;
    try {
        std::string st = slurp(task_path(tid, "status"));
        if (auto at = st.find("\nvoluntary_ctxt_switches:"); at != std::string::npos)
            out.sleeps = std::strtoll(st.c_str() + at + 25, nullptr, 10);
        std::string s = slurp(task_path(tid, "schedstat"));
        if (!s.empty()) {
            char* end = nullptr;
            long long cpu = std::strtoll(s.c_str(), &end, 10);
            long long wait = std::strtoll(end, nullptr, 10);
            out.cpu_ns = cpu;
            out.wait_ns = wait;
            return out;
        }
    } catch (...) {
    }
    out.cpu_ns = thread_cpu_ns(tid);
    return out;
}

// The share of its runnable time under which a thread counts as starved of CPU.
constexpr double kStarvedShare = 0.1;

CauseEstimate classify_blockage(const SchedSample& base, const SchedSample& now, double wall_ns,
                                const SyscallState& sys, bool queued_now) noexcept {
    CauseEstimate e;
    if (now.cpu_ns < 0 || base.cpu_ns < 0 || wall_ns <= 0) return e;
    e.cpu_share = std::clamp(static_cast<double>(now.cpu_ns - base.cpu_ns) / wall_ns, 0.0, 1.0);
    double runnable = e.cpu_share;
    if (now.wait_ns >= 0 && base.wait_ns >= 0) {
        e.cpu_wait_share =
            std::clamp(static_cast<double>(now.wait_ns - base.wait_ns) / wall_ns, 0.0, 1.0);
        runnable += e.cpu_wait_share;
    }
    const bool in_syscall = sys.valid && !sys.running && sys.nr >= 0;
    // Never went to sleep since the first sample: runnable all along, whatever part of the
    // time waiting for a CPU schedstat has not counted yet (a wait still going on).
    const bool never_slept = !in_syscall && base.sleeps >= 0 && now.sleeps == base.sleeps;
    // Starved: it got under a tenth of the CPU time it was ready to use. A thread at nice 19
    // beside a busy one gets 1.5 % in the long run, and 6 % over 100 ms was seen; code that
    // computes on a machine merely busy gets a share (a half beside one busy thread). A wait
    // that began before the first sample counts whole, so the shares may add up to over 1.
    const double ready = never_slept ? 1.0 : std::min(runnable, 1.0);
    const BlockingCause on_cpu_or_starved = e.cpu_share < kStarvedShare * ready
                                                ? BlockingCause::waiting_for_cpu
                                                : BlockingCause::running_on_cpu;
    // Runnable (on a CPU or queued for one) most of the time: the code computes. Asleep most of
    // the time: it waits in the kernel.
    if (runnable >= 0.5 && !(in_syscall && e.cpu_share < 0.2)) {
        e.cause = on_cpu_or_starved;
    } else if (queued_now && never_slept) {
        // Queued for a CPU now, and it never slept since the first sample: the wait still
        // going on is not in wait_ns yet, and it is where the time neither on a CPU nor
        // counted as waiting went. Barely ran: the machine held it.
        e.cause = on_cpu_or_starved;
        e.cpu_wait_share = 1.0 - e.cpu_share;
    } else {
        e.cause = BlockingCause::in_system_call;
    }
    return e;
}

CauseEstimate judge_blockage(int tid, const SchedSample& base, std::int64_t base_ns,
                             const SchedSample& now, std::int64_t now_ns, const SyscallState& sys) {
    CauseEstimate e = classify_blockage(base, now, static_cast<double>(now_ns - base_ns), sys);
    // Mostly asleep by the samples, yet runnable now: asleep until a moment ago, or queued for
    // a CPU (a wait schedstat has not counted yet). Look again: by then the wait has either
    // ended, and is counted, or still goes on.
    if (e.cause != BlockingCause::in_system_call || !sys.valid || !sys.running) return e;
    // The CPU clock, not schedstat's total: the kernel brings a running thread's total up to
    // date only at its ticks and switches, the clock at every read.
    const std::int64_t cpu_before = thread_cpu_ns(tid);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const std::int64_t cpu_after = thread_cpu_ns(tid);
    const SchedSample later = sched_sample(tid);
    const std::int64_t later_ns = weft::now_ns();
    const SyscallState sys_later = read_syscall(tid);
    const bool queued =
        cpu_before >= 0 && cpu_after == cpu_before && sys_later.valid && sys_later.running;
    return classify_blockage(base, later, static_cast<double>(later_ns - base_ns), sys, queued);
}

bool waits_for_own_lock(const SyscallState& s, int tid) {
    constexpr long kFutex = 202;
    if (!s.valid || s.running || s.nr != kFutex || tid <= 0) return false;
    const auto cmd = static_cast<int>(s.args[1]) & FUTEX_CMD_MASK;
    if (cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET) return false;
    // glibc's pthread_mutex_t (std::mutex): int __lock (the futex word), unsigned __count,
    // int __owner. Other futexes (a condition variable's, a semaphore's) have something else
    // there, which is not this thread's id but by a rare chance.
    int owner = 0;
    iovec local{&owner, sizeof owner};
    iovec remote{reinterpret_cast<void*>(s.args[0] + 2 * sizeof(int)), sizeof owner};
    if (::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) !=
            static_cast<ssize_t>(sizeof owner) ||
        owner != tid)
        return false;
    // Still waiting on the same word: a wait that ended meanwhile, its thread now holding the
    // mutex, is no deadlock.
    const SyscallState again = read_syscall(tid);
    return again.valid && !again.running && again.nr == kFutex && again.args[0] == s.args[0];
}

SyscallState read_syscall(int tid) {
    SyscallState st;
    std::string s = slurp(task_path(tid, "syscall"));
    if (s.empty()) return st;
    st.valid = true;
    if (s.compare(0, 7, "running") == 0) {
        st.running = true;
        return st;
    }
    const char* p = s.c_str();
    char* end = nullptr;
    st.nr = std::strtol(p, &end, 10);
    p = end;
    for (int i = 0; i < 6 && p && *p; ++i) {
        st.args[i] = std::strtoull(p, &end, 16);
        if (end == p) break;
        p = end;
    }
    return st;
}

std::string read_wchan(int tid) {
    std::string s = slurp(task_path(tid, "wchan"));
    if (s == "0") return {};
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

char thread_state(int tid) {
    std::string s = slurp(task_path(tid, "stat"));
    // "tid (comm) S ..." — comm may contain spaces and parentheses: use the last ')'.
    auto close = s.rfind(')');
    if (close == std::string::npos || close + 2 >= s.size()) return '?';
    return s[close + 2];
}

std::string thread_name(int tid) {
    std::string s = slurp(task_path(tid, "comm"));
    while (!s.empty() && s.back() == '\n')
        s.pop_back();
    return s;
}

bool signal_blocked(int tid, int sig) {
    std::string s = slurp(task_path(tid, "status"));
    auto at = s.find("SigBlk:");
    if (at == std::string::npos || sig <= 0 || sig > 64) return false;
    unsigned long long mask = std::strtoull(s.c_str() + at + 7, nullptr, 16);
    return (mask >> (sig - 1)) & 1u;
}

std::string syscall_name(long nr) {
    if (const SyscallEntry* e = find_syscall(nr)) return e->name;
    return "syscall " + std::to_string(nr);
}

std::string syscall_detail(const SyscallState& s) {
    const SyscallEntry* e = find_syscall(s.nr);
    if (!e || !e->fd_first) return {};
    int fd = static_cast<int>(static_cast<std::int64_t>(s.args[0]));
    std::string out = "fd " + std::to_string(fd);
    char target[256];
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 0) {
        target[n] = '\0';
        out += " -> ";
        out += target;
    }
    return out;
}

std::vector<ThreadRow> list_threads() {
    std::vector<ThreadRow> out;
    DIR* d = ::opendir("/proc/self/task");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        int tid = std::atoi(e->d_name);
        out.push_back({tid, thread_name(tid), thread_state(tid)});
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(),
              [](const ThreadRow& a, const ThreadRow& b) { return a.tid < b.tid; });
    return out;
}

std::uint64_t resident_bytes() noexcept {
    try {
        std::string s = slurp("/proc/self/statm");
        if (s.empty()) return 0;
        const char* p = s.c_str();
        char* end = nullptr;
        std::strtoull(p, &end, 10);  // total program size
        unsigned long long pages = std::strtoull(end, nullptr, 10);
        return static_cast<std::uint64_t>(pages) *
               static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    } catch (...) {
        return 0;
    }
}

}  // namespace weft::monitor::detail
