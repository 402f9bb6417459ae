// Fibers: spawn, join values and exceptions, yield ordering, sleep, cancel.
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber_test.hpp"
#include "weft/core/weft.hpp"

using namespace std::chrono_literals;

FIBER_TEST(Fiber, JoinReturnsValue) {
    auto f = weft::spawn("answer", [] { return 42; });
    EXPECT_EQ(f.join(), 42);
}

FIBER_TEST(Fiber, JoinRethrows) {
    auto f = weft::spawn("thrower", []() -> int { throw std::runtime_error("boom"); });
    EXPECT_THROW(f.join(), std::runtime_error);
}

FIBER_TEST(Fiber, YieldInterleaves) {
    std::vector<int> order;
    auto a = weft::spawn("a", [&] {
        for (int i = 0; i < 3; ++i) {
            order.push_back(1);
            weft::yield();
        }
    });
    auto b = weft::spawn("b", [&] {
        for (int i = 0; i < 3; ++i) {
            order.push_back(2);
            weft::yield();
        }
    });
    a.join();
    b.join();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 1, 2, 1, 2}));
}

FIBER_TEST(Fiber, SleepTakesAbout) {
    auto t0 = weft::Clock::now();
    weft::sleep_for(50ms);
    auto dt = weft::Clock::now() - t0;
    EXPECT_GE(dt, 50ms);
    EXPECT_LT(dt, 500ms);
}

FIBER_TEST(Fiber, CancelWakesSleeper) {
    bool destroyed = false;
    struct Guard {
        bool* d;
        ~Guard() { *d = true; }
    };
    auto f = weft::spawn("sleeper", [&] {
        Guard g{&destroyed};
        auto r = weft::sleep_for(10s);
        return r.ok() ? weft::Errc::ok : r.error().code;
    });
    weft::sleep_for(10ms);
    auto t0 = weft::Clock::now();
    f.cancel();
    EXPECT_EQ(f.join(), weft::Errc::cancelled);
    EXPECT_TRUE(destroyed);
    EXPECT_LT(weft::Clock::now() - t0, 100ms);
}
