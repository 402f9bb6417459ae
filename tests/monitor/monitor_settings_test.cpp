// MonitorSettings made in code are validated by the watchdog (the configuration checks what it
// reads itself, with the same limits).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "weft/monitor/settings.hpp"

namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using weft::monitor::MonitorSettings;

TEST(MonitorSettings, ValidateChecksValuesSetInCode) {
    MonitorSettings s;
    s.max_blocking_time = 0ms;
    s.memory_period = 1s;
    s.recent_reports = 0;
    auto errs = weft::monitor::validate(s, "test");
    ASSERT_EQ(errs.size(), 3u);
    EXPECT_EQ(errs[0].key, "max_blocking_time");
    EXPECT_EQ(errs[1].key, "memory_period");
    EXPECT_EQ(errs[2].key, "recent_reports");
    EXPECT_THAT(errs[1].message(), HasSubstr("(test): expected a duration of at least 2 s"));
    EXPECT_TRUE(weft::monitor::validate(MonitorSettings{}).empty());
}

}  // namespace
