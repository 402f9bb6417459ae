// Blockage episodes: detection, measured durations, the rate limit and stack collapsing. Pure
// logic over samples and a clock; watchdog.cpp feeds it from the hubs' probes.
#include "episode_tracker.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include "display.hpp"
#include "symbolizer.hpp"

namespace weft::monitor::detail {

namespace {

constexpr std::int64_t kMinute = 60'000'000'000;

// Code every stack passes through on its way into the kernel or a clock: where exactly in it a
// thread was interrupted says nothing about which call path blocked.
bool kernel_entry_module(std::string_view m) {
    static constexpr std::string_view kPrefixes[] = {
        "libc.so", "libstdc++.so", "libgcc_s.so", "libm.so",     "ld-linux",
        "[vdso",   "libasan.so",   "libtsan.so",  "libubsan.so", "libpthread.so"};
    return starts_with_any(m, kPrefixes);
}

}  // namespace

// The same call path hashes the same although the interrupted instruction, and the libc, vDSO
// or PLT frames under it, differ.
std::uint64_t stack_hash(const std::vector<StackFrame>& frames) {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](std::string_view s) {
        for (unsigned char c : s) {
            h ^= c;
            h *= 1099511628211ull;
        }
        h ^= 0xff;
        h *= 1099511628211ull;
    };
    std::size_t first = 0;
    while (first < frames.size() &&
           (kernel_entry_module(frames[first].module) || frames[first].function == kPltStub))
        ++first;
    if (first == frames.size()) first = 0;  // all system code: hash it all
    for (std::size_t i = first; i < frames.size(); ++i) {
        const auto& f = frames[i];
        mix(f.module);
        if (!f.function.empty())
            mix(f.function);
        else if (i > first)
            mix(std::to_string(f.address));
    }
    return h;
}

EpisodeTracker::EpisodeTracker(unsigned hubs, Options options, const MonitorClock& clock)
    : o_(options), clock_(clock), watch_(hubs), counters_(new Counters[hubs]) {}

Observation EpisodeTracker::observe(unsigned i, const HubSample& s) {
    const std::int64_t now = clock_.now_ns();
    Observation out;
    Watch& w = watch_[i];

    if (w.blocked) {
        const bool same_slice = s.epoch == w.epoch && s.running;
        if (same_slice && s.blocking_allowed == w.allowed) {
            w.last_seen_blocked = now;
            // Suppressed by the rate limit, and still going: reported as soon as the limit
            // allows (at the latest a minute after this hub's last report), so that a hub
            // stuck for good is never left unreported.
            if (w.suppressed) try_report(i, now, out);
            return out;
        }
        if (same_slice) {
            // The code allowed blocking, or stopped allowing it, in the middle of the slice:
            // this episode ends here, and the rest of the slice is watched as a new one.
            const std::int64_t at = (w.last_seen_blocked + now) / 2;
            out.ended = close(i, at);
            watch_from(w, s, at, false);
            out.watch_began = true;
        } else {
            out.ended = close(i, end_of_slice(w, s, now));
        }
    }
    if (s.epoch != w.epoch) {
        w.epoch = s.epoch;
        w.watching = false;
    }
    if (!s.running || s.tid <= 0) {
        w.watching = false;
        return out;
    }
    if (!w.watching || s.blocking_allowed != w.allowed) {
        watch_from(w, s, now, !w.watching);
        out.watch_began = true;
    }
    if (w.from_slice_start && o_.slice_stats) {
        // Exact from the probe, but never earlier than a period before we first saw the slice
        // (the probe's start can be stale right after an idle wait).
        w.start = std::clamp(s.slice_start_ns, w.seen_at - o_.period_ns, w.seen_at);
        w.start_is_slice_start = w.start == s.slice_start_ns;
    }
    if (now - w.start <= o_.threshold_ns) return out;

    // Blocked.
    w.blocked = true;
    w.last_seen_blocked = now;
    w.report_id = 0;
    w.suppressed = false;
    w.fiber = s.running_fiber;
    w.fiber_name.clear();
    w.slices_at = s.slices;
    w.slice_ns_at = s.slice_ns;
    Counters& c = counters_[i];
    (w.allowed ? c.allowed_events : c.events).fetch_add(1, std::memory_order_relaxed);
    if (!w.allowed) c.blocked_since.store(w.start, std::memory_order_relaxed);
    // Release: a reader that sees `blocked` sees this blockage's start (stats()).
    (w.allowed ? c.allowed_blocked : c.blocked).store(true, std::memory_order_release);
    try_report(i, now, out);
    return out;
}

void EpisodeTracker::try_report(unsigned i, std::int64_t now, Observation& out) {
    Watch& w = watch_[i];
    const int kind = w.allowed ? 1 : 0;
    RateWindow& window = windows_[kind];
    // The limit is shared by all hubs, but a hub not reported in the last minute is reported
    // even when the others used it up: one hub that blocks all the time must not hide another.
    const bool hub_quiet = !w.has_reported[kind] || now - w.last_report[kind] >= kMinute;
    bool took_place = false;
    if (!admit(window, now, took_place) && !hub_quiet) {
        // Counted among the suppressed now; among the dropped if it ends unreported.
        if (!w.suppressed) {
            ++window.suppressed;
            w.suppressed_in = window.told;
        }
        w.suppressed = true;
        return;
    }
    if (w.suppressed) {
        // Reported late: unless a report told of it meanwhile, it is no longer one of those
        // the next report tells of.
        if (w.suppressed_in == window.told && window.suppressed > 0) --window.suppressed;
        w.suppressed = false;
    }
    w.took_place = took_place;
    w.report_before = {w.has_reported[kind], w.last_report[kind]};
    w.has_reported[kind] = true;
    w.last_report[kind] = now;
    w.report_id = next_id_++;
    const std::uint64_t told_of = std::exchange(window.suppressed, 0);
    if (told_of > 0) ++window.told;
    out.detected = Detection{w.report_id, w.start, w.fiber, told_of, w.allowed};
}

void EpisodeTracker::watch_from(Watch& w, const HubSample& s, std::int64_t at,
                                bool from_slice_start) const {
    w.watching = true;
    w.allowed = s.blocking_allowed;
    w.seen_at = at;
    w.start = at;
    w.from_slice_start = from_slice_start;
    w.start_is_slice_start = false;
}

void EpisodeTracker::describe(unsigned i, FiberId fiber, std::string name) {
    watch_[i].fiber = fiber;
    watch_[i].fiber_name = std::move(name);
}

void EpisodeTracker::abandon(unsigned i, std::uint64_t suppressed_before) {
    counters_[i].dropped.fetch_add(1, std::memory_order_relaxed);
    Watch& w = watch_[i];
    w.report_id = 0;
    const int kind = w.allowed ? 1 : 0;
    RateWindow& window = windows_[kind];
    if (w.took_place && !window.sent.empty()) window.sent.pop_back();
    w.took_place = false;
    w.has_reported[kind] = w.report_before.first;
    w.last_report[kind] = w.report_before.second;
    // The blockages it would have told of wait for the next report again, as untold.
    if (suppressed_before > 0 && window.told > 0) --window.told;
    window.suppressed += suppressed_before;
}

bool EpisodeTracker::admit(RateWindow& window, std::int64_t now, bool& took_place) const {
    took_place = false;
    if (o_.reports_per_minute == 0) return true;
    while (!window.sent.empty() && now - window.sent.front() >= kMinute)
        window.sent.pop_front();
    if (window.sent.size() >= o_.reports_per_minute) return false;
    window.sent.push_back(now);
    took_place = true;
    return true;
}

std::int64_t EpisodeTracker::end_of_slice(const Watch& w, const HubSample& s,
                                          std::int64_t now) const {
    if (!o_.slice_stats) return (w.last_seen_blocked + now) / 2;
    std::int64_t end = now;
    if (w.start_is_slice_start && s.slices == w.slices_at + 1 && s.slice_ns >= w.slice_ns_at) {
        // Exactly one slice ended since: the blocked one, and its length is known.
        end = w.start + static_cast<std::int64_t>(s.slice_ns - w.slice_ns_at);
    } else if (s.slice_start_ns >= w.last_seen_blocked && s.slice_start_ns <= now) {
        end = s.slice_start_ns;  // the next slice (or loop turn) began when the blockage ended
    }
    if (end < w.last_seen_blocked || end > now) end = now;
    return end;
}

std::optional<BlockingEnd> EpisodeTracker::close(unsigned i, std::int64_t end_ns) {
    Watch& w = watch_[i];
    Counters& c = counters_[i];
    const std::int64_t dur = std::max<std::int64_t>(0, end_ns - w.start);
    (w.allowed ? c.allowed_ns : c.blocking_ns)
        .fetch_add(static_cast<std::uint64_t>(dur), std::memory_order_relaxed);
    (w.allowed ? c.allowed_blocked : c.blocked).store(false, std::memory_order_relaxed);
    if (w.suppressed) c.dropped.fetch_add(1, std::memory_order_relaxed);
    w.suppressed = false;
    w.blocked = false;
    w.watching = false;
    if (w.report_id == 0) return std::nullopt;  // not reported: no closing record either
    BlockingEnd e;
    e.report_id = w.report_id;
    e.when = clock_.wall();
    e.hub = i;
    e.fiber_id = w.fiber;
    e.fiber_name = w.fiber_name;
    e.duration_s = static_cast<double>(dur) / 1e9;
    e.allowed = w.allowed;
    return e;
}

void EpisodeTracker::collapse(BlockingReport& r) {
    r.stack_hash = stack_hash(r.stack);
    std::lock_guard<std::mutex> g(stacks_mu_);
    if (stacks_.size() >= o_.max_stacks && !stacks_.count(r.stack_hash)) {
        // Full: the stack seen least recently goes (unknown code hashes by address, so a
        // long run can meet a new stack with almost every report).
        auto oldest = stack_order_.begin();
        for (auto h = stack_order_.begin(); h != stack_order_.end(); ++h)
            if (stacks_.at(*h).last_report < stacks_.at(*oldest).last_report) oldest = h;
        stacks_.erase(*oldest);
        stack_order_.erase(oldest);
    }
    auto [it, fresh] = stacks_.try_emplace(r.stack_hash);
    StackStat& st = it->second;
    if (fresh) {
        st.hash = r.stack_hash;
        st.first_report = r.id;
        st.frames = r.stack;
        stack_order_.push_back(r.stack_hash);
    }
    st.count++;
    st.last_report = r.id;
    r.stack_seen = st.count;
    r.same_stack_as = fresh ? 0 : st.first_report;
}

std::vector<StackStat> EpisodeTracker::stacks() const {
    std::lock_guard<std::mutex> g(stacks_mu_);
    std::vector<StackStat> out;
    out.reserve(stack_order_.size());
    for (auto h : stack_order_)
        out.push_back(stacks_.at(h));
    return out;
}

HubBlockingStats EpisodeTracker::stats(unsigned i) const {
    const Counters& c = counters_[i];
    HubBlockingStats st;
    st.events = c.events.load(std::memory_order_relaxed);
    st.seconds = static_cast<double>(c.blocking_ns.load(std::memory_order_relaxed)) / 1e9;
    st.dropped = c.dropped.load(std::memory_order_relaxed);
    st.blocked_now = c.blocked.load(std::memory_order_acquire);
    if (st.blocked_now) {
        const std::int64_t since = c.blocked_since.load(std::memory_order_relaxed);
        st.blocked_for =
            static_cast<double>(std::max<std::int64_t>(0, clock_.now_ns() - since)) / 1e9;
    }
    st.allowed_events = c.allowed_events.load(std::memory_order_relaxed);
    st.allowed_seconds = static_cast<double>(c.allowed_ns.load(std::memory_order_relaxed)) / 1e9;
    st.allowed_now = c.allowed_blocked.load(std::memory_order_relaxed);
    return st;
}

}  // namespace weft::monitor::detail
