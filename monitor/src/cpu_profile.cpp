// The sampling loop behind sample_cpu_profile(): signal a running hub thread, copy its stack out
// of the capture slot, symbolize it at once (so that only the frames are kept, not the copied
// stack bytes), and count identical stacks together.
#include "weft/monitor/cpu_profile.hpp"

#include <algorithm>
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
    };
    std::map<Key, Counted> counted;

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
            if (p.activity.load(std::memory_order_relaxed) != HubActivity::running) continue;
            // Runnable, not asleep in the kernel; also spares a sleeping call an EINTR.
            if (tid <= 0 || detail::thread_state(tid) != 'R') continue;
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
            ++c.samples;
        }
        // A look that took longer than a period (many busy hubs, a high hz) skips the ticks it
        // missed, instead of sampling back to back past the profile's end.
        if (const auto now = std::chrono::steady_clock::now(); now > next + period) next = now;
    }
    const auto elapsed = std::min<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - start, options.duration);

    PprofProfile prof({{"samples", "count"}, {"cpu", "nanoseconds"}}, "cpu");
    prof.set_period("cpu", "nanoseconds", period.count());
    prof.set_time(
        std::chrono::duration_cast<std::chrono::nanoseconds>(start_wall.time_since_epoch()).count(),
        elapsed.count());  // what it sampled for: shorter when cancelled or stopped
    for (const auto& [key, c] : counted) {
        std::vector<std::pair<std::string, std::string>> labels{{"hub", key.hub}};
        if (!key.route.empty()) labels.emplace_back("route", key.route);
        prof.add_sample(c.stack, {c.samples, c.samples * period.count()}, labels);
    }
    return prof;
}

}  // namespace weft::monitor
