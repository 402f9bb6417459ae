// The sampling loop behind sample_cpu_profile(): signal a running hub thread, copy its stack out
// of the capture slot, symbolize it at once (so that only the frames are kept, not the copied
// stack bytes), and count identical stacks together.
#include "weft/monitor/cpu_profile.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>

#include "stack_capture.hpp"
#include "symbolizer.hpp"
#include "thread_inspect.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/log.hpp"

namespace weft::monitor {

namespace {

// Enough stack for the CFI unwinder through handler code; deeper frames come from the
// frame-pointer chain.
constexpr std::size_t kSampleStackBytes = 64 * 1024;
constexpr auto kCaptureTimeout = std::chrono::milliseconds(50);
// The stack of a sample taken while the hub thread was on a CPU inside its I/O poll.
constexpr const char* kKernelIo = "[kernel] I/O in the hub's poll (sends, receives, completions)";
constexpr const char* kHubLoop = "weft hub loop";

struct SlotLease {
    detail::CaptureSlot* slot = detail::acquire_slot();
    ~SlotLease() { detail::release_slot(slot); }
};

}  // namespace

PprofProfile sample_cpu_profile(const Runtime& rt, const CpuProfileOptions& options) {
    const int hz = std::clamp(options.hz, 1, 1000);
    if (detail::install_capture_handler() < 0)
        throw std::runtime_error("stack capture is unavailable (no free realtime signal)");
    SlotLease lease;
    if (!lease.slot) throw std::runtime_error("stack capture is unavailable (no free slot)");
    auto buf = std::make_unique<char[]>(kSampleStackBytes);
    detail::Symbolizer symbolizer;
    symbolizer.warm();

    struct Key {
        std::vector<std::string> functions;
        std::string hub, route;
        bool operator<(const Key& o) const {
            return std::tie(functions, hub, route) < std::tie(o.functions, o.hub, o.route);
        }
    };
    struct Counted {
        std::vector<StackFrame> stack;
        std::int64_t samples = 0;
        unsigned hub = 0;
    };
    std::map<Key, Counted> counted;

    struct PerHub {
        std::int64_t cpu_at_start = 0;
        std::int64_t running = 0;  // samples with a captured stack
        std::int64_t in_poll = 0;  // samples runnable inside the I/O poll
    };
    std::vector<PerHub> hubs(rt.hub_count());
    for (unsigned i = 0; i < rt.hub_count(); ++i)
        hubs[i].cpu_at_start = detail::thread_cpu_ns(weft::internal::probe(rt.hub(i)).tid.load());

    const auto period = std::chrono::nanoseconds(1'000'000'000 / hz);
    const auto start_wall = std::chrono::system_clock::now();
    const auto start = std::chrono::steady_clock::now();
    const auto end = start + options.duration;
    auto next = start;
    while ((next += period) < end) {
        std::this_thread::sleep_until(next);
        if (options.stop && options.stop->load(std::memory_order_acquire)) break;
        if (options.cancel && options.cancel->load(std::memory_order_acquire)) break;
        for (unsigned i = 0; i < rt.hub_count(); ++i) {
            const HubProbe& p = weft::internal::probe(rt.hub(i));
            const int tid = p.tid.load(std::memory_order_relaxed);
            const HubActivity activity = p.activity.load(std::memory_order_relaxed);
            if (activity != HubActivity::running && activity != HubActivity::waiting) continue;
            // Runnable, not asleep in the kernel; also spares a sleeping call an EINTR.
            if (tid <= 0 || detail::thread_state(tid) != 'R') continue;
            if (activity == HubActivity::waiting) {
                // Runnable inside the hub's I/O poll: the kernel's work for the hub (io_uring
                // sends, receives and completes I/O in the call that waits). Counted as such,
                // without a signal, which would cut the call short; bounded at the end by the
                // CPU time the thread really had (runnable is not running).
                ++hubs[i].in_poll;
                continue;
            }
            detail::CaptureSlot& slot = *lease.slot;
            slot.stack_buf = buf.get();
            slot.stack_cap = kSampleStackBytes;
            if (detail::capture(slot, tid, kCaptureTimeout) != detail::CaptureResult::ok) continue;
            if (slot.status != detail::CaptureStatus::ok) {
                detail::finish(slot);
                continue;
            }
            std::string route;
            for (int k = 0; k < slot.label_count; ++k)
                if (std::string_view(slot.labels[k].key, slot.labels[k].key_len) == "route")
                    route.assign(slot.labels[k].value, slot.labels[k].value_len);
            detail::RawStack raw = detail::copy_out(slot);
            detail::finish(slot);
            std::string note;
            std::vector<StackFrame> frames;
            try {
                frames = symbolizer.stack(raw, tid, note);
            } catch (const std::exception&) {
                continue;
            }
            Key key{{}, std::to_string(i), std::move(route)};
            for (const StackFrame& f : frames)
                key.functions.push_back(f.function.empty() ? f.module : f.function);
            Counted& c = counted[std::move(key)];
            if (c.stack.empty()) c.stack = std::move(frames);
            c.hub = i;
            ++c.samples;
            ++hubs[i].running;
        }
        // A look that took longer than a period (many busy hubs, a high hz) skips the ticks it
        // missed, instead of sampling back to back past the profile's end.
        if (const auto now = std::chrono::steady_clock::now(); now > next + period) next = now;
    }
    const auto elapsed = std::min<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - start, options.duration);
    // The kernel's share: what was sampled inside the poll, at most the thread's CPU time that
    // the captured stacks leave (a runnable thread may wait for a CPU; on a busy machine most
    // of those samples would be time it did not run).
    // Then each hub's CPU time as the kernel counted it: on a busy machine this thread wakes
    // late and skips ticks, and a capture may time out, so the samples hold less time than the
    // hub used (a twentieth of it was seen). Each hub's samples keep their proportions, and
    // their CPU values add up to its CPU time.
    std::vector<double> scale(rt.hub_count(), 1.0);
    for (unsigned i = 0; i < rt.hub_count(); ++i) {
        const int tid = weft::internal::probe(rt.hub(i)).tid.load();
        const std::int64_t end_cpu = detail::thread_cpu_ns(tid);
        const bool measured = end_cpu >= 0 && hubs[i].cpu_at_start >= 0;
        const std::int64_t used = measured ? end_cpu - hubs[i].cpu_at_start : 0;
        std::int64_t n = hubs[i].in_poll;
        if (n > 0 && measured) {
            const std::int64_t left = used - hubs[i].running * period.count();
            n = std::min(n, std::max<std::int64_t>(0, left) / period.count());
        }
        if (n > 0) {
            Counted& c = counted[Key{{kKernelIo, kHubLoop}, std::to_string(i), {}}];
            c.stack = {StackFrame{0, kKernelIo, 0, "[kernel]", "", 0},
                       StackFrame{0, kHubLoop, 0, "[weft]", "", 0}};
            c.samples = n;
            c.hub = i;
        }
        const std::int64_t sampled = (hubs[i].running + n) * period.count();
        if (measured && sampled > 0 && used > 0)
            scale[i] = static_cast<double>(used) / static_cast<double>(sampled);
    }

    PprofProfile prof({{"samples", "count"}, {"cpu", "nanoseconds"}}, "cpu");
    prof.set_period("cpu", "nanoseconds", period.count());
    prof.set_time(
        std::chrono::duration_cast<std::chrono::nanoseconds>(start_wall.time_since_epoch()).count(),
        elapsed.count());  // what it sampled for: shorter when cancelled or stopped
    for (const auto& [key, c] : counted) {
        std::vector<std::pair<std::string, std::string>> labels{{"hub", key.hub}};
        if (!key.route.empty()) labels.emplace_back("route", key.route);
        const double cpu = static_cast<double>(c.samples * period.count()) * scale[c.hub];
        prof.add_sample(c.stack, {c.samples, static_cast<std::int64_t>(std::llround(cpu))}, labels);
    }
    return prof;
}

}  // namespace weft::monitor
