// The hub-blocking profile's bookkeeping (server/src/hub_block_profile.cpp): which blockages count
// against a plugin's stall budget, and what a closing record hands on to it.
#include <gtest/gtest.h>

#include "hub_block_profile.hpp"

namespace {

using weft::monitor::BlockingCause;
using weft::monitor::BlockingEnd;
using weft::monitor::BlockingReport;
using weft::server::HubBlockProfile;

BlockingReport report(std::uint64_t id, BlockingCause cause, bool allowed = false) {
    BlockingReport r;
    r.id = id;
    r.cause = cause;
    r.allowed = allowed;
    r.blocked_s = 0.25;
    r.labels = {{"method", "GET"}, {"route", "/work"}};
    return r;
}

BlockingEnd end_of(std::uint64_t id, double seconds, bool allowed = false) {
    BlockingEnd e;
    e.report_id = id;
    e.duration_s = seconds;
    e.allowed = allowed;
    return e;
}

TEST(StallBudget, CodeThatHeldTheHubIsCharged) {
    EXPECT_TRUE(weft::server::charges_plugin(report(1, BlockingCause::running_on_cpu)));
    EXPECT_TRUE(weft::server::charges_plugin(report(1, BlockingCause::in_system_call)));
    EXPECT_TRUE(weft::server::charges_plugin(report(1, BlockingCause::unknown)));
}

TEST(StallBudget, AStarvedHubOrAllowedBlockingIsNotCharged) {
    EXPECT_FALSE(weft::server::charges_plugin(report(1, BlockingCause::waiting_for_cpu)));
    EXPECT_FALSE(weft::server::charges_plugin(report(1, BlockingCause::running_on_cpu, true)));
}

TEST(HubBlockProfile, AClosingRecordSaysWhetherItsReportCharged) {
    HubBlockProfile p;
    p.on_report(report(1, BlockingCause::running_on_cpu), "busy");
    p.on_report(report(2, BlockingCause::waiting_for_cpu), "busy");

    auto starved = p.on_end(end_of(2, 0.5));
    ASSERT_TRUE(starved);
    EXPECT_FALSE(starved->charged);
    EXPECT_EQ(starved->plugin, "busy");
    EXPECT_EQ(starved->reported.count(), 250'000'000);
    EXPECT_EQ(starved->total.count(), 500'000'000);

    auto computed = p.on_end(end_of(1, 0.75));
    ASSERT_TRUE(computed);
    EXPECT_TRUE(computed->charged);
    EXPECT_EQ(computed->total.count(), 750'000'000);

    EXPECT_FALSE(p.on_end(end_of(1, 0.75))) << "a report ends once";
    EXPECT_FALSE(p.on_end(end_of(0, 0.75))) << "an unreported blockage has no report";

    // Both still count in the profile, under their kinds.
    const auto totals = p.totals();
    ASSERT_EQ(totals.size(), 2u);
    std::int64_t cpu_ns = 0, starved_ns = 0;
    for (const auto& [key, e] : totals) {
        EXPECT_EQ(e.blockages, 1);
        EXPECT_EQ(e.route, "/work");
        (e.kind == "cpu" ? cpu_ns : starved_ns) += e.ns;
        EXPECT_TRUE(e.kind == "cpu" || e.kind == "waiting_for_cpu") << e.kind;
    }
    EXPECT_EQ(cpu_ns, 750'000'000);
    EXPECT_EQ(starved_ns, 500'000'000);
}

// The time after a report is judged on what held the hub then (the closing record's
// cause_after_report): a blockage may begin starved of a CPU and then compute, or the reverse.
TEST(HubBlockProfile, TheTimeAfterTheReportIsJudgedOnItsOwn) {
    HubBlockProfile p;
    p.on_report(report(1, BlockingCause::running_on_cpu), "busy");
    p.on_report(report(2, BlockingCause::waiting_for_cpu), "busy");
    p.on_report(report(3, BlockingCause::waiting_for_cpu), "busy");
    p.on_report(report(4, BlockingCause::running_on_cpu, true), "busy");

    BlockingEnd starved_later = end_of(1, 0.5);
    starved_later.cause_after_report = BlockingCause::waiting_for_cpu;
    auto e1 = p.on_end(starved_later);
    ASSERT_TRUE(e1);
    EXPECT_FALSE(e1->charged);

    BlockingEnd computed_later = end_of(2, 0.5);
    computed_later.cause_after_report = BlockingCause::running_on_cpu;
    auto e2 = p.on_end(computed_later);
    ASSERT_TRUE(e2);
    EXPECT_TRUE(e2->charged);

    auto e3 = p.on_end(end_of(3, 0.5));  // not judged (unknown): the report's verdict
    ASSERT_TRUE(e3);
    EXPECT_FALSE(e3->charged);

    BlockingEnd allowed = end_of(4, 0.5, true);
    allowed.cause_after_report = BlockingCause::running_on_cpu;
    auto e4 = p.on_end(allowed);
    ASSERT_TRUE(e4);
    EXPECT_FALSE(e4->charged);
}

}  // namespace
