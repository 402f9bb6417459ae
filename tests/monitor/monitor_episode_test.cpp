// The watchdog's episode logic (EpisodeTracker, internal to monitor/) on a fake clock and fake
// hub probe values: one report per blockage, a closing record with the measured duration,
// repeated stacks collapsed with a count, the per-minute rate limit with its suppressed count
// and its recovery, idle or switching hubs never reported, and blocking the code allowed
// reported as allowed and counted apart. No sleeps, no real hubs.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "episode_tracker.hpp"
#include "monitor_clock.hpp"

using namespace std::chrono_literals;
using weft::monitor::BlockingReport;
using weft::monitor::StackFrame;
using weft::monitor::detail::Detection;
using weft::monitor::detail::EpisodeTracker;
using weft::monitor::detail::HubSample;
using weft::monitor::detail::MonitorClock;
using weft::monitor::detail::Observation;

namespace {

constexpr std::int64_t kMs = 1'000'000;

class FakeClock final : public MonitorClock {
  public:
    std::int64_t now_ns() const noexcept override { return now_; }
    std::chrono::system_clock::time_point wall() const noexcept override {
        return std::chrono::system_clock::time_point(std::chrono::nanoseconds(now_));
    }
    void advance(std::chrono::nanoseconds d) { now_ += d.count(); }

  private:
    std::int64_t now_ = 1'000'000 * kMs;  // an arbitrary origin, far from 0
};

// One hub's probe, moved by hand the way a hub moves it: the epoch advances whenever control
// returns to the hub, and an ended slice adds its length to the run-duration histogram.
class FakeHub {
  public:
    explicit FakeHub(const FakeClock& clock) : clock_(clock) {
        s_.tid = 4242;
        s_.slice_start_ns = clock_.now_ns();
    }
    void begin_slice(weft::FiberId fiber = 7) {
        ++s_.epoch;
        s_.running = true;
        s_.running_fiber = fiber;
        s_.slice_start_ns = clock_.now_ns();
    }
    // The slice ends and the hub goes to wait for I/O (idle).
    void end_slice() {
        s_.slices += 1;
        s_.slice_ns += static_cast<std::uint64_t>(clock_.now_ns() - s_.slice_start_ns);
        ++s_.epoch;
        s_.running = false;
        s_.running_fiber = 0;
        s_.slice_start_ns = clock_.now_ns();
    }
    HubSample& sample() { return s_; }

  private:
    const FakeClock& clock_;
    HubSample s_;
};

EpisodeTracker::Options options(unsigned per_minute = 20, bool slice_stats = true) {
    EpisodeTracker::Options o;
    o.threshold_ns = 100 * kMs;
    o.period_ns = 20 * kMs;
    o.reports_per_minute = per_minute;
    o.slice_stats = slice_stats;
    return o;
}

// What a run of looks found.
struct Seen {
    std::vector<Detection> detected;
    std::vector<weft::monitor::BlockingEnd> ended;
    void add(const Observation& o) {
        if (o.ended) ended.push_back(*o.ended);
        if (o.detected) detected.push_back(*o.detected);
    }
};

// The detector's loop: `looks` times, advance one period and look at hub 0.
Seen look(EpisodeTracker& t, FakeClock& clock, FakeHub& hub, int looks) {
    Seen seen;
    for (int k = 0; k < looks; ++k) {
        clock.advance(20ms);
        seen.add(t.observe(0, hub.sample()));
    }
    return seen;
}

// One whole blockage of `held` on hub `index`, looked at every period until it ends and once
// after.
Seen blockage(EpisodeTracker& t, FakeClock& clock, FakeHub& hub, std::chrono::nanoseconds held,
              unsigned index = 0) {
    Seen seen;
    hub.begin_slice();
    const std::int64_t end = clock.now_ns() + held.count();
    while (clock.now_ns() + 20 * kMs < end) {
        clock.advance(20ms);
        seen.add(t.observe(index, hub.sample()));
    }
    clock.advance(std::chrono::nanoseconds(end - clock.now_ns()));
    hub.end_slice();
    clock.advance(20ms);
    seen.add(t.observe(index, hub.sample()));
    return seen;
}

TEST(Episode, OneReportPerBlockage) {
    FakeClock clock;
    EpisodeTracker t(1, options(), clock);
    FakeHub hub(clock);
    hub.begin_slice(7);
    const std::int64_t began = clock.now_ns();

    // Within the threshold (100 ms): five looks, nothing yet.
    Seen early = look(t, clock, hub, 5);
    EXPECT_TRUE(early.detected.empty());
    EXPECT_FALSE(t.stats(0).blocked_now);

    // The first look past the threshold reports it; the next 40 looks (0.8 s more) do not again.
    Seen first = look(t, clock, hub, 1);
    ASSERT_EQ(first.detected.size(), 1u);
    EXPECT_EQ(first.detected[0].report_id, 1u);
    EXPECT_EQ(first.detected[0].start_ns, began);  // from the probe's slice start, exactly
    EXPECT_EQ(first.detected[0].fiber, 7u);
    Seen later = look(t, clock, hub, 40);
    EXPECT_TRUE(later.detected.empty());
    EXPECT_TRUE(later.ended.empty());
    EXPECT_EQ(t.stats(0).events, 1u);
    EXPECT_TRUE(t.stats(0).blocked_now);

    hub.end_slice();
    Seen after = look(t, clock, hub, 10);
    EXPECT_EQ(after.ended.size(), 1u);
    EXPECT_TRUE(after.detected.empty());
    EXPECT_FALSE(t.stats(0).blocked_now);

    // A second blockage is a second report, with the next id.
    Seen second = blockage(t, clock, hub, 300ms);
    ASSERT_EQ(second.detected.size(), 1u);
    EXPECT_EQ(second.detected[0].report_id, 2u);
    EXPECT_EQ(second.ended.size(), 1u);
    EXPECT_EQ(t.stats(0).events, 2u);
}

TEST(Episode, ClosingRecordCarriesTheMeasuredDuration) {
    FakeClock clock;
    EpisodeTracker t(1, options(), clock);
    FakeHub hub(clock);
    hub.begin_slice(9);
    Seen seen = look(t, clock, hub, 6);
    ASSERT_EQ(seen.detected.size(), 1u);
    t.describe(0, 9, "culprit");
    // The slice ends 357 ms after it began, between two looks; the detector notices 20 ms on.
    clock.advance(357ms - 6 * 20ms);
    hub.end_slice();
    clock.advance(20ms);
    Observation o = t.observe(0, hub.sample());
    ASSERT_TRUE(o.ended.has_value());
    EXPECT_EQ(o.ended->report_id, seen.detected[0].report_id);
    EXPECT_EQ(o.ended->hub, 0u);
    EXPECT_EQ(o.ended->fiber_id, 9u);
    EXPECT_EQ(o.ended->fiber_name, "culprit");
    EXPECT_NEAR(o.ended->duration_s, 0.357, 1e-9);  // the slice's own length, not the look's
    EXPECT_EQ(o.ended->when, clock.wall());
    EXPECT_NEAR(t.stats(0).seconds, 0.357, 1e-9);
}

TEST(Episode, WithoutSliceStatsTheDurationIsEstimatedFromTheLooks) {
    FakeClock clock;
    EpisodeTracker t(1, options(20, false), clock);
    FakeHub hub(clock);
    Seen seen = blockage(t, clock, hub, 400ms);
    ASSERT_EQ(seen.detected.size(), 1u);
    ASSERT_EQ(seen.ended.size(), 1u);
    // Start: the first look that saw it running; end: between the last look that saw it
    // blocked and the one that saw it run again. Both within one period of the truth.
    EXPECT_NEAR(seen.ended[0].duration_s, 0.4, 0.02 + 1e-9);
    EXPECT_LT(seen.ended[0].duration_s, 0.4);
}

StackFrame frame(std::string function, std::string module, std::uint64_t address) {
    StackFrame f;
    f.function = std::move(function);
    f.module = std::move(module);
    f.address = address;
    return f;
}

BlockingReport report_with_stack(std::uint64_t id, std::vector<StackFrame> stack) {
    BlockingReport r;
    r.id = id;
    r.stack = std::move(stack);
    return r;
}

TEST(Episode, RepeatedStacksCollapseWithACount) {
    FakeClock clock;
    EpisodeTracker t(1, options(), clock);
    // One call path, interrupted in different libc functions at different addresses.
    auto path = [](std::string innermost, std::uint64_t pc) {
        return std::vector<StackFrame>{frame(innermost, "libc.so.6", pc),
                                       frame("handler_that_blocks", "libapp.so", 0x5000 + pc),
                                       frame("weft::fiber_entry", "libweft_core.so", 0x9000)};
    };
    BlockingReport r1 = report_with_stack(1, path("nanosleep", 0x100));
    BlockingReport r2 = report_with_stack(2, path("clock_nanosleep", 0x180));
    BlockingReport other = report_with_stack(3, {frame("another_culprit", "libapp.so", 0x7000)});
    BlockingReport r4 = report_with_stack(4, path("nanosleep", 0x104));
    for (BlockingReport* r : {&r1, &r2, &other, &r4})
        t.collapse(*r);

    EXPECT_EQ(r1.stack_seen, 1u);
    EXPECT_EQ(r1.same_stack_as, 0u);
    EXPECT_EQ(r2.stack_seen, 2u);
    EXPECT_EQ(r2.same_stack_as, 1u);
    EXPECT_EQ(r2.stack_hash, r1.stack_hash);
    EXPECT_EQ(other.stack_seen, 1u);
    EXPECT_EQ(other.same_stack_as, 0u);
    EXPECT_NE(other.stack_hash, r1.stack_hash);
    EXPECT_EQ(r4.stack_seen, 3u);
    EXPECT_EQ(r4.same_stack_as, 1u);

    auto stacks = t.stacks();
    ASSERT_EQ(stacks.size(), 2u);  // first seen first
    EXPECT_EQ(stacks[0].hash, r1.stack_hash);
    EXPECT_EQ(stacks[0].count, 3u);
    EXPECT_EQ(stacks[0].first_report, 1u);
    EXPECT_EQ(stacks[0].last_report, 4u);
    EXPECT_EQ(stacks[0].frames.size(), 3u);
    EXPECT_EQ(stacks[1].count, 1u);
    EXPECT_EQ(stacks[1].first_report, 3u);
}

TEST(Episode, TheStacksTableKeepsTheStacksSeenMostRecently) {
    FakeClock clock;
    EpisodeTracker t(1, options(), clock);
    // Unknown code past the innermost frame hashes by address: each report below is a new
    // stack.
    auto unknown = [](std::uint64_t pc) {
        return std::vector<StackFrame>{frame("handler", "libapp.so", 0x500),
                                       frame("", "libapp.so", pc)};
    };
    BlockingReport first = report_with_stack(1, unknown(0x1000));
    t.collapse(first);
    BlockingReport again;
    for (std::uint64_t id = 2; id <= 1100; ++id) {
        if (id == 500) {  // the first stack seen again: recent now
            again = report_with_stack(id, unknown(0x1000));
            t.collapse(again);
            continue;
        }
        BlockingReport r = report_with_stack(id, unknown(0x1000 + 16 * id));
        t.collapse(r);
    }
    // 1099 distinct stacks: the 75 seen least recently went (reports 2..76), not the first
    // one, seen again at 500.
    const auto stacks = t.stacks();
    ASSERT_EQ(stacks.size(), 1024u);
    EXPECT_EQ(again.same_stack_as, 1u);
    EXPECT_EQ(stacks.front().hash, first.stack_hash);
    EXPECT_EQ(stacks[1].first_report, 77u);
    EXPECT_EQ(stacks.back().first_report, 1100u);
}

TEST(Episode, RateLimitCountsWhatItSuppressesAndRecovers) {
    FakeClock clock;
    EpisodeTracker t(1, options(2), clock);
    FakeHub hub(clock);
    std::vector<Seen> runs;
    for (int i = 0; i < 4; ++i) {
        runs.push_back(blockage(t, clock, hub, 200ms));
        clock.advance(1s);
    }
    // Two reports in the minute; the other two are counted, not reported, and have no closing
    // record, but their time still counts.
    EXPECT_EQ(runs[0].detected.size(), 1u);
    EXPECT_EQ(runs[1].detected.size(), 1u);
    EXPECT_TRUE(runs[2].detected.empty());
    EXPECT_TRUE(runs[3].detected.empty());
    EXPECT_TRUE(runs[2].ended.empty());
    EXPECT_TRUE(runs[3].ended.empty());
    EXPECT_EQ(runs[1].ended.size(), 1u);
    EXPECT_EQ(t.stats(0).events, 4u);
    EXPECT_EQ(t.stats(0).dropped, 2u);
    EXPECT_NEAR(t.stats(0).seconds, 4 * 0.2, 1e-9);

    // Still within the minute of the first report: suppressed too.
    EXPECT_TRUE(blockage(t, clock, hub, 200ms).detected.empty());
    EXPECT_EQ(t.stats(0).dropped, 3u);

    // Once a minute has passed since the first two, the window allows again, and the next
    // report says how many it suppressed meanwhile.
    clock.advance(60s);
    Seen back = blockage(t, clock, hub, 200ms);
    ASSERT_EQ(back.detected.size(), 1u);
    EXPECT_EQ(back.detected[0].suppressed_before, 3u);
    EXPECT_EQ(back.detected[0].report_id, 3u);  // ids count reports, not blockages
    EXPECT_EQ(back.ended.size(), 1u);
    Seen next = blockage(t, clock, hub, 200ms);
    ASSERT_EQ(next.detected.size(), 1u);
    EXPECT_EQ(next.detected[0].suppressed_before, 0u);
    EXPECT_TRUE(blockage(t, clock, hub, 200ms).detected.empty());
    EXPECT_EQ(t.stats(0).dropped, 4u);
}

TEST(Episode, ABlockageTheLimitHeldBackIsReportedLateWhileItLasts) {
    // A hub stuck for good (a deadlock) after the limit was used up: its report comes once the
    // limit allows, with the blockage's own start, and the in-progress gauge grows meanwhile.
    FakeClock clock;
    EpisodeTracker t(1, options(2), clock);
    FakeHub hub(clock);
    // The first report is made at the first look past the threshold: 120 ms in.
    const std::int64_t first_report_at = clock.now_ns() + 120 * kMs;
    ASSERT_EQ(blockage(t, clock, hub, 200ms).detected.size(), 1u);
    clock.advance(1s);
    ASSERT_EQ(blockage(t, clock, hub, 200ms).detected.size(), 1u);
    clock.advance(1s);
    hub.begin_slice(9);
    const std::int64_t began = clock.now_ns();
    Seen held = look(t, clock, hub, 50);  // 1 s: past the threshold, the limit used up
    EXPECT_TRUE(held.detected.empty());
    EXPECT_TRUE(t.stats(0).blocked_now);
    EXPECT_NEAR(t.stats(0).blocked_for, 1.0, 0.001);
    EXPECT_EQ(t.stats(0).dropped, 0u) << "not dropped while it may still be reported";
    // Until a minute after the first report, it stays held back; then it is reported.
    const std::int64_t frees_at = first_report_at + 60'000 * kMs;
    const int looks_left =
        static_cast<int>((frees_at - clock.now_ns() + 20 * kMs - 1) / (20 * kMs));
    Seen waiting = look(t, clock, hub, looks_left - 1);
    EXPECT_TRUE(waiting.detected.empty());
    Seen late = look(t, clock, hub, 1);
    ASSERT_EQ(late.detected.size(), 1u) << "a stuck hub was never reported";
    EXPECT_EQ(late.detected[0].start_ns, began);
    EXPECT_EQ(late.detected[0].fiber, 9u);
    EXPECT_EQ(late.detected[0].suppressed_before, 0u) << "it does not count itself";
    EXPECT_GT(t.stats(0).blocked_for, 57.0);
    // Reported once; its end gets the closing record with the whole duration.
    EXPECT_TRUE(look(t, clock, hub, 100).detected.empty());
    const double total = static_cast<double>(clock.now_ns() - began) / 1e9;
    hub.end_slice();
    Seen end = look(t, clock, hub, 1);
    ASSERT_EQ(end.ended.size(), 1u);
    EXPECT_NEAR(end.ended[0].duration_s, total, 0.001);
    EXPECT_FALSE(t.stats(0).blocked_now);
    EXPECT_EQ(t.stats(0).blocked_for, 0.0);
    EXPECT_EQ(t.stats(0).dropped, 0u);
    // One that ends while held back is dropped, and the next report tells of it.
    clock.advance(1s);
    ASSERT_EQ(blockage(t, clock, hub, 200ms).detected.size(), 1u);
    clock.advance(1s);
    EXPECT_TRUE(blockage(t, clock, hub, 200ms).detected.empty());
    EXPECT_EQ(t.stats(0).dropped, 1u);
    clock.advance(61s);
    Seen next = blockage(t, clock, hub, 200ms);
    ASSERT_EQ(next.detected.size(), 1u);
    EXPECT_EQ(next.detected[0].suppressed_before, 1u);
}

TEST(Episode, ALateReportDoesNotHideWhatAnotherReportDidNotTellOf) {
    // One report a minute. Hub 0 is stuck after its first report (held back); hub 1's first
    // report tells of it; hub 1's next blockage is held back and ends. Hub 0's late report must
    // tell of that one: it was not told of yet.
    FakeClock clock;
    EpisodeTracker t(2, options(1), clock);
    FakeHub a(clock);
    FakeHub b(clock);
    ASSERT_EQ(blockage(t, clock, a, 200ms, 0).detected.size(), 1u);
    clock.advance(1s);
    a.begin_slice(5);  // stuck from here on
    auto look_both = [&](int looks) {
        Seen seen_a, seen_b;
        for (int k = 0; k < looks; ++k) {
            clock.advance(20ms);
            seen_a.add(t.observe(0, a.sample()));
            seen_b.add(t.observe(1, b.sample()));
        }
        return std::make_pair(seen_a, seen_b);
    };
    EXPECT_TRUE(look_both(10).first.detected.empty());  // held back
    // Hub 1's first blockage: reported (its first in the minute), telling of hub 0's.
    b.begin_slice(6);
    auto [a1, b1] = look_both(10);
    b.end_slice();
    look_both(1);
    ASSERT_EQ(b1.detected.size(), 1u);
    EXPECT_EQ(b1.detected[0].suppressed_before, 1u);
    // Its second, a second later: held back, and it ends unreported.
    clock.advance(1s);
    b.begin_slice(6);
    auto [a2, b2] = look_both(10);
    b.end_slice();
    look_both(1);
    EXPECT_TRUE(b2.detected.empty());
    EXPECT_EQ(t.stats(1).dropped, 1u);
    // Once the minute is over, hub 0's blockage is reported, telling of hub 1's dropped one.
    std::optional<Detection> late;
    for (int k = 0; k < 4000 && !late; ++k) {
        clock.advance(20ms);
        const Observation o = t.observe(0, a.sample());
        if (o.detected) late = o.detected;
        (void)t.observe(1, b.sample());
    }
    ASSERT_TRUE(late.has_value()) << "hub 0 was never reported";
    EXPECT_EQ(late->fiber, 5u);
    EXPECT_EQ(late->suppressed_before, 1u);
}

TEST(Episode, OneHubThatBlocksAllTheTimeDoesNotHideAnother) {
    // Two reports a minute, shared by the hubs. Hub 0 uses them up and more; hub 1's first
    // blockage in the minute is reported all the same, and tells of what was suppressed.
    FakeClock clock;
    EpisodeTracker t(2, options(2), clock);
    FakeHub noisy(clock);
    FakeHub quiet(clock);
    std::size_t noisy_reports = 0;
    for (int i = 0; i < 5; ++i) {
        noisy_reports += blockage(t, clock, noisy, 200ms, 0).detected.size();
        clock.advance(1s);
    }
    EXPECT_EQ(noisy_reports, 2u);
    EXPECT_EQ(t.stats(0).dropped, 3u);

    Seen first = blockage(t, clock, quiet, 200ms, 1);
    ASSERT_EQ(first.detected.size(), 1u) << "hub 1 was hidden by hub 0's blockages";
    EXPECT_EQ(first.detected[0].suppressed_before, 3u);
    EXPECT_EQ(first.ended.size(), 1u);
    // Within its minute, hub 1 is under the shared limit like any other.
    clock.advance(1s);
    EXPECT_TRUE(blockage(t, clock, quiet, 200ms, 1).detected.empty());
    EXPECT_TRUE(blockage(t, clock, noisy, 200ms, 0).detected.empty());
    EXPECT_EQ(t.stats(1).dropped, 1u);

    // A minute later the window is empty again: both are reported.
    clock.advance(61s);
    EXPECT_EQ(blockage(t, clock, noisy, 200ms, 0).detected.size(), 1u);
    EXPECT_EQ(blockage(t, clock, quiet, 200ms, 1).detected.size(), 1u);
}

TEST(Episode, AHubsFirstReportInAMinuteGoesPastAFullWindowOnce) {
    // One report a minute. Hub 0 takes it; hubs 1 and 2 are each reported once beyond it, and
    // an abandoned extra report leaves its hub free to be reported at the next blockage.
    FakeClock clock;
    EpisodeTracker t(3, options(1), clock);
    FakeHub a(clock), b(clock), c(clock);
    EXPECT_EQ(blockage(t, clock, a, 200ms, 0).detected.size(), 1u);
    const std::int64_t a_reported_by = clock.now_ns();
    EXPECT_TRUE(blockage(t, clock, a, 200ms, 0).detected.empty());
    EXPECT_EQ(blockage(t, clock, b, 200ms, 1).detected.size(), 1u);

    c.begin_slice();
    std::vector<Detection> detected;
    for (int i = 0; i < 10 && detected.empty(); ++i) {
        clock.advance(20ms);
        if (auto o = t.observe(2, c.sample()); o.detected) detected.push_back(*o.detected);
    }
    ASSERT_EQ(detected.size(), 1u);
    t.abandon(2, detected[0].suppressed_before);
    c.end_slice();
    clock.advance(20ms);
    (void)t.observe(2, c.sample());
    EXPECT_EQ(blockage(t, clock, c, 200ms, 2).detected.size(), 1u)
        << "the abandoned report used up hub 2's turn";
    EXPECT_TRUE(blockage(t, clock, c, 200ms, 2).detected.empty());
    EXPECT_TRUE(blockage(t, clock, b, 200ms, 1).detected.empty());
    // A minute after hub 0's report, but within a minute of hub 1's: the window has room
    // again (the extras took no place in it), so hub 1 is reported, and takes that place.
    clock.advance(std::chrono::nanoseconds(a_reported_by + 60'000 * kMs + kMs - clock.now_ns()));
    EXPECT_EQ(blockage(t, clock, b, 200ms, 1).detected.size(), 1u);
    EXPECT_TRUE(blockage(t, clock, b, 200ms, 1).detected.empty());
}

TEST(Episode, AnAbandonedReportGivesBackItsPlaceInTheRateLimit) {
    // Two reports a minute. The first is detected but could not be handed on (the reporter is
    // stuck): it counts as dropped, and the next two blockages are still reported.
    FakeClock clock;
    EpisodeTracker t(1, options(2), clock);
    FakeHub hub(clock);
    hub.begin_slice();
    std::vector<Detection> detected;
    for (int i = 0; i < 10 && detected.empty(); ++i) {
        clock.advance(20ms);
        if (auto o = t.observe(0, hub.sample()); o.detected) detected.push_back(*o.detected);
    }
    ASSERT_EQ(detected.size(), 1u);
    t.abandon(0, detected[0].suppressed_before);
    hub.end_slice();
    clock.advance(20ms);
    EXPECT_FALSE(t.observe(0, hub.sample()).ended) << "no closing record for a dropped report";
    clock.advance(1s);
    EXPECT_EQ(blockage(t, clock, hub, 200ms).detected.size(), 1u);
    clock.advance(1s);
    EXPECT_EQ(blockage(t, clock, hub, 200ms).detected.size(), 1u);
    clock.advance(1s);
    EXPECT_TRUE(blockage(t, clock, hub, 200ms).detected.empty());
    EXPECT_EQ(t.stats(0).dropped, 2u);  // the abandoned one and the last
}

TEST(Episode, NoRateLimitWhenZero) {
    FakeClock clock;
    EpisodeTracker t(1, options(0), clock);
    FakeHub hub(clock);
    for (int i = 0; i < 30; ++i)
        EXPECT_EQ(blockage(t, clock, hub, 150ms).detected.size(), 1u);
    EXPECT_EQ(t.stats(0).dropped, 0u);
}

TEST(Episode, IdleOrSwitchingHubsAreNeverReported) {
    FakeClock clock;
    EpisodeTracker t(3, options(), clock);
    FakeHub idle(clock), busy(clock), unknown(clock);
    unknown.begin_slice();
    unknown.sample().tid = 0;  // the hub thread is not known yet
    Seen seen;
    // Ten seconds: the idle hub waits for I/O all along (its epoch never moves); the busy one
    // runs 20 ms slices back to back, each looked at halfway; the third runs one slice but has
    // no thread id.
    for (int k = 0; k < 500; ++k) {
        busy.begin_slice();
        clock.advance(10ms);
        for (unsigned h = 0; h < 3; ++h) {
            FakeHub& hub = h == 0 ? idle : h == 1 ? busy : unknown;
            seen.add(t.observe(h, hub.sample()));
        }
        clock.advance(10ms);
        busy.end_slice();
    }
    EXPECT_TRUE(seen.detected.empty());
    EXPECT_TRUE(seen.ended.empty());
    for (unsigned h = 0; h < 3; ++h) {
        EXPECT_EQ(t.stats(h).events, 0u) << "hub " << h;
        EXPECT_FALSE(t.stats(h).blocked_now) << "hub " << h;
    }
}

TEST(Episode, HubsAreTrackedApart) {
    FakeClock clock;
    EpisodeTracker t(2, options(), clock);
    FakeHub a(clock), b(clock);
    a.begin_slice(1);
    b.begin_slice(2);
    Seen seen_a, seen_b;
    for (int k = 0; k < 8; ++k) {
        clock.advance(20ms);
        seen_a.add(t.observe(0, a.sample()));
        b.end_slice();  // hub 1 keeps switching
        b.begin_slice(2);
        seen_b.add(t.observe(1, b.sample()));
    }
    ASSERT_EQ(seen_a.detected.size(), 1u);
    EXPECT_EQ(seen_a.detected[0].fiber, 1u);
    EXPECT_TRUE(seen_b.detected.empty());
    EXPECT_EQ(t.stats(0).events, 1u);
    EXPECT_EQ(t.stats(1).events, 0u);
}

TEST(Episode, AllowedBlockingIsReportedAsAllowedAndCountedApart) {
    FakeClock clock;
    EpisodeTracker t(1, options(), clock);
    FakeHub hub(clock);
    hub.sample().blocking_allowed = true;
    Seen seen = blockage(t, clock, hub, 250ms);
    ASSERT_EQ(seen.detected.size(), 1u);
    EXPECT_TRUE(seen.detected[0].allowed);
    ASSERT_EQ(seen.ended.size(), 1u);
    EXPECT_TRUE(seen.ended[0].allowed);
    EXPECT_NEAR(seen.ended[0].duration_s, 0.25, 1e-9);
    auto st = t.stats(0);
    EXPECT_EQ(st.events, 0u);  // not a blockage nobody asked for
    EXPECT_EQ(st.seconds, 0.0);
    EXPECT_EQ(st.allowed_events, 1u);
    EXPECT_NEAR(st.allowed_seconds, 0.25, 1e-9);

    // The same hub blocking without the allowance is an ordinary blockage again.
    hub.sample().blocking_allowed = false;
    Seen plain = blockage(t, clock, hub, 250ms);
    ASSERT_EQ(plain.detected.size(), 1u);
    EXPECT_FALSE(plain.detected[0].allowed);
    EXPECT_FALSE(plain.ended.at(0).allowed);
    EXPECT_EQ(t.stats(0).events, 1u);
    EXPECT_EQ(t.stats(0).allowed_events, 1u);
}

TEST(Episode, AnAllowanceEndingMidSliceSplitsTheSlice) {
    FakeClock clock;
    EpisodeTracker t(1, options(), clock);
    FakeHub hub(clock);
    hub.sample().blocking_allowed = true;
    hub.begin_slice();
    Seen allowed = look(t, clock, hub, 15);  // 300 ms, allowed
    ASSERT_EQ(allowed.detected.size(), 1u);
    EXPECT_TRUE(allowed.detected[0].allowed);
    EXPECT_TRUE(t.stats(0).allowed_now);

    // The scope ends, the fiber keeps the hub for 60 ms more, then switches: the allowed episode
    // closed when the allowance ended, and the short tail is no blockage.
    hub.sample().blocking_allowed = false;
    Seen tail = look(t, clock, hub, 3);
    ASSERT_EQ(tail.ended.size(), 1u);
    EXPECT_TRUE(tail.ended[0].allowed);
    EXPECT_NEAR(tail.ended[0].duration_s, 0.31, 0.01 + 1e-9);  // within half a period
    EXPECT_TRUE(tail.detected.empty());
    EXPECT_FALSE(t.stats(0).allowed_now);
    hub.end_slice();
    Seen after = look(t, clock, hub, 5);
    EXPECT_TRUE(after.detected.empty());
    EXPECT_TRUE(after.ended.empty());
    EXPECT_EQ(t.stats(0).events, 0u);

    // A tail past the threshold is a blockage of its own, from where the allowance ended.
    hub.sample().blocking_allowed = true;
    hub.begin_slice();
    (void)look(t, clock, hub, 10);
    hub.sample().blocking_allowed = false;
    const std::int64_t allowance_ended = clock.now_ns();
    Seen long_tail = look(t, clock, hub, 10);
    ASSERT_EQ(long_tail.detected.size(), 1u);
    EXPECT_FALSE(long_tail.detected[0].allowed);
    EXPECT_GE(long_tail.detected[0].start_ns, allowance_ended);
    EXPECT_LE(long_tail.detected[0].start_ns, allowance_ended + 20 * kMs);
    EXPECT_EQ(t.stats(0).events, 1u);
    EXPECT_EQ(t.stats(0).allowed_events, 2u);
}

TEST(Episode, AllowedBlockingHasARateWindowOfItsOwn) {
    FakeClock clock;
    EpisodeTracker t(1, options(1), clock);
    FakeHub hub(clock);
    auto run = [&](bool allowed) {
        hub.sample().blocking_allowed = allowed;
        Seen seen = blockage(t, clock, hub, 200ms);
        clock.advance(1s);
        return seen.detected.size();
    };
    EXPECT_EQ(run(true), 1u);
    EXPECT_EQ(run(true), 0u);   // the allowed window is full
    EXPECT_EQ(run(false), 1u);  // deliberate blocking did not use up the real reports
    EXPECT_EQ(run(false), 0u);
    EXPECT_EQ(t.stats(0).dropped, 2u);
}

}  // namespace
