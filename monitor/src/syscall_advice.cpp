// Naming the library behind a blocking system call, and what patching does about it.
#include "syscall_advice.hpp"

#include <fmt/format.h>

#include <string_view>

#include "display.hpp"
#include "symbolizer.hpp"
#include "weft/core/internal/patched_calls.hpp"

namespace weft::monitor::detail {

namespace {

// Libraries a blocking call passes through on its way from the code that made it: the caller
// is the first frame in none of these.
bool pass_through_module(std::string_view m) noexcept {
    static constexpr std::string_view kPrefixes[] = {
        "libc.so", "libc-",   "ld-linux", "libpthread", "libstdc++", "libweft_core",
        "libasan", "libtsan", "libubsan", "liblsan",    "libgcc_s"};
    return starts_with_any(m, kPrefixes);
}

}  // namespace

void explain_system_call(BlockingReport& r, bool patching_on) {
    r.patching_on = patching_on;
    if (r.own_lock) {  // whatever the thread did before it waited for the lock
        r.advice =
            "deadlock: this thread waits for a lock it holds itself. A fiber of this hub took "
            "it (a std::mutex or pthread mutex) and parked while holding it; no fiber of the hub "
            "can run to release it, so the hub will not run again. Restart the server; between "
            "fibers use weft::Mutex, or do not hold a thread lock across a call that waits";
        return;
    }
    if (r.cause == BlockingCause::running_on_cpu) {
        if (!r.allowed)  // AllowBlocking: the code says it knows
            r.advice =
                "code computed on the hub all along: move the work to weft::offload, or split "
                "it and let the hub run its other fibers between the parts "
                "(weft::sleep_for(0ms), which also ends the work when the request is cancelled)";
        return;
    }
    if (r.cause == BlockingCause::waiting_for_cpu) {
        r.advice =
            "the machine, not the code: the thread was ready to run but got no CPU. Look at "
            "the host's load and the container's CPU limit (CFS throttling), and give the "
            "server as many CPUs as it has hubs";
        return;
    }
    if (r.cause != BlockingCause::in_system_call || r.syscall.empty()) return;
    for (const StackFrame& f : r.stack) {
        if (f.module.empty() || pass_through_module(f.module) || f.function == kPltStub) continue;
        r.caller_module = f.module;
        r.caller_function = f.function;
        break;
    }
    const auto cov = internal::syscall_coverage(r.syscall);
    r.syscall_patchable = cov.covered;
    if (!cov.covered) {
        r.advice = fmt::format("{} is not made cooperative by syscall patching: {}", r.syscall,
                               cov.advice);
        return;
    }
    if (!patching_on) {
        r.advice = fmt::format(
            "syscall patching is off for this hub ([runtime] patch_syscalls = false): with it "
            "on, {} made by a fiber through libc parks only that fiber",
            r.syscall);
        return;
    }
    // "fd 7 -> /var/lib/x": a regular file (pipes, sockets and anonymous inodes read "pipe:",
    // "socket:", "anon_inode:").
    if (r.syscall_detail.find("-> /") != std::string::npos) {
        r.advice = fmt::format(
            "{} on a file: file I/O is never made cooperative (it is not pollable); use "
            "weft::offload",
            r.syscall);
        return;
    }
    r.advice = fmt::format(
        "syscall patching is on, but this {} did not go through libc's patched function (a raw "
        "system call, or a path inside libc such as stdio): {}",
        r.syscall, cov.advice);
}

}  // namespace weft::monitor::detail
