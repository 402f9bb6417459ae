// Monitor settings: the gevent-style environment variables, their spellings, and the errors for
// bad values (which must name the variable, the value and what is allowed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "weft/monitor/settings.hpp"

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using weft::monitor::from_env;
using weft::monitor::MonitorSettings;

namespace {

// from_env() takes a plain function pointer; tests give it this table.
std::map<std::string, std::string> g_env;
const char* fake_env(const char* name) {
    auto it = g_env.find(name);
    return it == g_env.end() ? nullptr : it->second.c_str();
}

class Settings : public ::testing::Test {
  protected:
    void SetUp() override { g_env.clear(); }
};

TEST_F(Settings, DefaultsAreGevents) {
    auto r = from_env({}, fake_env);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_TRUE(r.settings.enabled);
    EXPECT_EQ(r.settings.max_blocking_time, 100ms);
    EXPECT_TRUE(r.settings.print_blocking_reports);
    EXPECT_EQ(r.settings.memory_max, 0u);
    EXPECT_EQ(r.settings.memory_period, 5s);
    EXPECT_TRUE(r.settings.track_fiber_tree);
}

TEST_F(Settings, ReadsEveryVariable) {
    g_env = {{"WEFT_MONITOR_THREAD_ENABLE", "off"},         {"WEFT_MAX_BLOCKING_TIME", "0.25"},
             {"WEFT_MONITOR_PRINT_BLOCKING_REPORTS", "No"}, {"WEFT_MONITOR_MEMORY_MAX", "512mb"},
             {"WEFT_MONITOR_MEMORY_PERIOD", "2"},           {"WEFT_TRACK_FIBER_TREE", "0"}};
    auto r = from_env({}, fake_env);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_FALSE(r.settings.enabled);
    EXPECT_EQ(r.settings.max_blocking_time, 250ms);
    EXPECT_FALSE(r.settings.print_blocking_reports);
    EXPECT_EQ(r.settings.memory_max, 512u * 1024 * 1024);
    EXPECT_EQ(r.settings.memory_period, 2s);
    EXPECT_FALSE(r.settings.track_fiber_tree);
}

TEST_F(Settings, EmptyVariablesKeepTheBase) {
    g_env = {{"WEFT_MAX_BLOCKING_TIME", ""}};
    MonitorSettings base;
    base.max_blocking_time = 300ms;
    auto r = from_env(base, fake_env);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.settings.max_blocking_time, 300ms);
}

TEST_F(Settings, BoolSpellings) {
    for (const char* v : {"1", "true", "TRUE", "on", "yes", " Yes "}) {
        auto b = weft::monitor::parse_bool(v);
        ASSERT_TRUE(b.has_value()) << v;
        EXPECT_TRUE(*b) << v;
    }
    for (const char* v : {"0", "false", "off", "no", "OFF"}) {
        auto b = weft::monitor::parse_bool(v);
        ASSERT_TRUE(b.has_value()) << v;
        EXPECT_FALSE(*b) << v;
    }
    for (const char* v : {"", "2", "enable", "y", "nope"})
        EXPECT_FALSE(weft::monitor::parse_bool(v).has_value()) << v;
}

TEST_F(Settings, ByteSizes) {
    using weft::monitor::parse_bytes;
    EXPECT_EQ(parse_bytes("1024"), 1024u);
    EXPECT_EQ(parse_bytes("2kb"), 2048u);
    EXPECT_EQ(parse_bytes("2KB"), 2048u);
    EXPECT_EQ(parse_bytes("3 mb"), 3u * 1024 * 1024);
    EXPECT_EQ(parse_bytes("1.5gb"), 1536u * 1024 * 1024);
    EXPECT_EQ(parse_bytes("0"), 0u);
    EXPECT_FALSE(parse_bytes("-1").has_value());
    EXPECT_FALSE(parse_bytes("12tb").has_value());
    EXPECT_FALSE(parse_bytes("lots").has_value());
    EXPECT_FALSE(parse_bytes("mb").has_value());
}

TEST_F(Settings, BadValuesNameTheVariableAndWhatIsAllowed) {
    g_env = {
        {"WEFT_MONITOR_THREAD_ENABLE", "maybe"}, {"WEFT_MAX_BLOCKING_TIME", "0"},
        {"WEFT_MONITOR_MEMORY_MAX", "much"},     {"WEFT_MONITOR_MEMORY_PERIOD", "1"},
        {"WEFT_TRACK_FIBER_TREE", "perhaps"},    {"WEFT_MONITOR_PRINT_BLOCKING_REPORTS", "loud"}};
    auto r = from_env({}, fake_env);
    ASSERT_EQ(r.errors.size(), 6u);
    std::string m = r.message();
    EXPECT_THAT(m, HasSubstr("WEFT_MONITOR_THREAD_ENABLE='maybe' (environment): expected one of "
                             "1, true, on, yes, 0, false, off, no"));
    EXPECT_THAT(m, HasSubstr("WEFT_MAX_BLOCKING_TIME='0' (environment): expected a number of "
                             "seconds greater than 0"));
    EXPECT_THAT(m, HasSubstr("WEFT_MONITOR_MEMORY_MAX='much' (environment): expected a size in "
                             "bytes with an optional kb, mb or gb suffix"));
    EXPECT_THAT(m, HasSubstr("WEFT_MONITOR_MEMORY_PERIOD='1' (environment): expected a number of "
                             "seconds, at least 2"));
    EXPECT_THAT(m, HasSubstr("WEFT_TRACK_FIBER_TREE='perhaps'"));
    EXPECT_THAT(m, HasSubstr("WEFT_MONITOR_PRINT_BLOCKING_REPORTS='loud'"));
}

TEST_F(Settings, BlockingTimeRejectsNonNumbers) {
    for (const char* v : {"abc", "-0.1", "0.1s", "nan", "inf", "1e400"}) {
        g_env = {{"WEFT_MAX_BLOCKING_TIME", v}};
        auto r = from_env({}, fake_env);
        ASSERT_EQ(r.errors.size(), 1u) << v;
        EXPECT_EQ(r.errors[0].key, "WEFT_MAX_BLOCKING_TIME");
        EXPECT_EQ(r.errors[0].value, v);
    }
}

TEST_F(Settings, ValidateChecksValuesSetInCode) {
    MonitorSettings s;
    s.max_blocking_time = 0ms;
    s.memory_period = 1s;
    auto errs = weft::monitor::validate(s, "test");
    ASSERT_EQ(errs.size(), 2u);
    EXPECT_EQ(errs[0].key, "max_blocking_time");
    EXPECT_EQ(errs[1].key, "memory_period");
    EXPECT_THAT(errs[1].message(), HasSubstr("(test): expected a number of seconds, at least 2"));
    EXPECT_TRUE(weft::monitor::validate(MonitorSettings{}).empty());
}

}  // namespace
