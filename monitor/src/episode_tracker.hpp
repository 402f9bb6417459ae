// The watchdog's episode logic, apart from its threads: per hub, when a blockage begins and ends
// and how long it lasted, and whether the code had allowed it; which blockages are reported (one
// report per blockage, a per-minute rate limit that counts what it suppressed); which reports
// share a stack. Time comes from a
// MonitorClock and hubs are described by plain samples, so tests drive it with fakes.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "monitor_clock.hpp"
#include "report_json.hpp"
#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor::detail {

/// What the detector read from one hub's probe (HubProbe) at one look.
struct HubSample {
    std::uint64_t epoch = 0;
    bool running = false;           ///< HubActivity::running; a waiting hub is idle, never blocked
    int tid = 0;                    ///< the hub thread; 0 while unknown (not watched)
    bool blocking_allowed = false;  ///< HubProbe::blocking_allowed above zero
    FiberId running_fiber = 0;
    // Only meaningful with EpisodeTracker::Options::slice_stats (the runtime collects stats):
    std::int64_t slice_start_ns = 0;  ///< when the current slice began
    std::uint64_t slices = 0;         ///< slices ended so far (run_duration's count)
    std::uint64_t slice_ns = 0;       ///< their total length (run_duration's sum)
};

/// A new blockage that must be reported.
struct Detection {
    std::uint64_t report_id = 0;  ///< 1, 2, ... per tracker
    std::int64_t start_ns = 0;    ///< when the blockage began, on the tracker's clock
    FiberId fiber = 0;            ///< from the probe; the stack capture may know better
    /// Blockages of the same kind (allowed or not) suppressed by the rate limit since the
    /// previous report of that kind.
    std::uint64_t suppressed_before = 0;
    bool allowed = false;  ///< the code allowed blocking (HubSample::blocking_allowed)
};

/// What one look at a hub found. When both are set, `ended` happened first.
struct Observation {
    std::optional<BlockingEnd> ended;   ///< a reported blockage ended: its closing record
    std::optional<Detection> detected;  ///< a new blockage to report
    bool watch_began = false;           ///< a new slice is being watched: take CPU baselines now
};

/// Per-hub blockage episodes, the rate limit and the table of distinct stacks. The rate limit
/// is shared by all hubs, except that a hub's first blockage in a minute is always reported.
/// A blockage the limit held back is reported late if it is still going when the limit allows
/// (at the latest a minute after its hub's last report).
///
/// Threads: observe(), describe() and abandon() belong to one thread (the detector). collapse()
/// and stacks() lock the stack table, stats() reads atomics: any thread.
class EpisodeTracker {
  public:
    struct Options {
        std::int64_t threshold_ns = 100'000'000;  ///< max_blocking_time
        std::int64_t period_ns = 20'000'000;      ///< how often the detector looks
        unsigned reports_per_minute = 20;         ///< 0: no limit
        /// Samples carry slice_start_ns, slices and slice_ns, so that a blockage's start and
        /// end are exact; without them both are estimated from when the detector looked.
        bool slice_stats = true;
        /// Distinct stacks kept (the ones seen least recently go): at least the reports kept
        /// for /debug/blocking, which shows their frames from this table.
        std::size_t max_stacks = 1024;
    };

    /// `clock` must outlive the tracker.
    EpisodeTracker(unsigned hubs, Options options, const MonitorClock& clock);

    /// Looks at hub `hub` (< hub count) as `s` shows it now. A hub whose epoch has not moved
    /// while it runs for longer than the threshold is blocked: that is reported once (unless the
    /// rate limit suppresses it), and once its epoch moves a closing record follows with the
    /// measured duration. Idle (waiting) hubs are never blocked.
    ///
    /// Blocking while the code allows it is detected the same way, but marked allowed, counted
    /// apart, and rate-limited in a window of its own (so that deliberate blocking never uses
    /// up the reports of real blockages). A slice in which the allowance starts or ends is two
    /// episodes: the change ends the one and starts watching the other from that moment.
    Observation observe(unsigned hub, const HubSample& s);
    /// The stack capture named the blocked fiber: the closing record carries it.
    void describe(unsigned hub, FiberId fiber, std::string name);
    /// The report of hub's current blockage could not be handed on (the reporter is stuck, or
    /// it could not be made): counts it as dropped; no closing record follows. It gives back
    /// its place in the rate limit and the count of suppressed blockages it carried
    /// (`suppressed_before`), so that the next report tells of them.
    void abandon(unsigned hub, std::uint64_t suppressed_before = 0);

    /// Sets r.stack_hash, r.stack_seen and r.same_stack_as from r.stack and r.id: identical
    /// call paths (whatever system-library frames lie under them) collapse into one entry with
    /// a count.
    void collapse(BlockingReport& r);
    /// The distinct stacks, first seen first (the Options::max_stacks seen most recently).
    std::vector<StackStat> stacks() const;

    HubBlockingStats stats(unsigned hub) const;
    unsigned hub_count() const noexcept { return static_cast<unsigned>(watch_.size()); }

  private:
    // One hub, as the detector sees it.
    struct Watch {
        std::uint64_t epoch = ~0ull;
        bool watching = false;  // running in this epoch, looked at since seen_at
        std::int64_t seen_at = 0;
        bool from_slice_start = false;  // watched since the slice began, not since a change
        bool allowed = false;           // the allowance of the watched episode
        bool blocked = false;
        std::int64_t start = 0;
        bool start_is_slice_start = false;  // start came from the probe's slice_start_ns
        std::int64_t last_seen_blocked = 0;
        std::uint64_t report_id = 0;      // 0: not reported (rate limit)
        bool suppressed = false;          // the rate limit held its report back (so far)
        std::uint64_t suppressed_in = 0;  // the window's `told` when it was held back
        FiberId fiber = 0;
        std::string fiber_name;
        std::uint64_t slices_at = 0;  // the probe's slice count and sum when detected
        std::uint64_t slice_ns_at = 0;
        // This hub's last report of each kind ([allowed]), for the rate limit's fairness.
        bool has_reported[2] = {false, false};
        std::int64_t last_report[2] = {0, 0};
        // The current report: whether it took a place in its window, and the hub's last report
        // before it (given back if it is abandoned).
        bool took_place = false;
        std::pair<bool, std::int64_t> report_before{false, 0};
    };
    struct Counters {
        std::atomic<std::uint64_t> events{0};
        std::atomic<std::uint64_t> dropped{0};
        std::atomic<std::uint64_t> blocking_ns{0};
        std::atomic<bool> blocked{false};
        std::atomic<std::int64_t> blocked_since{0};  // while `blocked`: when it began
        std::atomic<std::uint64_t> allowed_events{0};
        std::atomic<std::uint64_t> allowed_ns{0};
        std::atomic<bool> allowed_blocked{false};
    };
    // The reports of one kind in the last minute, and what it suppressed since its last one.
    struct RateWindow {
        std::deque<std::int64_t> sent;
        std::uint64_t suppressed = 0;
        std::uint64_t told = 0;  // reports that told of (and reset) `suppressed` so far
    };

    void watch_from(Watch& w, const HubSample& s, std::int64_t at, bool from_slice_start) const;
    std::optional<BlockingEnd> close(unsigned hub, std::int64_t end_ns);
    // Reports hub's current blockage (out.detected) if the rate limit allows, else marks it
    // suppressed, to be tried again at the next look while it lasts.
    void try_report(unsigned hub, std::int64_t now, Observation& out);
    std::int64_t end_of_slice(const Watch& w, const HubSample& s, std::int64_t now) const;
    // True when the window has room (then `took_place`: the report holds a place in it) or
    // there is no limit.
    bool admit(RateWindow& window, std::int64_t now, bool& took_place) const;

    const Options o_;
    const MonitorClock& clock_;

    // Detector thread only.
    std::vector<Watch> watch_;
    RateWindow windows_[2];  // [allowed]
    std::uint64_t next_id_ = 1;

    std::unique_ptr<Counters[]> counters_;  // read by any thread

    mutable std::mutex stacks_mu_;
    std::unordered_map<std::uint64_t, StackStat> stacks_;
    std::vector<std::uint64_t> stack_order_;
};

/// FNV-1a over the frames' functions (or modules for unknown code), from the first frame outside
/// the system libraries and PLT stubs outwards.
std::uint64_t stack_hash(const std::vector<StackFrame>& frames);

}  // namespace weft::monitor::detail
