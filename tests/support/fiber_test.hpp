// FIBER_TEST(Suite, Name): a gtest whose body runs as the first fiber of a private one-hub
// runtime (userver's UTEST), on the backend chosen by WEFT_BACKEND.
#pragma once

#include <gtest/gtest.h>

#include "weft/core/runtime.hpp"

namespace weft::testing {
inline RuntimeOptions test_options() {
    RuntimeOptions o;
    o.name = "test";
    return o;
}
}  // namespace weft::testing

#define FIBER_TEST(Suite, Name)                                                              \
    static void Suite##_##Name##_fiber_body();                                               \
    TEST(Suite, Name) {                                                                      \
        ::weft::run([] { Suite##_##Name##_fiber_body(); }, ::weft::testing::test_options()); \
    }                                                                                        \
    static void Suite##_##Name##_fiber_body()
