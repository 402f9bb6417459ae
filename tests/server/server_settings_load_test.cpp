// Loading: the embedded default, precedence (default < file < environment < flag) with the
// source each level reports, every environment alias, the accepted value forms, and plugins.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "config_test_util.hpp"
#include "weft/config/load.hpp"
#include "weft/config/render.hpp"

namespace weft::config {
namespace {

using namespace std::chrono_literals;
using test::bare_options;
using test::file_options;
using test::line_containing;
using test::load_ok;

TEST(ConfigEmbeddedDefault, LoadsCleanAndServesTheDemo) {
    LoadResult r = load(LoadOptions{});
    ASSERT_TRUE(r.ok()) << r.error_text();
    const Config& c = r.config();
    EXPECT_EQ(c.server.listen.value.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.admin.listen.value.to_string(), "127.0.0.1:9090");
    EXPECT_TRUE(c.admin.enabled.value);
    EXPECT_TRUE(c.monitor.enabled.value);
    EXPECT_EQ(c.monitor.max_blocking_time.value, 100ms);
    ASSERT_EQ(c.plugins.size(), 1u);
    EXPECT_EQ(c.plugins[0].path.value, "demo");

    // Sources point at the real lines of the embedded file.
    const std::string text = embedded_default_toml();
    const int listen_line = line_containing(text, "listen = \"127.0.0.1:8080\"");
    ASSERT_GT(listen_line, 0);
    EXPECT_EQ(c.server.listen.source.kind, Source::Kind::embedded_default);
    EXPECT_EQ(c.server.listen.source.to_string(),
              "embedded default.toml:" + std::to_string(listen_line));
    EXPECT_EQ(c.plugins[0].path.source.to_string(),
              "embedded default.toml:" + std::to_string(line_containing(text, "path = \"demo\"")));
    EXPECT_EQ(c.server.hubs.source.to_string(), "built-in default");
}

// Every key is documented in default.toml as `#key = value`; with the '#' removed the file
// sets every key, to exactly the built-in default.
TEST(ConfigEmbeddedDefault, DocumentsEveryKeyWithItsBuiltInDefault) {
    const std::string text = embedded_default_toml();
    // "#key = value": '#', then [a-z_]+, then " = ".
    const auto commented = [](const std::string& l) {
        std::size_t i = 1;
        while (i < l.size() && ((l[i] >= 'a' && l[i] <= 'z') || l[i] == '_'))
            ++i;
        return l.size() > 1 && l[0] == '#' && i > 1 && l.compare(i, 3, " = ") == 0;
    };
    std::string uncommented;
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);) {
        uncommented += commented(l) ? l.substr(1) : l;
        uncommented += '\n';
    }
    ASSERT_NE(uncommented, text + "\n");

    Config all = load_ok(file_options(uncommented));
    const std::string rendered = render_effective(all);
    EXPECT_EQ(rendered.find("built-in default"), std::string::npos)
        << "keys missing from config/default.toml:\n"
        << rendered;

    all.plugins.clear();
    const Config builtin = load_ok(bare_options());
    EXPECT_EQ(to_json(all, false), to_json(builtin, false));
}

TEST(ConfigLoad, WithoutFileOrEmbeddedDefaultHasNoPlugins) {
    const Config c = load_ok(bare_options());
    EXPECT_TRUE(c.plugins.empty());
    EXPECT_EQ(c.server.listen.source.kind, Source::Kind::built_in);
    EXPECT_EQ(c.server.stack_size.value, 64 * kKiB);
    EXPECT_EQ(c.server.max_body_bytes.value, 1 * kMiB);
    EXPECT_EQ(c.server.header_timeout.value, 10s);
    EXPECT_EQ(c.server.idle_timeout.value, 60s);
    EXPECT_EQ(c.monitor.memory_period.value, 5s);
    EXPECT_EQ(c.monitor.lag_probe_interval.value, 10ms);
    EXPECT_EQ(c.log.level.value, LogLevel::info);
    EXPECT_EQ(c.log.access_log.value.kind, AccessLog::Kind::off);
}

TEST(ConfigLoad, AFileReplacesTheEmbeddedDefault) {
    const Config c = load_ok(file_options("[server]\nhubs = 2\n"));
    EXPECT_TRUE(c.plugins.empty());
    EXPECT_EQ(c.server.hubs.value, 2u);
    EXPECT_EQ(c.server.listen.source.kind, Source::Kind::built_in);
}

TEST(ConfigPrecedence, FlagOverEnvironmentOverFileOverDefault) {
    LoadOptions o = bare_options();
    Config c = load_ok(o);
    EXPECT_EQ(c.server.listen.value.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.server.listen.source.to_string(), "built-in default");

    o = file_options("# comment\n[server]\nlisten = \"10.0.0.1:1000\"\n");
    c = load_ok(o);
    EXPECT_EQ(c.server.listen.value.to_string(), "10.0.0.1:1000");
    EXPECT_EQ(c.server.listen.source.to_string(), "weft.toml:3");
    EXPECT_EQ(c.server.listen.source.kind, Source::Kind::file);

    o.env = {{"WEFT_SERVER_LISTEN", "10.0.0.2:2000"}};
    c = load_ok(o);
    EXPECT_EQ(c.server.listen.value.to_string(), "10.0.0.2:2000");
    EXPECT_EQ(c.server.listen.source.to_string(), "environment WEFT_SERVER_LISTEN");

    o.flags = {{"server.listen", "10.0.0.3:3000", "--listen"}};
    c = load_ok(o);
    EXPECT_EQ(c.server.listen.value.to_string(), "10.0.0.3:3000");
    EXPECT_EQ(c.server.listen.source.to_string(), "flag --listen");
    EXPECT_EQ(c.server.listen.source.kind, Source::Kind::flag);

    // The last flag for a key wins.
    o.flags.push_back({"server.listen", "10.0.0.4:4000", "--listen"});
    c = load_ok(o);
    EXPECT_EQ(c.server.listen.value.to_string(), "10.0.0.4:4000");
}

TEST(ConfigPrecedence, EachKeyKeepsItsOwnSource) {
    LoadOptions o =
        file_options("[server]\nhubs = 2\nbackend = \"epoll\"\n[log]\nlevel = \"warn\"\n");
    o.env = {{"WEFT_BACKEND", "io_uring"}, {"WEFT_LOG_FORMAT", "json"}};
    o.flags = {{"log.level", "debug", "--log-level"}};
    const Config c = load_ok(o);
    EXPECT_EQ(c.server.hubs.value, 2u);
    EXPECT_EQ(c.server.hubs.source.to_string(), "weft.toml:2");
    EXPECT_EQ(c.server.backend.value, Backend::io_uring);
    EXPECT_EQ(c.server.backend.source.to_string(), "environment WEFT_BACKEND");
    EXPECT_EQ(c.log.format.value, LogFormat::json);
    EXPECT_EQ(c.log.format.source.to_string(), "environment WEFT_LOG_FORMAT");
    EXPECT_EQ(c.log.level.value, LogLevel::debug);
    EXPECT_EQ(c.log.level.source.to_string(), "flag --log-level");
    EXPECT_EQ(c.server.max_connections.source.to_string(), "built-in default");
}

struct AliasCase {
    const char* env;
    const char* value;
    std::function<bool(const Config&)> check;
    std::function<const Source&(const Config&)> source;
};

// The config spells a backend as the runtime names it, so logs and --print-config agree.
TEST(ConfigFile, BackendNamesAreTheRuntimes) {
    for (Backend b : {Backend::automatic, Backend::io_uring, Backend::epoll}) {
        const std::string name = weft::backend_name(b);
        const Config c = load_ok(file_options("[server]\nbackend = \"" + name + "\"\n"));
        EXPECT_EQ(c.server.backend.value, b) << name;
    }
}

TEST(ConfigEnvironment, EveryAliasSetsItsKey) {
    const AliasCase cases[] = {
        {"WEFT_HUBS", "3", [](const Config& c) { return c.server.hubs.value == 3; },
         [](const Config& c) -> const Source& { return c.server.hubs.source; }},
        {"WEFT_BACKEND", "epoll",
         [](const Config& c) { return c.server.backend.value == Backend::epoll; },
         [](const Config& c) -> const Source& { return c.server.backend.source; }},
        {"WEFT_MONITOR_THREAD_ENABLE", "off",
         [](const Config& c) { return !c.monitor.enabled.value; },
         [](const Config& c) -> const Source& { return c.monitor.enabled.source; }},
        {"WEFT_MAX_BLOCKING_TIME", "0.25",
         [](const Config& c) { return c.monitor.max_blocking_time.value == 250ms; },
         [](const Config& c) -> const Source& { return c.monitor.max_blocking_time.source; }},
        {"WEFT_MONITOR_PRINT_BLOCKING_REPORTS", "no",
         [](const Config& c) { return !c.monitor.print_blocking_reports.value; },
         [](const Config& c) -> const Source& { return c.monitor.print_blocking_reports.source; }},
        {"WEFT_MONITOR_MEMORY_MAX", "512mb",
         [](const Config& c) { return c.monitor.memory_max.value == 512 * kMiB; },
         [](const Config& c) -> const Source& { return c.monitor.memory_max.source; }},
        {"WEFT_MONITOR_MEMORY_PERIOD", "10",
         [](const Config& c) { return c.monitor.memory_period.value == 10s; },
         [](const Config& c) -> const Source& { return c.monitor.memory_period.source; }},
        {"WEFT_TRACK_FIBER_TREE", "0",
         [](const Config& c) { return !c.monitor.track_fiber_tree.value; },
         [](const Config& c) -> const Source& { return c.monitor.track_fiber_tree.source; }},
    };
    for (const auto& k : cases) {
        SCOPED_TRACE(k.env);
        LoadOptions o = bare_options();
        o.env = {{k.env, k.value}};
        const Config c = load_ok(o);
        EXPECT_TRUE(k.check(c));
        EXPECT_EQ(k.source(c).to_string(), std::string("environment ") + k.env);
    }
}

// WEFT_<SECTION>_<KEY> reaches every key: each variable below shows up as the source of its key.
TEST(ConfigEnvironment, EveryKeyHasARegularVariable) {
    const std::pair<const char*, const char*> vars[] = {
        {"WEFT_SERVER_LISTEN", "0.0.0.0:1"},
        {"WEFT_SERVER_HUBS", "2"},
        {"WEFT_SERVER_BACKEND", "epoll"},
        {"WEFT_SERVER_STACK_SIZE", "128KiB"},
        {"WEFT_SERVER_MAX_CONNECTIONS", "5"},
        {"WEFT_SERVER_MAX_HEADER_BYTES", "32KiB"},
        {"WEFT_SERVER_MAX_URI_BYTES", "4KiB"},
        {"WEFT_SERVER_MAX_BODY_BYTES", "0"},
        {"WEFT_SERVER_HEADER_TIMEOUT", "5s"},
        {"WEFT_SERVER_BODY_TIMEOUT", "6s"},
        {"WEFT_SERVER_IDLE_TIMEOUT", "7s"},
        {"WEFT_SERVER_SEND_TIMEOUT", "8s"},
        {"WEFT_SERVER_MAX_REQUESTS_PER_CONNECTION", "100"},
        {"WEFT_SERVER_DRAIN_TIMEOUT", "0"},
        {"WEFT_SERVER_OFFLOAD_THREADS", "auto"},
        {"WEFT_SERVER_SERVER_NAME", "edge"},
        {"WEFT_ADMIN_ENABLED", "false"},
        {"WEFT_ADMIN_LISTEN", "127.0.0.1:1"},
        {"WEFT_ADMIN_DEBUG_ENDPOINTS", "off"},
        {"WEFT_MONITOR_ENABLED", "no"},
        {"WEFT_MONITOR_MAX_BLOCKING_TIME", "50ms"},
        {"WEFT_MONITOR_PRINT_BLOCKING_REPORTS", "0"},
        {"WEFT_MONITOR_MEMORY_MAX", "1GiB"},
        {"WEFT_MONITOR_MEMORY_PERIOD", "2s"},
        {"WEFT_MONITOR_TRACK_FIBER_TREE", "false"},
        {"WEFT_MONITOR_REPORTS_FILE", "reports.jsonl"},
        {"WEFT_MONITOR_REPORT_RATE_LIMIT", "0"},
        {"WEFT_MONITOR_LAG_PROBE_INTERVAL", "20ms"},
        {"WEFT_LOG_LEVEL", "error"},
        {"WEFT_LOG_FORMAT", "json"},
        {"WEFT_LOG_ACCESS_LOG", "stdout"},
    };
    LoadOptions o = bare_options();
    for (const auto& [name, value] : vars)
        o.env.emplace(name, value);
    const Config c = load_ok(o);
    const std::string json = to_json(c);
    for (const auto& [name, value] : vars) {
        std::string key = name + 5;  // drop "WEFT_"
        const auto underscore = key.find('_');
        key = key.substr(0, underscore) + "." + key.substr(underscore + 1);
        for (char& ch : key)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        EXPECT_NE(json.find("\"" + key + "\": \"environment " + name + "\""), std::string::npos)
            << key;
    }
    EXPECT_NE(json.find("\"sources\""), std::string::npos);
    // Nothing left at its built-in default: the list above covers every key.
    EXPECT_EQ(render_effective(c).find("built-in default"), std::string::npos);
    EXPECT_EQ(c.monitor.reports_file.value, "reports.jsonl");
    EXPECT_EQ(c.log.access_log.value.kind, AccessLog::Kind::to_stdout);
}

TEST(ConfigEnvironment, BooleanSpellings) {
    for (const char* yes : {"1", "true", "on", "yes", "TRUE", "Yes", " on "}) {
        LoadOptions o = file_options("[admin]\ndebug_endpoints = false\n");
        o.env = {{"WEFT_ADMIN_DEBUG_ENDPOINTS", yes}};
        EXPECT_TRUE(load_ok(o).admin.debug_endpoints.value) << yes;
    }
    for (const char* no : {"0", "false", "off", "no", "OFF", "No"}) {
        LoadOptions o = bare_options();
        o.env = {{"WEFT_ADMIN_DEBUG_ENDPOINTS", no}};
        EXPECT_FALSE(load_ok(o).admin.debug_endpoints.value) << no;
    }
}

TEST(ConfigEnvironment, AliasAndRegularNameMayAgree) {
    LoadOptions o = bare_options();
    o.env = {{"WEFT_HUBS", "4"}, {"WEFT_SERVER_HUBS", "4"}};
    const Config c = load_ok(o);
    EXPECT_EQ(c.server.hubs.value, 4u);
    EXPECT_EQ(c.server.hubs.source.to_string(), "environment WEFT_SERVER_HUBS");
}

TEST(ConfigEnvironment, OtherWeftVariablesAreIgnored) {
    LoadOptions o = bare_options();
    o.env = {{"WEFT_TEST_LOG", "1"},
             {"WEFT_CONFIG", "x"},
             {"WEFT_", ""},
             {"HOME", "/"},
             {"WEFT_SERVERLISTEN", "x"}};
    EXPECT_TRUE(load(o).ok()) << load(o).error_text();
}

TEST(ConfigEnvironment, ReadsTheProcessEnvironment) {
    ASSERT_EQ(::setenv("WEFT_CONFIG_TEST_PROBE", "a=b", 1), 0);
    ASSERT_EQ(::setenv("NOT_WEFT_CONFIG_TEST_PROBE", "x", 1), 0);
    const Environment env = environment_from_environ();
    ::unsetenv("WEFT_CONFIG_TEST_PROBE");
    ::unsetenv("NOT_WEFT_CONFIG_TEST_PROBE");
    ASSERT_EQ(env.count("WEFT_CONFIG_TEST_PROBE"), 1u);
    EXPECT_EQ(env.at("WEFT_CONFIG_TEST_PROBE"), "a=b");
    EXPECT_EQ(env.count("NOT_WEFT_CONFIG_TEST_PROBE"), 0u);
}

TEST(ConfigValues, DurationForms) {
    const std::pair<const char*, Duration> cases[] = {
        {"0.5", 500ms},         {"2", 2s},
        {"\"100ms\"", 100ms},   {"\"10s\"", 10s},
        {"\"2m\"", 120s},       {"\"1m30s\"", 90s},
        {"\"1500us\"", 1500us}, {"\"0.25\"", 250ms},
        {"\"1h\"", 3600s},      {"\"250000000ns\"", 250ms},
        {"\"1.5s\"", 1500ms},
    };
    for (const auto& [text, expected] : cases) {
        const Config c = load_ok(file_options(std::string("[server]\nbody_timeout = ") + text));
        EXPECT_EQ(c.server.body_timeout.value, expected) << text;
    }
    LoadOptions o = bare_options();
    o.env = {{"WEFT_MAX_BLOCKING_TIME", "0.1"}};
    EXPECT_EQ(load_ok(o).monitor.max_blocking_time.value, 100ms);
}

TEST(ConfigValues, SizeForms) {
    const std::pair<const char*, std::uint64_t> cases[] = {
        {"1048576", kMiB},
        {"\"512KiB\"", 512 * kKiB},
        {"\"16kb\"", 16 * kKiB},
        {"\"1MiB\"", kMiB},
        {"\"2gb\"", 2 * kGiB},
        {"\"1.5KiB\"", 1536},
        {"\"64 KiB\"", 64 * kKiB},
        {"\"3MB\"", 3 * kMiB},
        {"\"100\"", 100},
        {"\"2k\"", 2048},
        {"0", 0},
    };
    for (const auto& [text, expected] : cases) {
        const Config c = load_ok(file_options(std::string("[monitor]\nmemory_max = ") + text));
        EXPECT_EQ(c.monitor.memory_max.value, expected) << text;
    }
}

TEST(ConfigValues, ListenForms) {
    struct Case {
        const char* text;
        ListenAddress::Family family;
        const char* host;
        std::uint16_t port;
        const char* printed;
    };
    const Case cases[] = {
        {"127.0.0.1:8080", ListenAddress::Family::ipv4, "127.0.0.1", 8080, "127.0.0.1:8080"},
        {"[::1]:8080", ListenAddress::Family::ipv6, "::1", 8080, "[::1]:8080"},
        {"[::]:80", ListenAddress::Family::ipv6, "::", 80, "[::]:80"},
        {"*:80", ListenAddress::Family::any, "", 80, "*:80"},
        {":81", ListenAddress::Family::any, "", 81, "*:81"},
        {"0.0.0.0:0", ListenAddress::Family::ipv4, "0.0.0.0", 0, "0.0.0.0:0"},
    };
    for (const auto& k : cases) {
        LoadOptions o = bare_options();
        o.flags = {{"server.listen", k.text, "--listen"}};
        const Config c = load_ok(o);
        EXPECT_EQ(c.server.listen.value.family, k.family) << k.text;
        EXPECT_EQ(c.server.listen.value.host, k.host) << k.text;
        EXPECT_EQ(c.server.listen.value.port, k.port) << k.text;
        EXPECT_EQ(c.server.listen.value.to_string(), k.printed) << k.text;
    }
}

TEST(ConfigValues, CountsAcceptAuto) {
    const Config c = load_ok(file_options("[server]\nhubs = \"auto\"\noffload_threads = 8\n"));
    EXPECT_EQ(c.server.hubs.value, 0u);
    EXPECT_EQ(c.server.offload_threads.value, 8u);
}

TEST(ConfigValues, AccessLogTargets) {
    const std::pair<const char*, AccessLog> cases[] = {
        {"off", {AccessLog::Kind::off, ""}},
        {"", {AccessLog::Kind::off, ""}},
        {"stdout", {AccessLog::Kind::to_stdout, ""}},
        {"stderr", {AccessLog::Kind::to_stderr, ""}},
        {"logs/access.log", {AccessLog::Kind::to_file, "logs/access.log"}},
    };
    for (const auto& [text, expected] : cases) {
        LoadOptions o = bare_options();
        o.env = {{"WEFT_LOG_ACCESS_LOG", text}};
        EXPECT_EQ(load_ok(o).log.access_log.value, expected) << text;
    }
}

TEST(ConfigValues, EnumsIgnoreCase) {
    const Config c =
        load_ok(file_options("[server]\nbackend = \"EPOLL\"\n[log]\nlevel = \"Warn\"\n"));
    EXPECT_EQ(c.server.backend.value, Backend::epoll);
    EXPECT_EQ(c.log.level.value, LogLevel::warn);
}

constexpr const char* kPluginsFile = R"([[plugin]]
path = "demo"

[plugin.config]
greeting = "hello"
count = 3

[[plugin]]
path = "lib/libauth.so"
config = { realm = "weft", db = { port = 5432 } }

[[plugin]]
path = "bare"
)";

TEST(ConfigPlugins, FromTheFileInOrderWithTheirTables) {
    const Config c = load_ok(file_options(kPluginsFile));
    ASSERT_EQ(c.plugins.size(), 3u);
    EXPECT_EQ(c.plugins[0].path.value, "demo");
    EXPECT_EQ(c.plugins[0].path.source.to_string(), "weft.toml:2");
    EXPECT_EQ(c.plugins[0].config.get_string("greeting").value(), "hello");
    EXPECT_EQ(c.plugins[0].config.get_int("count").value(), 3);
    EXPECT_EQ(c.plugins[0].config.context(), "plugin 'demo' config");
    EXPECT_EQ(c.plugins[1].path.value, "lib/libauth.so");
    EXPECT_EQ(c.plugins[1].config.get_string("realm").value(), "weft");
    EXPECT_EQ(c.plugins[1].config.get_table("db").value().get_int("port").value(), 5432);
    EXPECT_TRUE(c.plugins[2].config.empty());
    EXPECT_EQ(c.plugins[2].config.context(), "plugin 'bare' config");
}

TEST(ConfigPlugins, FlagsReplaceTheListAndKeepConfiguredTables) {
    LoadOptions o = file_options(kPluginsFile);
    o.flags = {{"plugin", "lib/libauth.so", "--plugin"}, {"plugin", "extra.so", "--plugin"}};
    const Config c = load_ok(o);
    ASSERT_EQ(c.plugins.size(), 2u);
    EXPECT_EQ(c.plugins[0].path.value, "lib/libauth.so");
    EXPECT_EQ(c.plugins[0].path.source.to_string(), "flag --plugin");
    EXPECT_EQ(c.plugins[0].config.get_string("realm").value(), "weft");
    EXPECT_EQ(c.plugins[1].path.value, "extra.so");
    EXPECT_TRUE(c.plugins[1].config.empty());
}

TEST(ConfigPlugins, FlagReplacesTheEmbeddedDemo) {
    LoadOptions o;
    o.flags = {{"plugin.path", "mine.so", "--plugin"}};
    const Config c = load_ok(o);
    ASSERT_EQ(c.plugins.size(), 1u);
    EXPECT_EQ(c.plugins[0].path.value, "mine.so");
}

TEST(ConfigFlags, StandardFlagsAllLoad) {
    const std::map<std::string_view, const char*> samples = {
        {"--listen", "127.0.0.1:1"}, {"--admin", "127.0.0.1:2"},      {"--hubs", "2"},
        {"--plugin", "x.so"},        {"--backend", "epoll"},          {"--log-level", "debug"},
        {"--log-format", "json"},    {"--max-blocking-time", "50ms"},
    };
    ASSERT_EQ(standard_flags().size(), samples.size());
    LoadOptions o = bare_options();
    for (const auto& f : standard_flags()) {
        ASSERT_EQ(samples.count(f.flag), 1u) << f.flag;
        EXPECT_FALSE(f.help.empty());
        EXPECT_EQ(f.repeatable, f.flag == "--plugin");
        o.flags.push_back({std::string(f.key), samples.at(f.flag), std::string(f.flag)});
    }
    const Config c = load_ok(o);
    EXPECT_EQ(c.admin.listen.value.port, 2);
    EXPECT_EQ(c.admin.listen.source.to_string(), "flag --admin");
    EXPECT_EQ(c.monitor.max_blocking_time.value, 50ms);
    EXPECT_EQ(c.log.format.value, LogFormat::json);
    ASSERT_EQ(c.plugins.size(), 1u);
}

TEST(ConfigFlags, GenericAssignment) {
    auto f = parse_assignment("server.max_body_bytes = 2MiB");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->key, "server.max_body_bytes");
    EXPECT_EQ(f->value, " 2MiB");
    EXPECT_EQ(f->flag, "--set server.max_body_bytes");
    EXPECT_FALSE(parse_assignment("server.hubs"));

    LoadOptions o = bare_options();
    o.flags = {*f};
    const Config c = load_ok(o);
    EXPECT_EQ(c.server.max_body_bytes.value, 2 * kMiB);
    EXPECT_EQ(c.server.max_body_bytes.source.to_string(), "flag --set server.max_body_bytes");
}

TEST(ConfigFile, ReadsFromDisk) {
    char path[] = "/tmp/weft_config_testXXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        std::ofstream out(path);
        out << "[server]\n\nhubs = 7\n";
    }
    LoadOptions o;
    o.file = path;
    LoadResult r = load(o);
    std::remove(path);
    ASSERT_TRUE(r.ok()) << r.error_text();
    EXPECT_EQ(r.config().server.hubs.value, 7u);
    EXPECT_EQ(r.config().server.hubs.source.to_string(), std::string(path) + ":3");
}

TEST(ConfigResult, ConfigCanBeMovedOutOfATemporary) {
    const Config c = load(bare_options()).config();
    EXPECT_EQ(c.server.listen.value.port, 8080);
}

TEST(ConfigResult, ConfigOfAFailedLoadThrows) {
    LoadResult r = load(file_options("[server]\nhubs = -1\n"));
    ASSERT_FALSE(r.ok());
    EXPECT_THROW((void)r.config(), BadConfigAccess);
    try {
        (void)r.config();
    } catch (const BadConfigAccess& e) {
        EXPECT_NE(std::string(e.what()).find("[server] hubs"), std::string::npos);
    }
}

}  // namespace
}  // namespace weft::config
