// Bad configurations: each case must produce exactly the expected number of errors, and the
// error must name the key, the source, the value and what is allowed (checked by fragments).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config_test_util.hpp"
#include "weft/config/load.hpp"

namespace weft::config {
namespace {

using test::bare_options;
using test::file_options;

struct BadCase {
    const char* name;
    LoadOptions options;
    std::vector<std::string> fragments;  // all in the (single) error's to_string()
};

LoadOptions with_env(Environment env) {
    LoadOptions o = bare_options();
    o.env = std::move(env);
    return o;
}

LoadOptions with_flag(const char* key, const char* value, const char* flag) {
    LoadOptions o = bare_options();
    o.flags = {{key, value, flag}};
    return o;
}

std::vector<BadCase> bad_cases() {
    return {
        {"type_int_as_string",
         file_options("[server]\nhubs = \"four\"\n"),
         {"[server] hubs: ", "expected an integer", "got \"four\"", "(weft.toml:2)"}},
        {"type_bool_as_string",
         file_options("[admin]\n\nenabled = \"yes\"\n"),
         {"[admin] enabled: ", "expected a boolean (true or false", "got \"yes\"",
          "(weft.toml:3)"}},
        {"type_table_for_count",
         file_options("[server]\nmax_connections = { a = 1 }\n"),
         {"[server] max_connections", "expected an integer", "got a table"}},
        {"type_path_as_number",
         file_options("[monitor]\nreports_file = 3\n"),
         {"[monitor] reports_file", "expected a file path", "got 3"}},
        {"range_stack_size",
         file_options("[server]\nstack_size = 4096\n"),
         {"[server] stack_size: must be between 16KiB and 8MiB, got 4096 (weft.toml:2)"}},
        {"range_stack_size_string",
         file_options("[server]\nstack_size = \"16MiB\"\n"),
         {"must be between 16KiB and 8MiB", "got \"16MiB\""}},
        {"range_max_connections",
         file_options("[server]\nmax_connections = 0\n"),
         {"[server] max_connections: must be between 1 and 10000000, got 0"}},
        {"range_hubs",
         file_options("[server]\nhubs = 2000\n"),
         {"[server] hubs", "expected an integer 0..1024 (0 or \"auto\": automatic)", "got 2000"}},
        {"negative_size",
         file_options("[server]\nmax_body_bytes = -1\n"),
         {"[server] max_body_bytes: must not be negative, got -1"}},
        {"enum_backend",
         file_options("[server]\nbackend = \"kqueue\"\n"),
         {"[server] backend: expected one of: auto, io_uring, epoll, got \"kqueue\" "
          "(weft.toml:2)"}},
        {"enum_level",
         with_env({{"WEFT_LOG_LEVEL", "loud"}}),
         {"[log] level: expected one of: trace, debug, info, warn, error, critical, off",
          "got \"loud\"", "(environment WEFT_LOG_LEVEL)"}},
        {"enum_format",
         file_options("[log]\nformat = \"xml\"\n"),
         {"[log] format: expected one of: text, json", "got \"xml\""}},
        {"address_hostname",
         file_options("[server]\nlisten = \"localhost:8080\"\n"),
         {"[server] listen: not a numeric IPv4 address", "expected ADDR:PORT",
          "got \"localhost:8080\"", "(weft.toml:2)"}},
        {"address_no_port",
         with_env({{"WEFT_SERVER_LISTEN", "127.0.0.1"}}),
         {"[server] listen: missing ':PORT'", "got \"127.0.0.1\"",
          "(environment WEFT_SERVER_LISTEN)"}},
        {"address_port_range",
         with_flag("server.listen", "127.0.0.1:70000", "--listen"),
         {"[server] listen", "the port must be a number 0..65535", "got \"127.0.0.1:70000\"",
          "(flag --listen)"}},
        {"address_v6_brackets",
         file_options("[admin]\nlisten = \"::1:80\"\n"),
         {"[admin] listen: an IPv6 address needs brackets"}},
        {"address_v6_unclosed",
         file_options("[admin]\nlisten = \"[::1:80\"\n"),
         {"[admin] listen: missing ']'"}},
        {"address_v6_bad",
         file_options("[admin]\nlisten = \"[zz::1]:80\"\n"),
         {"[admin] listen: not an IPv6 address"}},
        {"address_not_a_string",
         file_options("[server]\nlisten = 8080\n"),
         {"[server] listen: expected ADDR:PORT", "got 8080"}},
        {"duration_bad_unit",
         file_options("[server]\nheader_timeout = \"10x\"\n"),
         {"[server] header_timeout: expected a duration: seconds as a number (0.1) or a string "
          "with a unit ns, us, ms, s, m or h",
          "got \"10x\"", "(weft.toml:2)"}},
        {"duration_empty",
         with_env({{"WEFT_SERVER_IDLE_TIMEOUT", ""}}),
         {"[server] idle_timeout: expected a duration", "got \"\""}},
        {"duration_negative",
         file_options("[server]\nsend_timeout = \"-1s\"\n"),
         {"[server] send_timeout: must be greater than 0 and at most 24h", "got \"-1s\""}},
        {"duration_zero_timeout",
         file_options("[server]\nheader_timeout = 0\n"),
         {"[server] header_timeout: must be greater than 0 and at most 24h, got 0"}},
        {"duration_too_long",
         file_options("[server]\ndrain_timeout = \"25h\"\n"),
         {"[server] drain_timeout: must be between 0s and 24h", "got \"25h\""}},
        {"duration_bool",
         file_options("[server]\nbody_timeout = true\n"),
         {"[server] body_timeout: expected a duration", "got true"}},
        {"server_name_header_injection",
         file_options("[server]\nserver_name = \"weft\\r\\nSet-Cookie: a=b\"\n"),
         {"[server] server_name: expected at most 128 visible ASCII characters and inner spaces",
          "(\"\" sends no header)", "got \"weft\\r\\nSet-Cookie: a=b\"", "(weft.toml:2)"}},
        {"server_name_not_ascii",
         with_env({{"WEFT_SERVER_SERVER_NAME", "wéft"}}),
         {"[server] server_name: expected at most 128 visible ASCII",
          "environment WEFT_SERVER_SERVER_NAME"}},
        {"server_name_not_a_string",
         file_options("[server]\nserver_name = 7\n"),
         {"[server] server_name: expected at most 128", "got 7"}},
        {"lag_probe_too_small",
         file_options("[monitor]\nlag_probe_interval = \"100us\"\n"),
         {"[monitor] lag_probe_interval: must be between 1ms and 60s"}},
        {"size_bad_suffix",
         file_options("[server]\nmax_body_bytes = \"12XB\"\n"),
         {"[server] max_body_bytes: expected a size: bytes as an integer, or a string with a "
          "unit",
          "got \"12XB\"", "(weft.toml:2)"}},
        {"size_float",
         file_options("[server]\nmax_body_bytes = 1.5\n"),
         {"[server] max_body_bytes: expected a size", "got 1.5"}},
        {"size_env_word",
         with_env({{"WEFT_MONITOR_MEMORY_MAX", "lots"}}),
         {"[monitor] memory_max: expected a size", "got \"lots\"",
          "(environment WEFT_MONITOR_MEMORY_MAX)"}},
        {"memory_period_below_2s",
         file_options("[monitor]\nmemory_period = 1\n"),
         {"[monitor] memory_period: must be between 2s and 24h, got 1 (weft.toml:2)"}},
        {"memory_period_env",
         with_env({{"WEFT_MONITOR_MEMORY_PERIOD", "1500ms"}}),
         {"[monitor] memory_period: must be between 2s and 24h", "got \"1500ms\"",
          "(environment WEFT_MONITOR_MEMORY_PERIOD)"}},
        {"max_blocking_time_zero",
         file_options("[monitor]\nmax_blocking_time = 0\n"),
         {"[monitor] max_blocking_time: must be greater than 0 and at most 1h, got 0 "
          "(weft.toml:2)"}},
        {"max_blocking_time_negative",
         with_env({{"WEFT_MAX_BLOCKING_TIME", "-0.1"}}),
         {"[monitor] max_blocking_time: must be greater than 0", "got \"-0.1\"",
          "(environment WEFT_MAX_BLOCKING_TIME)"}},
        {"max_blocking_time_word",
         with_flag("monitor.max_blocking_time", "soon", "--max-blocking-time"),
         {"[monitor] max_blocking_time: expected a duration", "got \"soon\"",
          "(flag --max-blocking-time)"}},
        {"bool_env_word",
         with_env({{"WEFT_MONITOR_THREAD_ENABLE", "maybe"}}),
         {"[monitor] enabled: expected a boolean: 1, true, on, yes, 0, false, off or no",
          "got \"maybe\"", "(environment WEFT_MONITOR_THREAD_ENABLE)"}},
        {"count_flag_word",
         with_flag("server.hubs", "x", "--hubs"),
         {"[server] hubs", "got \"x\"", "(flag --hubs)"}},
        {"unknown_key_file",
         file_options("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n"),
         {"[server] lisen: unknown key; did you mean 'listen'? (weft.toml:3)"}},
        {"unknown_key_long",
         file_options("[server]\nmax_body_size = 5\n"),
         {"[server] max_body_size: unknown key; did you mean 'max_body_bytes'?"}},
        {"unknown_key_far",
         file_options("[log]\ncolour = true\n"),
         {"[log] colour: unknown key; known: level, format, access_log (weft.toml:2)"}},
        {"unknown_section",
         file_options("[servre]\nlisten = \"x\"\n"),
         {"[servre]: unknown section; did you mean [server]? (weft.toml:1)"}},
        {"key_outside_section",
         file_options("listen = \"127.0.0.1:1\"\n[server]\n"),
         {"listen: a key outside any section; did you mean [server] listen?", "(weft.toml:1)"}},
        {"typo_outside_section",
         file_options("max_blocking_tme = 1\n"),
         {"max_blocking_tme: unknown key outside any section; did you mean [monitor] "
          "max_blocking_time?"}},
        {"section_not_table",
         file_options("server = 3\n"),
         {"[server]: expected a table", "got 3"}},
        {"unknown_env",
         with_env({{"WEFT_SERVER_LISEN", "127.0.0.1:1"}}),
         {"[server] lisen: unknown environment variable; did you mean WEFT_SERVER_LISTEN? "
          "(environment WEFT_SERVER_LISEN)"}},
        {"unknown_env_monitor",
         with_env({{"WEFT_MONITOR_MAX_BLOCKING", "1"}}),
         {"did you mean WEFT_MONITOR_MAX_BLOCKING_TIME?",
          "(environment WEFT_MONITOR_MAX_BLOCKING)"}},
        {"unknown_env_alias_typo",
         with_env({{"WEFT_MONITOR_THREAD_ENABLED", "1"}}),
         {"did you mean WEFT_MONITOR_THREAD_ENABLE?"}},
        {"unknown_env_far",
         with_env({{"WEFT_SERVER_PORT", "80"}}),
         {"[server] port: unknown environment variable; known: WEFT_SERVER_LISTEN, "
          "WEFT_SERVER_HUBS,",
          "WEFT_SERVER_SERVER_NAME (environment WEFT_SERVER_PORT)"}},
        {"unknown_flag_far",
         with_flag("server.port", "1", "--port"),
         {"server.port: unknown key; known: server.listen, server.hubs,"}},
        {"unknown_flag_section",
         with_flag("sever.listen", "1", "--x"),
         {"sever.listen: unknown key; did you mean 'server.listen'?"}},
        {"unknown_flag_key",
         with_flag("server.lisen", "1", "--lisen"),
         {"server.lisen: unknown key; did you mean 'server.listen'? (flag --lisen)"}},
        {"alias_conflict",
         with_env({{"WEFT_HUBS", "2"}, {"WEFT_SERVER_HUBS", "3"}}),
         {"[server] hubs: conflicts with WEFT_HUBS=\"2\"; set only one of them",
          "(environment WEFT_SERVER_HUBS)"}},
        {"syntax_error",
         file_options("[server]\nlisten = = 1\n"),
         {"TOML syntax error: ", "(weft.toml:2:10)"}},
        {"syntax_duplicate_key",
         file_options("[server]\nhubs = 1\nhubs = 2\n"),
         {"TOML syntax error: ", "hubs", "(weft.toml:3:"}},
        {"plugin_missing_path",
         file_options("[[plugin]]\nconfig = { a = 1 }\n"),
         {"[[plugin]] path: missing: each [[plugin]] needs path", "(weft.toml:1)"}},
        {"plugin_empty_path",
         file_options("[[plugin]]\npath = \"\"\n"),
         {"[[plugin]] path: must not be empty", "(weft.toml:2)"}},
        {"plugin_path_number",
         file_options("[[plugin]]\npath = 3\n"),
         {"[[plugin]] path: expected a string", "got 3"}},
        {"plugin_empty_path_flag",
         with_flag("plugin", "", "--plugin"),
         {"[[plugin]] path: must not be empty", "(flag --plugin)"}},
        {"plugin_unknown_key",
         file_options("[[plugin]]\npath = \"x\"\nconfg = {}\n"),
         {"[[plugin]] confg: unknown key; did you mean 'config'? (weft.toml:3)"}},
        {"plugin_config_not_table",
         file_options("[[plugin]]\npath = \"x\"\nconfig = 5\n"),
         {"[[plugin]] config: expected a table", "got 5"}},
        {"plugin_single_brackets",
         file_options("[plugin]\npath = \"x\"\n"),
         {"[plugin]: expected an array of tables: write [[plugin]]"}},
        {"plugin_config_date",
         file_options("[[plugin]]\npath = \"x\"\n[plugin.config]\nwhen = 1979-05-27\n"),
         {"plugin[0].config.when: TOML dates and times are not supported", "(weft.toml:4)"}},
        {"uri_over_header",
         file_options("[server]\nmax_header_bytes = \"4KiB\"\n"),
         {"[server] max_uri_bytes: must not exceed [server] max_header_bytes (4KiB, "
          "weft.toml:2)",
          "got 8KiB (built-in default)"}},
        {"admin_same_port",
         with_flag("admin.listen", "127.0.0.1:8080", "--admin"),
         {"[admin] listen: must not use the same port as [server] listen (127.0.0.1:8080, "
          "built-in default)",
          "(flag --admin)"}},
        {"admin_same_port_wildcard",
         with_flag("server.listen", "*:9090", "--listen"),
         {"[admin] listen: must not use the same port as [server] listen (*:9090, flag "
          "--listen)"}},
        {"env_invalid_utf8",
         with_env({{"WEFT_MONITOR_REPORTS_FILE", "r\xff.jsonl"}}),
         {"[monitor] reports_file: the value is not valid UTF-8"}},
    };
}

TEST(ConfigErrors, EachBadInputGivesOneClearError) {
    for (const auto& k : bad_cases()) {
        SCOPED_TRACE(k.name);
        const LoadResult r = load(k.options);
        ASSERT_FALSE(r.ok());
        ASSERT_EQ(r.errors().size(), 1u) << r.error_text();
        const std::string text = r.errors()[0].to_string();
        for (const auto& f : k.fragments) {
            EXPECT_NE(text.find(f), std::string::npos) << "missing \"" << f << "\" in:\n" << text;
        }
    }
}

TEST(ConfigErrors, ErrorFieldsAreFilledIn) {
    const LoadResult r = load(file_options("[server]\nmax_body_bytes = \"12XB\"\n"));
    ASSERT_EQ(r.errors().size(), 1u);
    const ConfigError& e = r.errors()[0];
    EXPECT_EQ(e.key, "[server] max_body_bytes");
    EXPECT_EQ(e.source.kind, Source::Kind::file);
    EXPECT_EQ(e.source.where, "weft.toml:2");
    EXPECT_EQ(e.value, "\"12XB\"");
    EXPECT_NE(e.message.find("\"512KiB\""), std::string::npos);
}

TEST(ConfigErrors, AllErrorsAreCollectedInFileOrderThenEnvironmentThenFlags) {
    LoadOptions o = file_options(
        "[server]\n"
        "stack_size = 1\n"   // 2
        "backend = \"x\"\n"  // 3
        "[monitor]\n"
        "memory_period = 0\n"  // 5
        "enabled = \"x\"\n"    // 6
        "[[plugin]]\n"         // 7 (no path)
        "[log]\n"
        "level = 3\n");  // 9
    o.env = {{"WEFT_HUBS", "many"}, {"WEFT_SERVER_NOPE", "1"}};
    o.flags = {{"log.format", "yaml", "--log-format"}};
    const LoadResult r = load(o);
    ASSERT_FALSE(r.ok());
    std::vector<std::string> where;
    for (const auto& e : r.errors())
        where.push_back(e.source.to_string());
    const std::vector<std::string> expected = {
        "weft.toml:2",       "weft.toml:3", "weft.toml:5",           "weft.toml:6",
        "weft.toml:7",       "weft.toml:9", "environment WEFT_HUBS", "environment WEFT_SERVER_NOPE",
        "flag --log-format",
    };
    EXPECT_EQ(where, expected) << r.error_text();
    // error_text() has one line per error.
    const std::string text = r.error_text();
    EXPECT_EQ(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')),
              expected.size());
}

TEST(ConfigErrors, MissingFileIsAnError) {
    LoadOptions o;
    o.file = "/nonexistent-dir/weft.toml";
    const LoadResult r = load(o);
    ASSERT_EQ(r.errors().size(), 1u);
    EXPECT_EQ(r.errors()[0].to_string(),
              "cannot read the configuration file: No such file or directory "
              "(/nonexistent-dir/weft.toml)");
}

TEST(ConfigErrors, SyntaxErrorStillReportsEnvironmentErrors) {
    LoadOptions o = file_options("[server\n");
    o.env = {{"WEFT_LOG_LEVEL", "loud"}};
    const LoadResult r = load(o);
    ASSERT_EQ(r.errors().size(), 2u) << r.error_text();
    EXPECT_NE(r.errors()[0].to_string().find("TOML syntax error"), std::string::npos);
    EXPECT_NE(r.errors()[0].to_string().find("(weft.toml:1:"), std::string::npos);
    EXPECT_EQ(r.errors()[1].source.to_string(), "environment WEFT_LOG_LEVEL");
}

}  // namespace
}  // namespace weft::config
