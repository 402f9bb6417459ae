// Text rendering of blocking reports, closing records, fiber trees and thread lists, laid out
// after gevent's monitor output ("... appears to be blocked", "Blocked Stack", "Info:",
// "* Threads", "* Greenlets"), so that a gevent user finds things where they expect them.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "display.hpp"
#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor {

namespace detail {

std::string display_path(std::string_view path) {
    // The source root of this tree, from this file's own path at build time, when that path
    // is absolute.
    static const std::string root = [] {
        std::string_view self(__FILE__);
        constexpr std::string_view tail = "monitor/src/report_text.cpp";
        if (self.starts_with('/') && self.size() > tail.size() && self.ends_with(tail))
            return std::string(self.substr(0, self.size() - tail.size()));
        return std::string();
    }();
    if (!root.empty() && path.size() > root.size() && path.starts_with(root))
        return std::string(path.substr(root.size()));
    // A relative path is relative to the build folder it was compiled in (ccache's base_dir
    // makes them so, and a build folder is most often inside the tree): past its leading
    // "../" and "./" it is the path in the tree.
    if (!path.starts_with('/')) {
        for (;;) {
            if (path.starts_with("../")) {
                path.remove_prefix(3);
            } else if (path.starts_with("./")) {
                path.remove_prefix(2);
            } else {
                break;
            }
        }
    }
    return std::string(path);
}

std::string shorten(std::string_view s, std::size_t max) {
    if (s.size() <= max || max < 8) return std::string(s);
    std::size_t head = (max - 3) * 2 / 3;
    std::size_t tail = max - 3 - head;
    return std::string(s.substr(0, head)) + "..." + std::string(s.substr(s.size() - tail));
}

}  // namespace detail

std::string detail::utc(std::chrono::system_clock::time_point tp) {
    std::time_t t = std::chrono::system_clock::to_time_t(tp);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", buf, ms);
}

namespace {

using detail::utc;

const std::string kStars(80, '*');

std::string fiber_title(FiberId id, const std::string& name) {
    if (id == 0) return "the hub's own loop (a posted callback or a timer)";
    return fmt::format("fiber {} \"{}\"", id, name);
}

std::string frame_line(std::size_t i, const StackFrame& f) {
    std::string s = fmt::format("  #{:<2} 0x{:016x} ", i, f.address);
    if (!f.function.empty())
        s += fmt::format("{}+0x{:x}", f.function, f.offset);
    else
        s += "??";
    if (!f.file.empty()) s += fmt::format(" at {}:{}", f.file, f.line);
    if (!f.module.empty() && f.function.empty())
        s += fmt::format(" ({}+0x{:x})", f.module, f.module_offset);  // for addr2line -e
    else if (!f.module.empty())
        s += fmt::format(" ({})", f.module);
    return s;
}

std::string age(std::int64_t ns) {
    return fmt::format("{:.3f} s", static_cast<double>(ns) / 1e9);
}

}  // namespace

const char* cause_name(BlockingCause c) noexcept {
    switch (c) {
        case BlockingCause::running_on_cpu:
            return "running_on_cpu";
        case BlockingCause::in_system_call:
            return "in_system_call";
        case BlockingCause::waiting_for_cpu:
            return "waiting_for_cpu";
        case BlockingCause::unknown:
            return "unknown";
    }
    return "unknown";
}

std::string format_threads(const std::vector<ThreadInfo>& threads) {
    std::string out = kStars + "\n* Threads\n" + kStars + "\n";
    for (const auto& t : threads) {
        out += fmt::format("Thread {} ({}) state {}", t.tid, t.name, t.state);
        if (t.hub >= 0) out += fmt::format(", runs hub {}", t.hub);
        out += '\n';
    }
    return out;
}

std::string format_fiber_trees(const std::vector<HubFibers>& hubs) {
    std::string out = kStars + "\n* Fibers\n" + kStars + "\n";
    for (const auto& h : hubs) {
        out += fmt::format("---- Hub {} (tid {}, {}, {}", h.hub, h.tid, h.backend, h.activity);
        if (h.running_fiber) out += fmt::format(", running fiber {}", h.running_fiber);
        out += ")\n";
        out += fmt::format("<hub {}>\n", h.hub);
        // Which nodes are the last among their siblings decides where the vertical bars go.
        const auto& n = h.fibers;
        std::vector<bool> last(n.size(), true);
        for (std::size_t i = 0; i < n.size(); ++i) {
            for (std::size_t j = i + 1; j < n.size(); ++j) {
                if (n[j].depth < n[i].depth) break;
                if (n[j].depth == n[i].depth) {
                    last[i] = false;
                    break;
                }
            }
        }
        std::vector<bool> open;  // per depth: more siblings below this ancestor
        for (std::size_t i = 0; i < n.size(); ++i) {
            const FiberInfo& f = n[i].info;
            auto d = static_cast<std::size_t>(n[i].depth);
            open.resize(d + 1);
            open[d] = !last[i];
            std::string indent;
            for (std::size_t k = 0; k < d; ++k)
                indent += open[k] ? " |    " : "      ";
            std::string state = fiber_state_name(f.state);
            if (f.state == FiberState::running || f.id == h.running_fiber) state = "RUNNING";
            if (!f.wait_reason.empty()) state += " (" + f.wait_reason + ")";
            out += fmt::format("{} +--- fiber {} \"{}\"; {}, age {}\n", indent, f.id, f.name, state,
                               age(f.age_ns));
            std::string tail = indent + (last[i] ? "      " : " |    ");
            if (f.spawn_file && *f.spawn_file)
                out += fmt::format("{}     Spawned at: {}:{} in {}\n", tail,
                                   detail::display_path(f.spawn_file), f.spawn_line,
                                   detail::shorten(f.spawn_function ? f.spawn_function : "?"));
            if (f.parent) out += fmt::format("{}     Parent: fiber {}\n", tail, f.parent);
        }
        if (h.omitted) out += fmt::format(" ... and {} more fibers\n", h.omitted);
    }
    return out;
}

std::string format_text(const BlockingReport& r, bool collapse_repeated) {
    std::string out;
    out +=
        fmt::format("{} : {} on hub {} {} for {:.3f} s (threshold {:.3f} s)", utc(r.when),
                    fiber_title(r.fiber_id, r.fiber_name), r.hub,
                    r.allowed ? "blocks it" : "appears to be blocked", r.blocked_s, r.threshold_s);
    out += r.allowed ? "; allowed: the code declared this blocking deliberate (AllowBlocking)\n"
                     : "\n";
    out += fmt::format("    Reported by the weft watchdog (report #{})\n", r.id);
    switch (r.cause) {
        case BlockingCause::running_on_cpu:
            out +=
                fmt::format("    Running on CPU: {:.0f}% of the time blocked so far was CPU time",
                            r.cpu_share * 100);
            if (r.cpu_wait_share >= 0.2)
                out += fmt::format(", {:.0f}% waiting for a CPU (the machine is busy)",
                                   r.cpu_wait_share * 100);
            out += '\n';
            break;
        case BlockingCause::in_system_call:
            out += fmt::format("    Blocked in a system call: {}",
                               r.syscall.empty() ? "?" : r.syscall);
            if (!r.syscall_detail.empty()) out += fmt::format(" ({})", r.syscall_detail);
            if (!r.wchan.empty()) out += fmt::format(", wait channel {}", r.wchan);
            out += fmt::format("; {:.0f}% CPU time\n", r.cpu_share * 100);
            if (!r.caller_module.empty())
                out += fmt::format("    Called from {}{}\n", r.caller_module,
                                   r.caller_function.empty()
                                       ? std::string()
                                       : " (" + detail::shorten(r.caller_function) + ")");
            break;
        case BlockingCause::waiting_for_cpu:
            out += fmt::format(
                "    Waiting for a CPU: the thread was runnable but got {:.0f}% CPU time (the "
                "machine is overloaded, or the thread is throttled)\n",
                r.cpu_share * 100);
            break;
        case BlockingCause::unknown:
            out += "    Cause unknown (thread CPU time unavailable)\n";
            break;
    }
    if (!r.advice.empty()) out += fmt::format("    What to do: {}\n", r.advice);
    if (!r.labels.empty()) {
        // A request's labels, or what else the fiber serves (a plugin's background fiber).
        const bool request = std::any_of(r.labels.begin(), r.labels.end(),
                                         [](const auto& kv) { return kv.first == "method"; });
        out += request ? "    Request:" : "    Serving:";
        for (const auto& [k, v] : r.labels)
            out += fmt::format(" {}={}", k, v);
        out += '\n';
    }
    if (r.fiber_id) {
        out += fmt::format("    Fiber: id {} \"{}\"", r.fiber_id, r.fiber_name);
        if (r.parent_id) out += fmt::format(", parent {}", r.parent_id);
        if (!r.spawn_file.empty())
            out += fmt::format(", spawned at {}:{} in {}", detail::display_path(r.spawn_file),
                               r.spawn_line, detail::shorten(r.spawn_function));
        out += '\n';
    }
    out += fmt::format("    Thread: tid {} \"{}\"\n", r.tid, r.thread_name);
    if (r.suppressed_before)
        out += fmt::format(
            "    Rate limit: {} blockage(s) since the previous report were counted, not reported\n",
            r.suppressed_before);

    if (collapse_repeated && r.same_stack_as != 0) {
        out += fmt::format("Blocked Stack: the same as report #{} (seen {} times, hash {:016x})",
                           r.same_stack_as, r.stack_seen, r.stack_hash);
        for (const auto& f : r.stack) {
            if (f.function.empty()) continue;
            out += fmt::format("; innermost known frame {}", f.function);
            if (!f.file.empty()) out += fmt::format(" at {}:{}", f.file, f.line);
            break;
        }
        out += '\n';
    } else {
        out += fmt::format("Blocked Stack (hub {}, tid {}; {}):\n", r.hub, r.tid, r.stack_note);
        for (std::size_t i = 0; i < r.stack.size(); ++i)
            out += frame_line(i, r.stack[i]) + '\n';
        if (r.stack.empty()) out += "  (no stack)\n";
    }
    if (!r.threads.empty() || !r.hubs.empty()) {
        out += "Info:\n";
        if (!r.threads.empty()) out += format_threads(r.threads);
        if (!r.hubs.empty()) out += format_fiber_trees(r.hubs);
    }
    return out;
}

std::string format_text(const BlockingEnd& e) {
    std::string s = fmt::format("{} : hub {} runs again: {} was blocked for {:.3f} s in total{}",
                                utc(e.when), e.hub, fiber_title(e.fiber_id, e.fiber_name),
                                e.duration_s, e.allowed ? ", allowed" : "");
    if (e.report_id)
        s += fmt::format(" (report #{}{})", e.report_id,
                         !e.allowed && e.cause_after_report == BlockingCause::waiting_for_cpu
                             ? "; after it the hub was starved of a CPU"
                             : "");
    else
        s += " (not reported: rate limit)";
    return s;
}

}  // namespace weft::monitor
