// AssertSwitches: passes when the hub switches, fails when it does not, measures the gap between
// every pair of switches (including scope start -> first switch and last switch -> scope end),
// does not count idle time (gevent issue #1517), hub_only, and the gtest helpers.
#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

#include "fiber_test.hpp"
#include "weft/core/weft.hpp"
#include "weft/monitor/assert_switches.hpp"
#include "weft/monitor/testing.hpp"

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using weft::monitor::AssertSwitches;
using weft::monitor::FailedToSwitch;

namespace {

__attribute__((noinline)) void spin_for(std::chrono::nanoseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

FIBER_TEST(AssertSwitchesTest, PassesWhenTheHubSwitches) {
    AssertSwitches a;
    EXPECT_TRUE(weft::sleep_for(1ms).ok());
    EXPECT_EQ(a.check(), "");
    EXPECT_GE(a.switches(), 1u);
}

FIBER_TEST(AssertSwitchesTest, FailsWhenNothingSwitches) {
    AssertSwitches a;
    spin_for(1ms);
    std::string failure = a.check();
    EXPECT_THAT(failure, HasSubstr("To any fiber in "));
    EXPECT_THAT(failure, HasSubstr("No switch happened in the scope."));
    EXPECT_THAT(failure, HasSubstr("fiber 1 \"main\""));  // the hub's fiber tree
    EXPECT_EQ(a.switches(), 0u);
}

FIBER_TEST(AssertSwitchesTest, DestructorThrowsTheReport) {
    try {
        AssertSwitches a;
        spin_for(100us);
    } catch (const FailedToSwitch& e) {
        EXPECT_THAT(e.what(), HasSubstr("To any fiber"));
        return;
    }
    ADD_FAILURE() << "no FailedToSwitch";
}

FIBER_TEST(AssertSwitchesTest, NeverHidesAnExceptionInFlight) {
    try {
        AssertSwitches a;
        throw std::runtime_error("the real error");
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "the real error");
        return;
    }
    ADD_FAILURE() << "exception lost";
}

FIBER_TEST(AssertSwitchesTest, FastCodeWithoutSwitchesPassesWithAMaximum) {
    AssertSwitches a(50ms);
    spin_for(1ms);
    EXPECT_EQ(a.check(), "");
}

// gevent #1517: sleeping is not blocking. The hub is idle while the fiber sleeps, so no gap here
// is more than a few microseconds of work, although 1.2 s pass between some switches.
FIBER_TEST(AssertSwitchesTest, IdleTimeIsNotBlocking) {
    AssertSwitches a(50ms);
    EXPECT_TRUE(weft::sleep_for(110ms).ok());
    EXPECT_TRUE(weft::sleep_for(10ms).ok());
    EXPECT_EQ(a.check(), "");
    EXPECT_LT(a.longest_gap(), 20ms);
}

FIBER_TEST(AssertSwitchesTest, GapBetweenTwoSwitches) {
    AssertSwitches a(50ms);
    weft::yield();
    spin_for(80ms);
    weft::yield();
    std::string failure = a.check();
    EXPECT_THAT(failure, HasSubstr("(max allowed 0.0500 seconds)"));
    EXPECT_THAT(failure, HasSubstr("while fiber 1 \"main\" held hub 0"));
    EXPECT_GE(a.longest_gap(), 80ms);
    // Loosely bounded: the OS may preempt the spin on a loaded machine.
    EXPECT_LT(a.longest_gap(), 1s);
}

FIBER_TEST(AssertSwitchesTest, GapFromTheScopeStartToTheFirstSwitch) {
    AssertSwitches a(50ms);
    spin_for(80ms);
    weft::yield();
    // 0.08 s, or more when the OS preempts the spin on a loaded machine (0.0909 s seen).
    EXPECT_THAT(a.check(), HasSubstr("The longest stretch without a switch was 0."));
    EXPECT_GE(a.longest_gap(), 80ms);
    EXPECT_LT(a.longest_gap(), 1s);
}

FIBER_TEST(AssertSwitchesTest, GapFromTheLastSwitchToTheScopeEnd) {
    AssertSwitches a(50ms);
    weft::yield();
    EXPECT_TRUE(weft::sleep_for(1ms).ok());
    spin_for(80ms);
    EXPECT_NE(a.check(), "");
    EXPECT_GE(a.longest_gap(), 80ms);
}

// Gaps that add up to twice the maximum, none of them near it: a gap stretches by however long
// the OS preempts the thread, so only a preemption of nearly 200 ms fails this.
FIBER_TEST(AssertSwitchesTest, ManyShortGapsPass) {
    AssertSwitches a(200ms);
    for (int i = 0; i < 40; ++i) {
        spin_for(10ms);
        weft::yield();
    }
    EXPECT_EQ(a.check(), "");
    EXPECT_GE(a.longest_gap(), 10ms);
    EXPECT_LT(a.longest_gap(), 200ms);
}

// Another fiber holds the hub while the scope's own fiber is parked: that is blocking too, and
// the report names the culprit.
FIBER_TEST(AssertSwitchesTest, ReportsTheFiberThatHeldTheHub) {
    AssertSwitches a(50ms);
    auto hog = weft::spawn("hog", [] { spin_for(80ms); });
    hog.join();
    std::string failure = a.check();
    EXPECT_THAT(failure, HasSubstr("while fiber 2 \"hog\" held hub 0"));
}

FIBER_TEST(AssertSwitchesTest, ScopesNestAndEndInAnyOrder) {
    auto outer = std::make_unique<AssertSwitches>();
    auto inner = std::make_unique<AssertSwitches>(50ms);
    EXPECT_TRUE(weft::sleep_for(1ms).ok());
    EXPECT_EQ(outer->check(), "");  // the outer one ends first
    spin_for(80ms);
    EXPECT_NE(inner->check(), "");
    AssertSwitches again;  // and the hub's observer chain still works
    weft::yield();
    EXPECT_EQ(again.check(), "");
}

// hub_only: handing the hub from one ready fiber to the next does not count, a loop turn does.
FIBER_TEST(AssertSwitchesTest, HubOnlyCountsLoopTurns) {
    auto other = weft::spawn("other", [] {});
    {
        AssertSwitches a(AssertSwitches::Options{std::nullopt, true});
        weft::yield();  // "other" is ready: it runs, then we do, without polling I/O
        EXPECT_THAT(a.check(), HasSubstr("To the hub in"));
    }
    other.join();
    AssertSwitches b(AssertSwitches::Options{std::nullopt, true});
    EXPECT_TRUE(weft::sleep_for(1ms).ok());  // the loop must turn to fire the timer
    EXPECT_EQ(b.check(), "");
}

// Two fibers yielding to each other never let the loop turn when the run budget is huge: fine
// for "any switch", a blockage for hub_only. The yields go on for twice the bound of "any",
// which the OS's preemption of a loaded machine's thread (105 ms seen) stays under.
TEST(AssertSwitchesTest, HubOnlyGapIgnoresFiberToFiberSwitches) {
    weft::RuntimeOptions o = weft::testing::test_options();
    o.run_budget = 1u << 30;
    weft::run(
        [] {
            auto until = std::chrono::steady_clock::now() + 500ms;
            auto partner = weft::spawn("partner", [until] {
                while (std::chrono::steady_clock::now() < until)
                    weft::yield();
            });
            AssertSwitches any(250ms);
            AssertSwitches hub(50ms, true);
            while (std::chrono::steady_clock::now() < until)
                weft::yield();
            std::string hub_failure = hub.check();
            std::string any_failure = any.check();
            partner.join();
            EXPECT_EQ(any_failure, "");
            EXPECT_THAT(hub_failure, HasSubstr("To the hub in"));
        },
        o);
}

TEST(AssertSwitchesTest, RefusesToRunOffAHub) {
    EXPECT_THROW(AssertSwitches a, std::logic_error);
}

void does_not_switch() {
    spin_for(100us);
}
void blocks_80ms() {
    spin_for(80ms);
}

FIBER_TEST(AssertSwitchesTest, GtestHelpers) {
    WEFT_EXPECT_SWITCHES((void)weft::sleep_for(1ms));
    WEFT_EXPECT_NO_BLOCKING_OVER(50ms, (void)weft::sleep_for(60ms));
    EXPECT_NONFATAL_FAILURE(WEFT_EXPECT_SWITCHES(does_not_switch()), "No switch happened");
    EXPECT_NONFATAL_FAILURE(WEFT_EXPECT_NO_BLOCKING_OVER(50ms, blocks_80ms()),
                            "max allowed 0.0500 seconds");
    auto r = weft::monitor::testing::switches_during([] { does_not_switch(); });
    EXPECT_FALSE(r);
}

}  // namespace
