// GoogleTest helpers for AssertSwitches: a predicate that runs a body inside a scope and
// returns an AssertionResult carrying the report text, and EXPECT/ASSERT macros around it.
// Header-only; include it from tests (it includes <gtest/gtest.h>).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <utility>

#include "weft/monitor/assert_switches.hpp"

namespace weft::monitor::testing {

/// Runs `body` inside an AssertSwitches scope with `options`; success when the scope passes.
template <class F>
::testing::AssertionResult switches_during(F&& body, AssertSwitches::Options options = {}) {
    AssertSwitches scope(options);
    std::forward<F>(body)();
    std::string failure = scope.check();
    if (failure.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << failure;
}

}  // namespace weft::monitor::testing

/// The statement must let the hub switch at least once.
#define WEFT_EXPECT_SWITCHES(statement) \
    EXPECT_TRUE(::weft::monitor::testing::switches_during([&] { statement; }))
#define WEFT_ASSERT_SWITCHES(statement) \
    ASSERT_TRUE(::weft::monitor::testing::switches_during([&] { statement; }))

/// The statement must never hold the hub for longer than `max` (a std::chrono duration)
/// between two switches.
#define WEFT_EXPECT_NO_BLOCKING_OVER(max, statement)       \
    EXPECT_TRUE(::weft::monitor::testing::switches_during( \
        [&] { statement; },                                \
        ::weft::monitor::AssertSwitches::Options{          \
            std::chrono::duration_cast<std::chrono::nanoseconds>(max), false}))
#define WEFT_ASSERT_NO_BLOCKING_OVER(max, statement)       \
    ASSERT_TRUE(::weft::monitor::testing::switches_during( \
        [&] { statement; },                                \
        ::weft::monitor::AssertSwitches::Options{          \
            std::chrono::duration_cast<std::chrono::nanoseconds>(max), false}))
