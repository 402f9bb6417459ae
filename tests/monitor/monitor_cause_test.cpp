// The watchdog's judgement of what held a hub, from scheduler samples of its thread: on a CPU,
// asleep in a system call, or runnable and queued for a CPU (a wait schedstat has not counted
// yet because it still goes on).
#include <gtest/gtest.h>

#include "thread_inspect.hpp"

using weft::monitor::BlockingCause;
using weft::monitor::detail::CauseEstimate;
using weft::monitor::detail::classify_blockage;
using weft::monitor::detail::SchedSample;
using weft::monitor::detail::SyscallState;

namespace {

constexpr double kWall = 100e6;  // 100 ms between the two samples

SyscallState runnable() {
    SyscallState s;
    s.valid = true;
    s.running = true;
    return s;
}

SyscallState in_syscall(long nr) {
    SyscallState s;
    s.valid = true;
    s.nr = nr;
    return s;
}

TEST(Cause, OnACpuMostOfTheTime) {
    CauseEstimate e = classify_blockage({1'000, 500}, {96'001'000, 1'500}, kWall, runnable());
    EXPECT_EQ(e.cause, BlockingCause::running_on_cpu);
    EXPECT_NEAR(e.cpu_share, 0.96, 1e-9);
    EXPECT_NEAR(e.cpu_wait_share, 0.00001, 1e-9);
}

TEST(Cause, CountedWaitForACpu) {
    // A wait that has ended: schedstat has counted it.
    CauseEstimate e = classify_blockage({0, 0}, {1'000'000, 90'000'000}, kWall, runnable());
    EXPECT_EQ(e.cause, BlockingCause::waiting_for_cpu);
    EXPECT_NEAR(e.cpu_wait_share, 0.9, 1e-9);
}

TEST(Cause, StarvedButNotQuiteNone) {
    // A thread at nice 19 beside a busy one: a few percent (6 % seen over 100 ms), the rest
    // queued. Under a tenth of its runnable time on a CPU counts as starved.
    CauseEstimate e = classify_blockage({0, 0}, {6'000'000, 94'000'000}, kWall, runnable());
    EXPECT_EQ(e.cause, BlockingCause::waiting_for_cpu);
    // A share a busy machine gives code that computes: its own doing.
    e = classify_blockage({0, 0}, {15'000'000, 85'000'000}, kWall, runnable());
    EXPECT_EQ(e.cause, BlockingCause::running_on_cpu);
    // A wait that began before the first sample counts whole: the shares add up to over 1,
    // and the tenth is of the time in between (at most all of it).
    e = classify_blockage({0, 0}, {15'000'000, 150'000'000}, kWall, runnable());
    EXPECT_EQ(e.cause, BlockingCause::running_on_cpu);
}

TEST(Cause, StarvedWithAWaitStillGoingOn) {
    // 7 % on a CPU, 55 % counted as waiting, and the rest a wait schedstat has not counted yet:
    // it never slept, so it was ready to run all along, not just 62 % of the time.
    CauseEstimate e = classify_blockage({0, 0, 4}, {7'000'000, 55'000'000, 4}, kWall, runnable());
    EXPECT_EQ(e.cause, BlockingCause::waiting_for_cpu);
    // Had it slept meanwhile, only the counted 62 % was surely runnable.
    e = classify_blockage({0, 0, 4}, {7'000'000, 55'000'000, 5}, kWall, runnable());
    EXPECT_EQ(e.cause, BlockingCause::running_on_cpu);
}

TEST(Cause, QueuedNowAfterAFewPercent) {
    // Queued now, 7 % on a CPU and no wait counted yet: starved (the old fixed 5 % said not).
    CauseEstimate e = classify_blockage({0, 0, 3}, {7'000'000, 0, 3}, kWall, runnable(), true);
    EXPECT_EQ(e.cause, BlockingCause::waiting_for_cpu);
    EXPECT_NEAR(e.cpu_wait_share, 0.93, 1e-9);
}

TEST(Cause, AsleepInASystemCall) {
    CauseEstimate e = classify_blockage({0, 0}, {300'000, 0}, kWall, in_syscall(230));
    EXPECT_EQ(e.cause, BlockingCause::in_system_call);
    // A thread in a system call is not queued for a CPU, whatever the caller says.
    EXPECT_EQ(classify_blockage({0, 0}, {300'000, 0}, kWall, in_syscall(230), true).cause,
              BlockingCause::in_system_call);
}

TEST(Cause, QueuedNowAndNotCountedYet) {
    CauseEstimate e = classify_blockage({0, 0, 7}, {1'000'000, 0, 7}, kWall, runnable(), true);
    EXPECT_EQ(e.cause, BlockingCause::waiting_for_cpu);
    EXPECT_NEAR(e.cpu_share, 0.01, 1e-9);
    EXPECT_NEAR(e.cpu_wait_share, 0.99, 1e-9);
}

TEST(Cause, QueuedNowAfterSleeping) {
    // Queued now, but it went to sleep since the first sample: the uncounted time may be that
    // sleep (a read, a usleep) as well as the wait, so it is not blamed on the machine.
    CauseEstimate e = classify_blockage({0, 0, 7}, {1'000'000, 0, 8}, kWall, runnable(), true);
    EXPECT_EQ(e.cause, BlockingCause::in_system_call);
    // Nor when the count of sleeps is unknown.
    e = classify_blockage({0, 0, -1}, {1'000'000, 0, -1}, kWall, runnable(), true);
    EXPECT_EQ(e.cause, BlockingCause::in_system_call);
}

TEST(Cause, BackOnACpuAfterSleeping) {
    // Runnable at the report but not queued (its CPU time moves): it slept until a moment ago.
    CauseEstimate e = classify_blockage({0, 0}, {1'000'000, 0}, kWall, runnable(), false);
    EXPECT_EQ(e.cause, BlockingCause::in_system_call);
    EXPECT_NEAR(e.cpu_wait_share, 0.0, 1e-9);
}

TEST(Cause, QueuedButItRan) {
    // Queued now after a fair share of the CPU: the code computes on a busy machine.
    CauseEstimate e = classify_blockage({0, 0, 3}, {20'000'000, 0, 3}, kWall, runnable(), true);
    EXPECT_EQ(e.cause, BlockingCause::running_on_cpu);
    EXPECT_NEAR(e.cpu_wait_share, 0.8, 1e-9);
}

TEST(Cause, WithoutSchedulerStatistics) {
    CauseEstimate e = classify_blockage({0, -1, 0}, {500'000, -1, 0}, kWall, runnable(), true);
    EXPECT_EQ(e.cause, BlockingCause::waiting_for_cpu);
    CauseEstimate busy = classify_blockage({0, -1}, {90'000'000, -1}, kWall, runnable());
    EXPECT_EQ(busy.cause, BlockingCause::running_on_cpu);
    EXPECT_EQ(busy.cpu_wait_share, -1);
}

TEST(Cause, NoCpuTime) {
    CauseEstimate e = classify_blockage({-1, -1}, {-1, -1}, kWall, runnable(), true);
    EXPECT_EQ(e.cause, BlockingCause::unknown);
}

}  // namespace
