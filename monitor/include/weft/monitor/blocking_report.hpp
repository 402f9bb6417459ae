// What the watchdog reports about a blocked hub (BlockingReport), the closing record written
// when the hub runs again (BlockingEnd), and their renderings: text laid out like gevent's
// monitor report, and one-line JSON objects.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/fiber.hpp"
#include "weft/core/hub.hpp"

namespace weft::monitor {

/// One frame of a native stack, symbolized by the watchdog (libdw).
struct StackFrame {
    std::uint64_t address = 0;  ///< the return address (or the interrupted pc for frame 0)
    std::string function;       ///< demangled; empty when unknown
    std::uint64_t offset = 0;   ///< from the start of the function
    std::string module;         ///< file name of the executable or library
    std::string file;           ///< source file, when line tables exist
    unsigned line = 0;
    /// The address as the module's file numbers it (what `addr2line -e MODULE` takes): the same
    /// from one run to the next, where `address` moves with where the module was loaded.
    std::uint64_t module_offset = 0;
};

/// What the hub thread was doing, from its CPU time over the blockage versus wall time and
/// from /proc/self/task/<tid>/{stat,syscall,wchan}.
enum class BlockingCause {
    running_on_cpu,   ///< runnable all along, in user code: a loop, computation, exceptions...
    in_system_call,   ///< sleeping in the kernel: sleep, read, lock, DNS...
    waiting_for_cpu,  ///< runnable but on a CPU under a tenth of that time: an overloaded or
                      ///< throttled machine, not the code, held the hub
    unknown,
};
const char* cause_name(BlockingCause c) noexcept;

/// One fiber of a hub, for the fiber tree (gevent's GreenletTree).
struct FiberNode {
    FiberInfo info;
    int depth = 0;  ///< 0: a root (spawned from the hub's own loop, or its parent has ended)
};

/// One hub's fibers, as a depth-first tree, and a summary when the list was cut short.
struct HubFibers {
    unsigned hub = 0;
    int tid = 0;
    std::string backend;
    std::string activity;  ///< "running", "waiting", ...
    FiberId running_fiber = 0;
    std::vector<FiberNode> fibers;
    std::size_t omitted = 0;  ///< fibers left out of `fibers` to keep a report short
};

/// One OS thread of the process.
struct ThreadInfo {
    int tid = 0;
    std::string name;
    char state = '?';  ///< from /proc: R running, S sleeping, D disk wait...
    int hub = -1;      ///< the hub it runs, -1 if none
};

struct BlockingReport {
    std::uint64_t id = 0;  ///< 1, 2, ... per watchdog
    std::chrono::system_clock::time_point when;
    unsigned hub = 0;
    int tid = 0;
    std::string thread_name;
    double threshold_s = 0;
    double blocked_s = 0;  ///< blocked so far, when the report was made
    /// The code had allowed blocking on its hub (AllowBlocking): reported
    /// for the record, counted apart from the blockages nobody asked for.
    bool allowed = false;

    FiberId fiber_id = 0;  ///< 0: the hub's own loop (a posted callback or a timer)
    std::string fiber_name;
    FiberId parent_id = 0;
    std::string spawn_file;
    unsigned spawn_line = 0;
    std::string spawn_function;
    std::vector<std::pair<std::string, std::string>> labels;  ///< the request: method, path...

    BlockingCause cause = BlockingCause::unknown;
    double cpu_share = 0;  ///< thread CPU time / wall time over the blockage so far
    /// Time runnable but waiting for a CPU / wall time (-1 without scheduler statistics).
    double cpu_wait_share = -1;
    std::string syscall;  ///< "read", "futex"... when in a system call
    long syscall_nr = -1;
    std::string syscall_detail;  ///< e.g. "fd 7 -> pipe:[123]"
    std::string wchan;           ///< kernel wait channel, e.g. "pipe_read"
    /// For a blockage in a system call: the first frame of the stack outside libc, libstdc++,
    /// weft's own syscall wrappers and the sanitizer runtimes — the library the call came from
    /// ("libpq.so.5") and its function ("pqSocketPoll"). Empty without a stack.
    std::string caller_module;
    std::string caller_function;
    /// Syscall patching would make this system call cooperative when a fiber makes it through
    /// libc's function; whether patching was on for the hub; and what to do ("" if nothing).
    bool syscall_patchable = false;
    bool patching_on = false;
    std::string advice;
    /// Waiting for a lock (a futex) that its own thread holds: a fiber of this hub took it and
    /// parked (a std::mutex held across a call that waits cooperatively), and no fiber of the
    /// hub can run to release it. The hub will not run again.
    bool own_lock = false;

    std::vector<StackFrame> stack;    ///< innermost first
    std::string stack_note;           ///< how the stack was obtained, or why it is missing
    std::uint64_t stack_hash = 0;     ///< of the frames' functions and modules
    std::uint64_t stack_seen = 1;     ///< reports with this stack so far, this one included
    std::uint64_t same_stack_as = 0;  ///< id of the first report with this stack (if not this)

    std::uint64_t suppressed_before = 0;  ///< blockages not reported (rate limit) since the last
    std::vector<HubFibers> hubs;          ///< every hub's fibers (when track_fiber_tree)
    std::vector<ThreadInfo> threads;
};

/// The closing record: the hub ran again.
struct BlockingEnd {
    std::uint64_t report_id = 0;  ///< 0 when the blockage was not reported (rate limit)
    std::chrono::system_clock::time_point when;
    unsigned hub = 0;
    FiberId fiber_id = 0;
    std::string fiber_name;
    double duration_s = 0;  ///< measured total duration of the blockage
    bool allowed = false;   ///< the blockage was allowed (see BlockingReport::allowed)
    /// What held the hub after the report, judged on that part alone (from the report to the
    /// last check that saw the hub still blocked, by the scheduler's times as the report's
    /// `cause` is): a blockage that began starved of a CPU may then compute, or the reverse.
    /// `unknown` when no check came between the report and the end (a part under a check
    /// period), or the times spent waiting for a CPU could not be read (no schedstat).
    BlockingCause cause_after_report = BlockingCause::unknown;
};

/// Per-hub totals (the blocking metrics). Allowed blockages are counted apart.
struct HubBlockingStats {
    std::uint64_t events = 0;  ///< blockages detected (reported or not), allowed ones excluded
    double seconds = 0;        ///< total measured duration of those that ended
    /// Reports not made, of either kind: the rate limit, or a reporter that is stuck.
    std::uint64_t dropped = 0;
    bool blocked_now = false;          ///< a blockage that was not allowed is in progress
    double blocked_for = 0;            ///< how long that one has lasted so far (0: none)
    std::uint64_t allowed_events = 0;  ///< blockages while the code allowed blocking
    double allowed_seconds = 0;        ///< total measured duration of those that ended
    bool allowed_now = false;          ///< an allowed blockage is in progress
};

/// The report as text, laid out like gevent's: a headline, the blocked stack, then "Info:"
/// with the threads and every hub's fibers.
/// `collapse_repeated`: for a stack already reported, print a one-line reference instead.
std::string format_text(const BlockingReport& r, bool collapse_repeated = true);
std::string format_text(const BlockingEnd& e);
/// One JSON object on one line (no trailing newline), with "kind":"blocked" / "unblocked".
std::string to_json(const BlockingReport& r, bool include_stack = true);
std::string to_json(const BlockingEnd& e);

/// The fiber trees and threads as text (the body of gevent's format_run_info).
std::string format_fiber_trees(const std::vector<HubFibers>& hubs);
std::string format_threads(const std::vector<ThreadInfo>& threads);

}  // namespace weft::monitor
