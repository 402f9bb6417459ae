// Loading the server's settings: the embedded default, precedence (default < file < environment
// < flag) with the source each level reports, every environment alias, the former [server]
// spellings of the [runtime] keys, the accepted value forms, and plugins.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "server_settings_test_util.hpp"

namespace weft::server::test {
namespace {

using namespace std::chrono_literals;
using config::kGiB;
using config::kKiB;
using config::kMiB;
using config::LoadOptions;
using config::Source;

// --- the embedded default -----------------------------------------------------------------

TEST(SettingsEmbeddedDefault, LoadsCleanAndServesTheDemo) {
    const LoadedSettings s = load_ok(embedded_options());
    EXPECT_EQ(s.values.listener.listen.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(s.values.admin.listen.to_string(), "127.0.0.1:9090");
    EXPECT_TRUE(s.values.admin.enabled);
    EXPECT_TRUE(s.values.monitor.enabled);
    EXPECT_EQ(s.values.monitor.max_blocking_time, 100ms);
    ASSERT_EQ(s.plugins().size(), 1u);
    EXPECT_EQ(s.plugins()[0].path, "demo");
    // The embedded file uses the current spellings only.
    EXPECT_TRUE(s.loaded.warnings.empty()) << warnings_text(s);

    // Sources point at the real lines of the embedded file.
    const std::string text = embedded_default_toml();
    const int listen_line = line_containing(text, "listen = \"127.0.0.1:8080\"");
    ASSERT_GT(listen_line, 0);
    EXPECT_EQ(s.source("server.listen").kind, Source::Kind::embedded_default);
    EXPECT_EQ(s.source("server.listen").to_string(),
              "embedded default.toml:" + std::to_string(listen_line));
    EXPECT_EQ(s.plugins()[0].source.to_string(),
              "embedded default.toml:" + std::to_string(line_containing(text, "path = \"demo\"")));
    EXPECT_EQ(s.source("runtime.hubs").to_string(), "built-in default");
}

// Every key is documented in default.toml as `#key = value`; with the '#' removed the file
// sets every key, to exactly the built-in default (the member's own default): the file and the
// owning structs cannot drift apart.
TEST(SettingsEmbeddedDefault, DocumentsEveryKeyWithItsBuiltInDefault) {
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

    LoadedSettings all = load_ok(file_options(uncommented));
    EXPECT_TRUE(all.loaded.warnings.empty()) << warnings_text(all);
    const std::string rendered = all.render();
    EXPECT_EQ(rendered.find("built-in default"), std::string::npos)
        << "keys missing from server/default.toml:\n"
        << rendered;

    all.loaded.plugins.clear();
    const LoadedSettings builtin = load_ok(bare_options());
    EXPECT_EQ(all.json(false), builtin.json(false));
}

// The key table binds members and adds no defaults of its own: what a default-constructed
// Settings holds is exactly what a load without any source gives.
TEST(SettingsDefaults, DefaultConstructedSettingsAreTheBuiltInDefaults) {
    const Settings defaults;
    const config::Loaded nothing;
    const LoadedSettings bare = load_ok(bare_options());
    EXPECT_EQ(config::to_json(settings_schema(), defaults, nothing), bare.json());
    EXPECT_EQ(config::to_json(settings_schema(), defaults, nothing, false), bare.json(false));
    EXPECT_EQ(config::render_effective(settings_schema(), defaults, nothing), bare.render());
}

TEST(SettingsLoad, WithoutFileOrEmbeddedDefaultHasNoPlugins) {
    const LoadedSettings s = load_ok(bare_options());
    const Settings& v = s.values;
    EXPECT_TRUE(s.plugins().empty());
    EXPECT_TRUE(s.loaded.warnings.empty());
    EXPECT_EQ(s.source("server.listen").kind, Source::Kind::built_in);
    EXPECT_EQ(v.runtime.stack_size, 0u);  // "auto": the runtime chooses
    EXPECT_EQ(v.runtime.name, "weft");
    EXPECT_EQ(v.http.max_body_bytes, 1 * kMiB);
    EXPECT_EQ(v.http.max_buffered_body_bytes, 128 * kMiB);
    EXPECT_EQ(v.http.max_headers, 100u);
    EXPECT_EQ(v.http.linger_timeout, 2s);
    EXPECT_EQ(v.http.listen_backlog, 4096);
    EXPECT_EQ(v.http.header_timeout, 10s);
    EXPECT_EQ(v.http.idle_timeout, 60s);
    EXPECT_EQ(v.http.min_body_rate, 240u);
    EXPECT_EQ(v.admin.http.max_connections, 256u);
    EXPECT_EQ(v.admin.http.header_timeout, 2s);
    EXPECT_EQ(v.monitor.memory_period, 5s);
    EXPECT_EQ(v.monitor.recent_reports, 64u);
    EXPECT_EQ(v.runtime.lag_probe_interval, 10ms);
    EXPECT_EQ(v.log.level, LogLevel::info);
    EXPECT_EQ(v.log.access_log.kind, AccessLogTarget::Kind::off);
}

TEST(SettingsLoad, AdminConnectionsWithoutDebugEndpoints) {
    // No live page or profile can hold an admin connection: a small limit is fine.
    const LoadedSettings s =
        load_ok(file_options("[admin]\nmax_connections = 8\ndebug_endpoints = false\n"));
    EXPECT_EQ(s.values.admin.http.max_connections, 8u);
}

TEST(SettingsLoad, AFileReplacesTheEmbeddedDefault) {
    LoadOptions o = file_options("[runtime]\nhubs = 2\n");
    o.default_text = embedded_default_toml();  // ignored: there is a file
    const LoadedSettings s = load_ok(o);
    EXPECT_TRUE(s.plugins().empty());
    EXPECT_EQ(s.values.runtime.hubs, 2u);
    EXPECT_EQ(s.source("runtime.hubs").to_string(), "weft.toml:2");
    EXPECT_EQ(s.source("server.listen").kind, Source::Kind::built_in);
}

// --- precedence ----------------------------------------------------------------------------

TEST(SettingsPrecedence, FlagOverEnvironmentOverFileOverDefault) {
    LoadOptions o = bare_options();
    LoadedSettings s = load_ok(o);
    EXPECT_EQ(s.values.listener.listen.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(s.source("server.listen").to_string(), "built-in default");

    o = file_options("# comment\n[server]\nlisten = \"10.0.0.1:1000\"\n");
    s = load_ok(o);
    EXPECT_EQ(s.values.listener.listen.to_string(), "10.0.0.1:1000");
    EXPECT_EQ(s.source("server.listen").to_string(), "weft.toml:3");
    EXPECT_EQ(s.source("server.listen").kind, Source::Kind::file);

    o.env = {{"WEFT_SERVER_LISTEN", "10.0.0.2:2000"}};
    s = load_ok(o);
    EXPECT_EQ(s.values.listener.listen.to_string(), "10.0.0.2:2000");
    EXPECT_EQ(s.source("server.listen").to_string(), "environment WEFT_SERVER_LISTEN");

    o.flags = {{"server.listen", "10.0.0.3:3000", "--listen"}};
    s = load_ok(o);
    EXPECT_EQ(s.values.listener.listen.to_string(), "10.0.0.3:3000");
    EXPECT_EQ(s.source("server.listen").to_string(), "flag --listen");
    EXPECT_EQ(s.source("server.listen").kind, Source::Kind::flag);

    // The last flag for a key wins.
    o.flags.push_back({"server.listen", "10.0.0.4:4000", "--listen"});
    s = load_ok(o);
    EXPECT_EQ(s.values.listener.listen.to_string(), "10.0.0.4:4000");
}

TEST(SettingsPrecedence, EachKeyKeepsItsOwnSource) {
    LoadOptions o =
        file_options("[runtime]\nhubs = 2\nbackend = \"epoll\"\n[log]\nlevel = \"warn\"\n");
    o.env = {{"WEFT_BACKEND", "io_uring"}, {"WEFT_LOG_FORMAT", "json"}};
    o.flags = {{"log.level", "debug", "--log-level"}};
    const LoadedSettings s = load_ok(o);
    EXPECT_EQ(s.values.runtime.hubs, 2u);
    EXPECT_EQ(s.source("runtime.hubs").to_string(), "weft.toml:2");
    EXPECT_EQ(s.values.runtime.backend, Backend::io_uring);
    EXPECT_EQ(s.source("runtime.backend").to_string(), "environment WEFT_BACKEND");
    EXPECT_EQ(s.values.log.format, LogFormat::json);
    EXPECT_EQ(s.source("log.format").to_string(), "environment WEFT_LOG_FORMAT");
    EXPECT_EQ(s.values.log.level, LogLevel::debug);
    EXPECT_EQ(s.source("log.level").to_string(), "flag --log-level");
    EXPECT_EQ(s.source("server.max_connections").to_string(), "built-in default");
}

// The three [server] limits that came with the key table: each from a file, a variable and
// --set, into http::ServerOptions (their range errors are in server_settings_errors_test).
TEST(SettingsNewKeys, MaxHeadersLingerTimeoutAndListenBacklog) {
    LoadedSettings s = load_ok(file_options(
        "[server]\nmax_headers = 250\nlinger_timeout = \"500ms\"\nlisten_backlog = 128\n"));
    EXPECT_EQ(s.values.http.max_headers, 250u);
    EXPECT_EQ(s.values.http.linger_timeout, 500ms);
    EXPECT_EQ(s.values.http.listen_backlog, 128);
    EXPECT_EQ(s.source("server.max_headers").to_string(), "weft.toml:2");
    EXPECT_EQ(s.source("server.linger_timeout").to_string(), "weft.toml:3");
    EXPECT_EQ(s.source("server.listen_backlog").to_string(), "weft.toml:4");

    s = load_ok(env_options({{"WEFT_SERVER_MAX_HEADERS", "10000"},
                             {"WEFT_SERVER_LINGER_TIMEOUT", "0"},
                             {"WEFT_SERVER_LISTEN_BACKLOG", "65535"}}));
    EXPECT_EQ(s.values.http.max_headers, 10000u);
    EXPECT_EQ(s.values.http.linger_timeout, 0s);  // 0 is allowed: close at once
    EXPECT_EQ(s.values.http.listen_backlog, 65535);
    EXPECT_EQ(s.source("server.max_headers").to_string(), "environment WEFT_SERVER_MAX_HEADERS");
    EXPECT_EQ(s.source("server.linger_timeout").to_string(),
              "environment WEFT_SERVER_LINGER_TIMEOUT");
    EXPECT_EQ(s.source("server.listen_backlog").to_string(),
              "environment WEFT_SERVER_LISTEN_BACKLOG");

    LoadOptions o = file_options("[server]\nmax_headers = 250\n");
    o.env = {{"WEFT_SERVER_MAX_HEADERS", "300"}};
    for (const char* a :
         {"server.max_headers=1", "server.linger_timeout=1h", "server.listen_backlog=1"}) {
        o.flags.push_back(*config::parse_assignment(a));
    }
    s = load_ok(o);
    EXPECT_EQ(s.values.http.max_headers, 1u);
    EXPECT_EQ(s.values.http.linger_timeout, 1h);
    EXPECT_EQ(s.values.http.listen_backlog, 1);
    EXPECT_EQ(s.source("server.max_headers").to_string(), "flag --set server.max_headers");
    EXPECT_EQ(s.source("server.linger_timeout").to_string(), "flag --set server.linger_timeout");
    EXPECT_EQ(s.source("server.listen_backlog").to_string(), "flag --set server.listen_backlog");
}

// --- the [server] spellings of the [runtime] keys ------------------------------------------

struct MovedKey {
    const char* name;  // under [server] formerly, [runtime] now
    const char* toml;  // the value as a file writes it
    const char* text;  // the value as a variable or flag writes it
    std::function<bool(const Settings&)> check;
};

std::vector<MovedKey> moved_keys() {
    return {
        {"hubs", "2", "2", [](const Settings& s) { return s.runtime.hubs == 2; }},
        {"backend", "\"epoll\"", "epoll",
         [](const Settings& s) { return s.runtime.backend == Backend::epoll; }},
        {"stack_size", "\"128KiB\"", "128KiB",
         [](const Settings& s) { return s.runtime.stack_size == 128 * kKiB; }},
        {"offload_threads", "6", "6",
         [](const Settings& s) { return s.runtime.offload_threads == 6; }},
    };
}

TEST(SettingsMovedKeys, TheSchemaKnowsEachFormerSpelling) {
    const auto& schema = settings_schema();
    std::size_t moved = 0;
    for (const auto& k : schema.keys())
        moved += k.old_names.size();
    EXPECT_EQ(moved, moved_keys().size());
    for (const auto& m : moved_keys()) {
        SCOPED_TRACE(m.name);
        const config::Key* now = schema.find("runtime", m.name);
        ASSERT_NE(now, nullptr);
        EXPECT_EQ(schema.find_old(std::string("server.") + m.name), now);
        EXPECT_EQ(schema.find("server", m.name), nullptr);
    }
}

TEST(SettingsMovedKeys, FormerSpellingInAFileWorksWithAWarning) {
    for (const auto& m : moved_keys()) {
        SCOPED_TRACE(m.name);
        const LoadedSettings s =
            load_ok(file_options(std::string("[server]\n") + m.name + " = " + m.toml + "\n"));
        EXPECT_TRUE(m.check(s.values));
        const std::string now = std::string("runtime.") + m.name;
        EXPECT_EQ(s.source(now).to_string(), "weft.toml:2");
        ASSERT_EQ(s.loaded.warnings.size(), 1u) << warnings_text(s);
        EXPECT_EQ(s.loaded.warnings[0], std::string("[server] ") + m.name +
                                            " (weft.toml:2) is now " + now + "; please rename it");
    }
}

TEST(SettingsMovedKeys, FormerVariableWorksWithAWarning) {
    for (const auto& m : moved_keys()) {
        SCOPED_TRACE(m.name);
        const std::string var = "WEFT_SERVER_" + config::to_upper(m.name);
        const LoadedSettings s = load_ok(env_options({{var, m.text}}));
        EXPECT_TRUE(m.check(s.values));
        const std::string now = std::string("runtime.") + m.name;
        EXPECT_EQ(s.source(now).to_string(), "environment " + var);
        ASSERT_EQ(s.loaded.warnings.size(), 1u) << warnings_text(s);
        EXPECT_NE(s.loaded.warnings[0].find(var), std::string::npos) << s.loaded.warnings[0];
        EXPECT_NE(s.loaded.warnings[0].find("is now " + now), std::string::npos)
            << s.loaded.warnings[0];
    }
}

TEST(SettingsMovedKeys, FormerFlagKeyWorksWithAWarning) {
    for (const auto& m : moved_keys()) {
        SCOPED_TRACE(m.name);
        const std::string old = std::string("server.") + m.name;
        const LoadedSettings s = load_ok(set_options(old + "=" + m.text));
        EXPECT_TRUE(m.check(s.values));
        const std::string now = std::string("runtime.") + m.name;
        EXPECT_EQ(s.source(now).to_string(), "flag --set " + old);
        ASSERT_EQ(s.loaded.warnings.size(), 1u) << warnings_text(s);
        EXPECT_EQ(s.loaded.warnings[0],
                  old + " (flag --set " + old + ") is now " + now + "; please rename it");
    }
}

TEST(SettingsMovedKeys, CurrentSpellingsGiveNoWarning) {
    LoadOptions o = file_options("[runtime]\nhubs = 2\nbackend = \"epoll\"\n");
    o.env = {{"WEFT_RUNTIME_STACK_SIZE", "128KiB"}, {"WEFT_HUBS", "3"}};
    o.flags = {*config::parse_assignment("runtime.offload_threads=6"),
               {"runtime.backend", "io_uring", "--backend"}};
    const LoadedSettings s = load_ok(o);
    EXPECT_TRUE(s.loaded.warnings.empty()) << warnings_text(s);
    EXPECT_EQ(s.values.runtime.hubs, 3u);
    EXPECT_EQ(s.values.runtime.backend, Backend::io_uring);
    EXPECT_EQ(s.values.runtime.stack_size, 128 * kKiB);
    EXPECT_EQ(s.values.runtime.offload_threads, 6u);
}

// A former spelling takes part in precedence like the current one.
TEST(SettingsMovedKeys, FormerSpellingsKeepThePrecedence) {
    LoadOptions o = file_options("[server]\nhubs = 2\n");
    o.env = {{"WEFT_SERVER_HUBS", "3"}};
    LoadedSettings s = load_ok(o);
    EXPECT_EQ(s.values.runtime.hubs, 3u);
    EXPECT_EQ(s.source("runtime.hubs").to_string(), "environment WEFT_SERVER_HUBS");
    EXPECT_EQ(s.loaded.warnings.size(), 2u) << warnings_text(s);

    o.flags = {{"runtime.hubs", "4", "--hubs"}};
    s = load_ok(o);
    EXPECT_EQ(s.values.runtime.hubs, 4u);
    EXPECT_EQ(s.source("runtime.hubs").to_string(), "flag --hubs");
}

// --- the environment -------------------------------------------------------------------------

struct AliasCase {
    const char* env;
    const char* value;
    const char* key;  // the key it sets, "section.name"
    std::function<bool(const Settings&)> check;
};

std::vector<AliasCase> alias_cases() {
    return {
        {"WEFT_HUBS", "3", "runtime.hubs", [](const Settings& s) { return s.runtime.hubs == 3; }},
        {"WEFT_BACKEND", "epoll", "runtime.backend",
         [](const Settings& s) { return s.runtime.backend == Backend::epoll; }},
        {"WEFT_MONITOR_THREAD_ENABLE", "off", "monitor.enabled",
         [](const Settings& s) { return !s.monitor.enabled; }},
        {"WEFT_MAX_BLOCKING_TIME", "0.25", "monitor.max_blocking_time",
         [](const Settings& s) { return s.monitor.max_blocking_time == 250ms; }},
        {"WEFT_MAX_BLOCKING_TIME", "0.1", "monitor.max_blocking_time",
         [](const Settings& s) { return s.monitor.max_blocking_time == 100ms; }},
        {"WEFT_MONITOR_PRINT_BLOCKING_REPORTS", "no", "monitor.print_blocking_reports",
         [](const Settings& s) { return !s.monitor.print_blocking_reports; }},
        {"WEFT_MONITOR_MEMORY_MAX", "512mb", "monitor.memory_max",
         [](const Settings& s) { return s.monitor.memory_max == 512 * kMiB; }},
        {"WEFT_MONITOR_MEMORY_MAX", "1.5gb", "monitor.memory_max",
         [](const Settings& s) { return s.monitor.memory_max == 3 * kGiB / 2; }},
        {"WEFT_MONITOR_MEMORY_PERIOD", "10", "monitor.memory_period",
         [](const Settings& s) { return s.monitor.memory_period == 10s; }},
        {"WEFT_TRACK_FIBER_TREE", "0", "monitor.track_fiber_tree",
         [](const Settings& s) { return !s.monitor.track_fiber_tree; }},
        // The proxy variables curl, Go and most tools read, in both cases.
        {"HTTP_PROXY", "http://proxy.example:3128", "client.http_proxy",
         [](const Settings& s) { return s.client.http_proxy == "http://proxy.example:3128"; }},
        {"http_proxy", "proxy.example:8080", "client.http_proxy",
         [](const Settings& s) { return s.client.http_proxy == "proxy.example:8080"; }},
        {"HTTPS_PROXY", "http://u:p@proxy.example:3128/", "client.https_proxy",
         [](const Settings& s) {
             return s.client.https_proxy == "http://u:p@proxy.example:3128/";
         }},
        {"https_proxy", "http://proxy.example", "client.https_proxy",
         [](const Settings& s) { return s.client.https_proxy == "http://proxy.example"; }},
        {"NO_PROXY", "internal.example,10.0.0.0/8", "client.no_proxy",
         [](const Settings& s) { return s.client.no_proxy == "internal.example,10.0.0.0/8"; }},
        {"no_proxy", "*", "client.no_proxy",
         [](const Settings& s) { return s.client.no_proxy == "*"; }},
    };
}

TEST(SettingsEnvironment, EveryAliasSetsItsKey) {
    for (const auto& k : alias_cases()) {
        SCOPED_TRACE(std::string(k.env) + "=" + k.value);
        const LoadedSettings s = load_ok(env_options({{k.env, k.value}}));
        EXPECT_TRUE(k.check(s.values));
        EXPECT_EQ(s.source(k.key).to_string(), std::string("environment ") + k.env);
        EXPECT_TRUE(s.loaded.warnings.empty()) << warnings_text(s);
    }
}

// A proxy variable set but empty is unset, as the tools that share it read it; other
// variables outside WEFT_* are not configuration at all (no error, no warning).
TEST(SettingsEnvironment, EmptyProxyVariablesAndOtherVariablesAreIgnored) {
    const LoadedSettings s = load_ok(env_options({{"HTTP_PROXY", ""},
                                                  {"http_proxy", "http://p.example:3128"},
                                                  {"PATH", "/bin"},
                                                  {"HOSTNAME", "x"},
                                                  {"HTTPS_PROXY_X", "y"}}));
    EXPECT_EQ(s.values.client.http_proxy, "http://p.example:3128");
    EXPECT_EQ(s.source("client.http_proxy").to_string(), "environment http_proxy");
    EXPECT_TRUE(s.loaded.warnings.empty()) << warnings_text(s);
}

// HTTP_PROXY and its kin are the machine's, not weft's: the file, a WEFT_* variable and a flag
// each override them (the file's "" turns a proxy off).
TEST(SettingsEnvironment, AmbientProxyVariablesYieldToWeftsOwnSettings) {
    LoadOptions o = file_options("[client]\nhttp_proxy = \"\"\n");
    o.env = {{"HTTP_PROXY", "http://a.example:1"},
             {"HTTPS_PROXY", "http://a.example:1"},
             {"WEFT_CLIENT_HTTPS_PROXY", "http://b.example:2"},
             {"NO_PROXY", ".corp"}};
    o.flags = {{"client.no_proxy", "*", "--set"}};
    const LoadedSettings s = load_ok(o);
    EXPECT_EQ(s.values.client.http_proxy, "");
    EXPECT_EQ(s.source("client.http_proxy").to_string(), "weft.toml:2");
    EXPECT_EQ(s.values.client.https_proxy, "http://b.example:2");
    EXPECT_EQ(s.source("client.https_proxy").to_string(), "environment WEFT_CLIENT_HTTPS_PROXY");
    EXPECT_EQ(s.values.client.no_proxy, "*");
    // Alone, the variable sets the key.
    const LoadedSettings alone = load_ok(env_options({{"HTTPS_PROXY", "http://a.example:1"}}));
    EXPECT_EQ(alone.values.client.https_proxy, "http://a.example:1");
    const LoadedSettings socks5 =
        load_ok(env_options({{"https_proxy", "socks5h://u:pw@s.example:1080"}}));
    EXPECT_EQ(socks5.values.client.https_proxy, "socks5h://u:pw@s.example:1080");
    // One weft cannot use (another tool's SOCKS4 proxy) is no error when weft's own
    // configuration sets the key.
    LoadOptions socks = file_options("[client]\nhttps_proxy = \"\"\n");
    socks.env = {{"HTTPS_PROXY", "socks4://127.0.0.1:1080"}};
    const LoadedSettings overridden = load_ok(socks);
    EXPECT_EQ(overridden.values.client.https_proxy, "");
    EXPECT_EQ(overridden.source("client.https_proxy").to_string(), "weft.toml:2");
}

// Both spellings set and different: the upper-case one wins, as in Go, with a warning.
TEST(SettingsEnvironment, TwoSpellingsOfAProxyVariableThatDifferAreAWarning) {
    const LoadedSettings s = load_ok(
        env_options({{"HTTP_PROXY", "http://a.example:1"}, {"http_proxy", "http://b.example:2"}}));
    EXPECT_EQ(s.values.client.http_proxy, "http://a.example:1");
    EXPECT_EQ(s.source("client.http_proxy").to_string(), "environment HTTP_PROXY");
    ASSERT_EQ(s.loaded.warnings.size(), 1u);
    EXPECT_NE(s.loaded.warnings[0].find("environment http_proxy differs from HTTP_PROXY"),
              std::string::npos)
        << s.loaded.warnings[0];
}

// Every alias the schema declares is among the cases above, bound to the key the case says.
TEST(SettingsEnvironment, TheAliasCasesCoverEveryAlias) {
    std::map<std::string, std::string> declared;
    for (const auto& k : settings_schema().keys()) {
        for (const auto& alias : k.env_aliases) {
            if (alias != k.env_name()) declared[alias] = k.dotted();
        }
    }
    std::map<std::string, std::string> tested;
    for (const auto& k : alias_cases()) {
        const std::string dotted = k.key;
        const auto dot = dotted.find('.');
        const config::Key* key =
            settings_schema().find(dotted.substr(0, dot), dotted.substr(dot + 1));
        ASSERT_NE(key, nullptr) << dotted;
        if (key->env_name() != k.env) tested[k.env] = dotted;
    }
    EXPECT_EQ(declared, tested);
}

// WEFT_<SECTION>_<KEY> reaches every key: each variable below shows up as the source of its key.
TEST(SettingsEnvironment, EveryKeyHasARegularVariable) {
    const std::pair<const char*, const char*> vars[] = {
        {"WEFT_SERVER_LISTEN", "0.0.0.0:1"},
        {"WEFT_SERVER_MAX_CONNECTIONS", "5"},
        {"WEFT_SERVER_MAX_HEADER_BYTES", "32KiB"},
        {"WEFT_SERVER_MAX_URI_BYTES", "4KiB"},
        {"WEFT_SERVER_MAX_HEADERS", "20"},
        {"WEFT_SERVER_MAX_BODY_BYTES", "0"},
        {"WEFT_SERVER_MAX_BUFFERED_BODY_BYTES", "32MiB"},
        {"WEFT_SERVER_HEADER_TIMEOUT", "5s"},
        {"WEFT_SERVER_BODY_TIMEOUT", "6s"},
        {"WEFT_SERVER_MIN_BODY_RATE", "1KiB"},
        {"WEFT_SERVER_IDLE_TIMEOUT", "7s"},
        {"WEFT_SERVER_SEND_TIMEOUT", "8s"},
        {"WEFT_SERVER_LINGER_TIMEOUT", "1s"},
        {"WEFT_SERVER_REQUEST_TIMEOUT", "9s"},
        {"WEFT_SERVER_TIMEOUT_HEADER", "grpc-timeout"},
        {"WEFT_SERVER_MAX_REQUESTS_PER_CONNECTION", "100"},
        {"WEFT_SERVER_LISTEN_BACKLOG", "64"},
        {"WEFT_SERVER_DRAIN_TIMEOUT", "0"},
        {"WEFT_SERVER_SERVER_NAME", "edge"},
        {"WEFT_RUNTIME_HUBS", "2"},
        {"WEFT_RUNTIME_BACKEND", "epoll"},
        {"WEFT_RUNTIME_STACK_SIZE", "128KiB"},
        {"WEFT_RUNTIME_STACK_CACHE", "8"},
        {"WEFT_RUNTIME_OFFLOAD_THREADS", "auto"},
        {"WEFT_RUNTIME_RESOLVER_THREADS", "3"},
        {"WEFT_RUNTIME_RUN_BUDGET", "16"},
        {"WEFT_RUNTIME_RECV_BUFFERS", "128"},
        {"WEFT_RUNTIME_RECV_BUFFER_SIZE", "4KiB"},
        {"WEFT_RUNTIME_RING_ENTRIES", "512"},
        {"WEFT_RUNTIME_PATCH_SYSCALLS", "off"},
        {"WEFT_ADMIN_ENABLED", "false"},
        {"WEFT_ADMIN_LISTEN", "127.0.0.1:2"},
        {"WEFT_ADMIN_DEBUG_ENDPOINTS", "off"},
        {"WEFT_ADMIN_MAX_CONNECTIONS", "4"},
        {"WEFT_ADMIN_RESERVED_FDS", "2"},
        {"WEFT_ADMIN_HEADER_TIMEOUT", "3s"},
        {"WEFT_MONITOR_ENABLED", "no"},
        {"WEFT_MONITOR_MAX_BLOCKING_TIME", "50ms"},
        {"WEFT_MONITOR_PRINT_BLOCKING_REPORTS", "0"},
        {"WEFT_MONITOR_REQUEST_METRICS_BY_HUB", "yes"},
        {"WEFT_MONITOR_MEMORY_MAX", "1GiB"},
        {"WEFT_MONITOR_MEMORY_PERIOD", "2s"},
        {"WEFT_MONITOR_TRACK_FIBER_TREE", "false"},
        {"WEFT_MONITOR_STACKS_IN_SYSTEM_CALLS", "false"},
        {"WEFT_MONITOR_REPORTS_FILE", "reports.jsonl"},
        {"WEFT_MONITOR_REPORT_RATE_LIMIT", "0"},
        {"WEFT_MONITOR_RECENT_REPORTS", "7"},
        {"WEFT_MONITOR_LAG_PROBE_INTERVAL", "20ms"},
        {"WEFT_CLIENT_CA_FILE", "/dev/null"},
        {"WEFT_CLIENT_VERIFY_PEER", "off"},
        {"WEFT_CLIENT_CONNECT_TIMEOUT", "3s"},
        {"WEFT_CLIENT_READ_TIMEOUT", "4s"},
        {"WEFT_CLIENT_TOTAL_TIMEOUT", "5s"},
        {"WEFT_CLIENT_IDLE_TIMEOUT", "6s"},
        {"WEFT_CLIENT_MAX_IDLE_PER_HOST", "3"},
        {"WEFT_CLIENT_MAX_IDLE_TOTAL", "7"},
        {"WEFT_CLIENT_MAX_CONNECTIONS_PER_HOST", "9"},
        {"WEFT_CLIENT_MAX_RESPONSE_BYTES", "1MiB"},
        {"WEFT_CLIENT_MAX_HEADER_BYTES", "8KiB"},
        {"WEFT_CLIENT_MAX_REDIRECTS", "2"},
        {"WEFT_CLIENT_DNS_CACHE_TTL", "0"},
        {"WEFT_CLIENT_USER_AGENT", "tester/1"},
        {"WEFT_CLIENT_HTTP_PROXY", "http://p.example:3128"},
        {"WEFT_CLIENT_HTTPS_PROXY", "p.example:3129"},
        {"WEFT_CLIENT_NO_PROXY", ".corp, 192.168.0.0/16"},
        {"WEFT_ADMIN_MAX_EVENT_STREAMS", "3"},
        {"WEFT_SHED_ENABLED", "off"},  // on needs the watchdog, which this list turns off
        {"WEFT_SHED_BUDGET", "20ms"},
        {"WEFT_SHED_QUANTILE", "0.95"},
        {"WEFT_SHED_WINDOW", "2s"},
        {"WEFT_SHED_MIN_WAKEUPS", "50"},
        {"WEFT_SHED_RETRY_AFTER", "3s"},
        {"WEFT_STALL_BUDGET", "0s"},  // a budget needs the watchdog too
        {"WEFT_STALL_WINDOW", "20s"},
        {"WEFT_STALL_COOLDOWN", "40s"},
        // Readable files (the checks open them; loading a certificate is the server's job).
        {"WEFT_SERVER_TLS_CERT", "/dev/null"},
        {"WEFT_SERVER_TLS_KEY", "/dev/null"},
        {"WEFT_ADMIN_TLS_CERT", "/dev/null"},
        {"WEFT_ADMIN_TLS_KEY", "/dev/null"},
        {"WEFT_WEBSOCKET_MAX_MESSAGE_BYTES", "64KiB"},
        {"WEFT_WEBSOCKET_PING_INTERVAL", "10s"},
        {"WEFT_WEBSOCKET_IDLE_TIMEOUT", "1m"},
        {"WEFT_WEBSOCKET_ALLOWED_ORIGINS",
         "https://App.example,null  http://localhost:3000 http://[::1]:8080 http://[fd00::1]"},
        {"WEFT_LOG_LEVEL", "error"},
        {"WEFT_LOG_FORMAT", "json"},
        {"WEFT_LOG_ACCESS_LOG", "stdout"},
    };
    LoadOptions o = bare_options();
    for (const auto& [name, value] : vars)
        o.env.emplace(name, value);
    const LoadedSettings s = load_ok(o);
    const std::string json = s.json();
    for (const auto& [name, value] : vars) {
        std::string key = name + 5;  // drop "WEFT_"
        const auto underscore = key.find('_');
        key = config::to_lower(key.substr(0, underscore) + "." + key.substr(underscore + 1));
        EXPECT_EQ(s.source(key).to_string(), std::string("environment ") + name) << key;
        EXPECT_NE(json.find("\"" + key + "\": \"environment " + name + "\""), std::string::npos)
            << key;
    }
    EXPECT_NE(json.find("\"sources\""), std::string::npos);
    // Nothing left at its built-in default: the list above covers every key.
    EXPECT_EQ(s.render().find("built-in default"), std::string::npos) << s.render();
    EXPECT_EQ(std::size(vars), settings_schema().keys().size());
    const Settings& v = s.values;
    EXPECT_EQ(v.monitor.reports_file, "reports.jsonl");
    EXPECT_EQ(v.log.access_log.kind, AccessLogTarget::Kind::to_stdout);
    EXPECT_EQ(v.runtime.recv_buffers, 128u);
    EXPECT_FALSE(v.runtime.patch_syscalls);
    EXPECT_EQ(v.http.request_timeout, 9s);
    EXPECT_EQ(v.http.min_body_rate, 1024u);
    EXPECT_EQ(v.http.tls_cert, "/dev/null");
    EXPECT_EQ(v.admin.http.tls_key, "/dev/null");
    EXPECT_EQ(v.http.websocket_max_message_bytes, 64u * 1024);
    EXPECT_EQ(v.http.websocket_ping_interval, 10s);
    EXPECT_EQ(v.http.websocket_idle_timeout, 60s);
    EXPECT_EQ(v.http.websocket_allowed_origins,
              (std::vector<std::string>{"https://app.example", "null", "http://localhost:3000",
                                        "http://[::1]:8080", "http://[fd00::1]"}));
    EXPECT_EQ(v.http.timeout_header, "grpc-timeout");
    EXPECT_EQ(v.client.ca_file, "/dev/null");
    EXPECT_FALSE(v.client.verify_peer);
    EXPECT_EQ(v.client.total_timeout, 5s);
    EXPECT_EQ(v.client.max_connections_per_host, 9u);
    EXPECT_EQ(v.client.max_response_bytes, kMiB);
    EXPECT_EQ(v.client.max_redirects, 2);
    EXPECT_EQ(v.client.dns_cache_ttl, 0s);
    EXPECT_EQ(v.client.user_agent, "tester/1");
    EXPECT_EQ(v.client.http_proxy, "http://p.example:3128");
    EXPECT_EQ(v.client.https_proxy, "p.example:3129");
    EXPECT_EQ(v.client.no_proxy, ".corp, 192.168.0.0/16");
    EXPECT_EQ(v.runtime.recv_buffer_size, 4 * kKiB);
    EXPECT_EQ(v.runtime.ring_entries, 512u);
    EXPECT_EQ(v.runtime.run_budget, 16u);
    EXPECT_EQ(v.runtime.stack_cache, 8u);
    EXPECT_EQ(v.admin.http.max_connections, 4u);
    EXPECT_EQ(v.admin.http.header_timeout, 3s);
    EXPECT_EQ(v.http.max_buffered_body_bytes, 32 * kMiB);
    EXPECT_EQ(v.monitor.recent_reports, 7u);
    EXPECT_EQ(v.monitor.reports_per_minute, 0u);
    EXPECT_EQ(v.runtime.lag_probe_interval, 20ms);
    EXPECT_EQ(v.admin.max_event_streams, 3u);
    EXPECT_FALSE(v.shed.enabled);
    EXPECT_EQ(v.shed.budget, 20ms);
    EXPECT_DOUBLE_EQ(v.shed.quantile, 0.95);
    EXPECT_EQ(v.shed.window, 2s);
    EXPECT_EQ(v.shed.min_wakeups, 50u);
    EXPECT_EQ(v.shed.retry_after, 3s);
    EXPECT_EQ(v.stall.budget, 0s);  // from the environment (its source says so) all the same
    EXPECT_EQ(v.stall.window, 20s);
    EXPECT_EQ(v.stall.cooldown, 40s);
}

// The value each key prints reads back through its variable and through --set: one grammar for
// every source.
TEST(SettingsEnvironment, EveryKeyReadsItsOwnPrintedDefault) {
    const Settings defaults;
    LoadOptions by_env;
    LoadOptions by_flag;
    for (const auto& k : settings_schema().keys()) {
        std::string text = k.toml(&defaults);
        if (text.size() >= 2 && text.front() == '"' && text.back() == '"')
            text = text.substr(1, text.size() - 2);
        by_env.env.emplace(k.env_name(), text);
        by_flag.flags.push_back(*config::parse_assignment(k.dotted() + "=" + text));
    }
    const std::string expected = load_ok(bare_options()).json(false);
    for (const auto* o : {&by_env, &by_flag}) {
        const LoadedSettings s = load_ok(*o);
        EXPECT_EQ(s.json(false), expected);
        EXPECT_EQ(s.render().find("built-in default"), std::string::npos) << s.render();
    }
}

// A WEFT_* variable that is not ours is left alone (other tools and a Kubernetes service's
// links use the prefix), but one that is a typo of ours away is pointed out.
TEST(SettingsEnvironment, AVariableATypoAwayFromOursIsWarnedAbout) {
    const LoadedSettings s = load_ok(env_options({{"WEFT_ADMN_DEBUG_ENDPOINTS", "false"},
                                                  {"WEFT_SERVICE_HOST", "10.0.0.1"},
                                                  {"WEFT_PORT_8080_TCP", "tcp://10.0.0.1:8080"},
                                                  {"WEFT_TEST_LOG", "1"}}));
    EXPECT_TRUE(s.values.admin.debug_endpoints) << "the misspelt variable was applied";
    ASSERT_EQ(s.loaded.warnings.size(), 1u) << warnings_text(s);
    EXPECT_EQ(s.loaded.warnings[0],
              "environment WEFT_ADMN_DEBUG_ENDPOINTS is not a configuration variable and is "
              "ignored; did you mean WEFT_ADMIN_DEBUG_ENDPOINTS?");
}

// A Kubernetes Service named like a section (weft-admin, weft-server) gives every pod of its
// namespace WEFT_ADMIN_PORT and the like: they must not stop the server from starting.
TEST(SettingsEnvironment, AServiceNamedLikeASectionDoesNotStopTheServer) {
    const LoadedSettings s =
        load_ok(env_options({{"WEFT_ADMIN_SERVICE_HOST", "10.0.0.7"},
                             {"WEFT_ADMIN_SERVICE_PORT", "9090"},
                             {"WEFT_ADMIN_SERVICE_PORT_METRICS", "9090"},
                             {"WEFT_ADMIN_PORT", "tcp://10.0.0.7:9090"},
                             {"WEFT_ADMIN_PORT_9090_TCP", "tcp://10.0.0.7:9090"},
                             {"WEFT_ADMIN_PORT_9090_TCP_PROTO", "tcp"},
                             {"WEFT_ADMIN_PORT_9090_TCP_PORT", "9090"},
                             {"WEFT_ADMIN_PORT_9090_TCP_ADDR", "10.0.0.7"},
                             {"WEFT_SERVER_INTERNAL_SERVICE_HOST", "10.0.0.8"}}));
    ASSERT_EQ(s.loaded.warnings.size(), 1u) << warnings_text(s);
    EXPECT_NE(s.loaded.warnings[0].find("environment WEFT_ADMIN_PORT, WEFT_ADMIN_PORT_9090_TCP, "),
              std::string::npos)
        << s.loaded.warnings[0];
    EXPECT_NE(s.loaded.warnings[0].find("WEFT_SERVER_INTERNAL_SERVICE_HOST are not configuration"),
              std::string::npos)
        << s.loaded.warnings[0];
    EXPECT_NE(s.loaded.warnings[0].find("enableServiceLinks: false"), std::string::npos);
}

TEST(SettingsEnvironment, BooleanSpellings) {
    for (const char* yes : {"1", "true", "on", "yes", "TRUE", "Yes", " on "}) {
        LoadOptions o = file_options("[admin]\ndebug_endpoints = false\n");
        o.env = {{"WEFT_ADMIN_DEBUG_ENDPOINTS", yes}};
        EXPECT_TRUE(load_ok(o).values.admin.debug_endpoints) << yes;
    }
    for (const char* no : {"0", "false", "off", "no", "OFF", "No"}) {
        EXPECT_FALSE(
            load_ok(env_options({{"WEFT_ADMIN_DEBUG_ENDPOINTS", no}})).values.admin.debug_endpoints)
            << no;
    }
}

TEST(SettingsEnvironment, AliasAndRegularNameMayAgree) {
    const LoadedSettings s = load_ok(env_options({{"WEFT_HUBS", "4"}, {"WEFT_RUNTIME_HUBS", "4"}}));
    EXPECT_EQ(s.values.runtime.hubs, 4u);
    // The regular name is the one reported.
    EXPECT_EQ(s.source("runtime.hubs").to_string(), "environment WEFT_RUNTIME_HUBS");
}

TEST(SettingsEnvironment, OtherWeftVariablesAreIgnored) {
    const LoadOptions o = env_options({{"WEFT_TEST_LOG", "1"},
                                       {"WEFT_CONFIG", "x"},
                                       {"WEFT_", ""},
                                       {"HOME", "/"},
                                       {"WEFT_SERVERLISTEN", "x"},
                                       {"WEFT_RUNTIMEHUBS", "x"}});
    const auto r = load(o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
}

// A key's name without its section, or a section's name alone, is a guess users make (and the
// variable would pass unseen): a warning naming what was meant.
TEST(SettingsEnvironment, AKeyOrSectionNameAloneIsAWarningThatSaysWhatWasMeant) {
    const LoadedSettings s = load_ok(env_options({{"WEFT_LISTEN", "127.0.0.1:1"}}));
    ASSERT_EQ(s.loaded.warnings.size(), 1u) << warnings_text(s);
    EXPECT_EQ(s.loaded.warnings[0],
              "environment WEFT_LISTEN is not a configuration variable and is ignored; did you "
              "mean WEFT_SERVER_LISTEN or WEFT_ADMIN_LISTEN?");
    const LoadedSettings a = load_ok(env_options({{"WEFT_ADMIN", "on"}}));
    ASSERT_EQ(a.loaded.warnings.size(), 1u) << warnings_text(a);
    EXPECT_NE(a.loaded.warnings[0].find("did you mean one of WEFT_ADMIN_*?"), std::string::npos)
        << a.loaded.warnings[0];
}

TEST(SettingsEnvironment, ReadsTheProcessEnvironment) {
    ASSERT_EQ(::setenv("WEFT_CONFIG_TEST_PROBE", "a=b", 1), 0);
    ASSERT_EQ(::setenv("NOT_WEFT_CONFIG_TEST_PROBE", "x", 1), 0);
    const config::Environment env = config::environment_from_environ();
    ::unsetenv("WEFT_CONFIG_TEST_PROBE");
    ::unsetenv("NOT_WEFT_CONFIG_TEST_PROBE");
    ASSERT_EQ(env.count("WEFT_CONFIG_TEST_PROBE"), 1u);
    EXPECT_EQ(env.at("WEFT_CONFIG_TEST_PROBE"), "a=b");
    // Every variable is read (a key may take one outside WEFT_*, as HTTP_PROXY); loading
    // ignores the others (EmptyProxyVariablesAndOtherVariablesAreIgnored).
    EXPECT_EQ(env.count("NOT_WEFT_CONFIG_TEST_PROBE"), 1u);
}

// --- value forms -------------------------------------------------------------------------------

// The settings spell a backend as the runtime names it, so logs and --print-config agree.
TEST(SettingsValues, BackendNamesAreTheRuntimes) {
    for (Backend b : {Backend::automatic, Backend::io_uring, Backend::epoll}) {
        const std::string name = weft::backend_name(b);
        const LoadedSettings s = load_ok(file_options("[runtime]\nbackend = \"" + name + "\"\n"));
        EXPECT_EQ(s.values.runtime.backend, b) << name;
        EXPECT_NE(s.render().find("backend = \"" + name + "\""), std::string::npos) << name;
    }
}

TEST(SettingsValues, DurationForms) {
    const std::pair<const char*, config::Duration> cases[] = {
        {"0.5", 500ms},         {"2", 2s},
        {"\"100ms\"", 100ms},   {"\"10s\"", 10s},
        {"\"2m\"", 120s},       {"\"1m30s\"", 90s},
        {"\"1500us\"", 1500us}, {"\"0.25\"", 250ms},
        {"\"1h\"", 3600s},      {"\"250000000ns\"", 250ms},
        {"\"1.5s\"", 1500ms},
    };
    for (const auto& [text, expected] : cases) {
        const LoadedSettings s =
            load_ok(file_options(std::string("[server]\nbody_timeout = ") + text));
        EXPECT_EQ(s.values.http.body_timeout, expected) << text;
    }
    // gevent's spelling: bare seconds.
    EXPECT_EQ(
        load_ok(env_options({{"WEFT_MAX_BLOCKING_TIME", "0.1"}})).values.monitor.max_blocking_time,
        100ms);
    // Into a member counted in milliseconds.
    EXPECT_EQ(load_ok(file_options("[monitor]\nlag_probe_interval = 0.02\n"))
                  .values.runtime.lag_probe_interval,
              20ms);
}

TEST(SettingsValues, SizeForms) {
    const std::pair<const char*, std::uint64_t> cases[] = {
        {"1048576", kMiB},    {"\"512KiB\"", 512 * kKiB}, {"\"16kb\"", 16 * kKiB},
        {"\"1MiB\"", kMiB},   {"\"2gb\"", 2 * kGiB},      {"\"1.5gb\"", 3 * kGiB / 2},
        {"\"1.5KiB\"", 1536}, {"\"64 KiB\"", 64 * kKiB},  {"\"3MB\"", 3 * kMiB},
        {"\"100\"", 100},     {"\"2k\"", 2048},           {"0", 0},
    };
    for (const auto& [text, expected] : cases) {
        const LoadedSettings s =
            load_ok(file_options(std::string("[monitor]\nmemory_max = ") + text));
        EXPECT_EQ(s.values.monitor.memory_max, expected) << text;
    }
}

TEST(SettingsValues, ListenForms) {
    struct Case {
        const char* text;
        int family;
        std::uint16_t port;
        const char* printed;
    };
    const Case cases[] = {
        {"127.0.0.1:8080", AF_INET, 8080, "127.0.0.1:8080"},
        {"[::1]:8080", AF_INET6, 8080, "[::1]:8080"},
        {"[::]:80", AF_INET6, 80, "[::]:80"},
        {"*:80", AF_INET, 80, "0.0.0.0:80"},  // every IPv4 address
        {":81", AF_INET, 81, "0.0.0.0:81"},
        {"0.0.0.0:0", AF_INET, 0, "0.0.0.0:0"},
    };
    for (const auto& k : cases) {
        const LoadedSettings s = load_ok(flag_options("server.listen", k.text, "--listen"));
        const SocketAddress& a = s.values.listener.listen;
        EXPECT_EQ(a.family(), k.family) << k.text;
        EXPECT_EQ(a.port(), k.port) << k.text;
        EXPECT_EQ(a.to_string(), k.printed) << k.text;
    }
}

TEST(SettingsValues, CountsAcceptAuto) {
    LoadedSettings s =
        load_ok(file_options("[runtime]\nhubs = \"auto\"\noffload_threads = 8\nstack_size = "
                             "\"auto\"\n"));
    EXPECT_EQ(s.values.runtime.hubs, 0u);
    EXPECT_EQ(s.values.runtime.offload_threads, 8u);
    EXPECT_EQ(s.values.runtime.stack_size, 0u);
    s = load_ok(env_options({{"WEFT_HUBS", "AUTO"}, {"WEFT_RUNTIME_STACK_SIZE", "auto"}}));
    EXPECT_EQ(s.values.runtime.hubs, 0u);
    EXPECT_EQ(s.values.runtime.stack_size, 0u);
    s = load_ok(file_options("[runtime]\nhubs = 0\nstack_size = 0\n"));
    EXPECT_EQ(s.values.runtime.hubs, 0u);
    EXPECT_EQ(s.values.runtime.stack_size, 0u);
    EXPECT_NE(s.render().find("stack_size = \"auto\""), std::string::npos) << s.render();
}

TEST(SettingsValues, AccessLogTargets) {
    using K = AccessLogTarget::Kind;
    const std::tuple<const char*, K, const char*, const char*> cases[] = {
        {"off", K::off, "", "off"},
        {"", K::off, "", "off"},
        {"stdout", K::to_stdout, "", "stdout"},
        {"STDERR", K::to_stderr, "", "stderr"},
        {"logs/access.log", K::to_file, "logs/access.log", "logs/access.log"},
    };
    for (const auto& [text, kind, path, printed] : cases) {
        const AccessLogTarget a =
            load_ok(env_options({{"WEFT_LOG_ACCESS_LOG", text}})).values.log.access_log;
        EXPECT_EQ(a.kind, kind) << text;
        EXPECT_EQ(a.path, path) << text;
        EXPECT_EQ(a.to_string(), printed) << text;
    }
}

TEST(SettingsValues, EnumsIgnoreCase) {
    const LoadedSettings s =
        load_ok(file_options("[runtime]\nbackend = \"EPOLL\"\n[log]\nlevel = \"Warn\"\n"));
    EXPECT_EQ(s.values.runtime.backend, Backend::epoll);
    EXPECT_EQ(s.values.log.level, LogLevel::warn);
}

// --- plugins -----------------------------------------------------------------------------------

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

TEST(SettingsPlugins, FromTheFileInOrderWithTheirTables) {
    const LoadedSettings s = load_ok(file_options(kPluginsFile));
    const auto& p = s.plugins();
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[0].path, "demo");
    EXPECT_EQ(p[0].source.to_string(), "weft.toml:2");
    EXPECT_EQ(p[0].config.get_string("greeting").value(), "hello");
    EXPECT_EQ(p[0].config.get_int("count").value(), 3);
    EXPECT_EQ(p[0].config.context(), "plugin 'demo' config");
    EXPECT_EQ(p[1].path, "lib/libauth.so");
    EXPECT_EQ(p[1].config.get_string("realm").value(), "weft");
    EXPECT_EQ(p[1].config.get_table("db").value().get_int("port").value(), 5432);
    EXPECT_TRUE(p[2].config.empty());
    EXPECT_EQ(p[2].config.context(), "plugin 'bare' config");
}

TEST(SettingsPlugins, FlagsReplaceTheListAndKeepConfiguredTables) {
    LoadOptions o = file_options(kPluginsFile);
    o.flags = {{"plugin", "lib/libauth.so", "--plugin"}, {"plugin", "extra.so", "--plugin"}};
    const LoadedSettings s = load_ok(o);
    const auto& p = s.plugins();
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].path, "lib/libauth.so");
    EXPECT_EQ(p[0].source.to_string(), "flag --plugin");
    EXPECT_EQ(p[0].config.get_string("realm").value(), "weft");
    EXPECT_EQ(p[1].path, "extra.so");
    EXPECT_TRUE(p[1].config.empty());
    // The demo's table is not used: said, with where it is (the bare entry has none to lose).
    ASSERT_EQ(s.loaded.warnings.size(), 1u) << warnings_text(s);
    EXPECT_EQ(s.loaded.warnings[0],
              "weft.toml:2: [[plugin]] 'demo' is not loaded, nor its [plugin.config] table: "
              "--plugin replaces the configured plugins (name that file to keep them)");
}

TEST(SettingsPlugins, AFlagNamingTheConfiguredFileOtherwiseKeepsItsTable) {
    // "./build/x.so" names the file the configuration calls "build/x.so" (or its absolute
    // path): the same plugin, whose table stays.
    const auto dir =
        std::filesystem::temp_directory_path() / ("weft-plugin-path-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "build");
    { std::ofstream(dir / "build" / "x.so") << "not loaded here"; }
    const std::string absolute = (dir / "build" / "x.so").string();
    LoadOptions o =
        file_options("[[plugin]]\npath = \"" + absolute +
                     "\"\nstall_budget = \"1s\"\n[plugin.config]\ngreeting = \"Howdy\"\n");
    o.flags = {{"plugin", (dir / "." / "build" / ".." / "build" / "x.so").string(), "--plugin"}};
    const LoadedSettings s = load_ok(o);
    std::filesystem::remove_all(dir);
    ASSERT_EQ(s.plugins().size(), 1u);
    EXPECT_EQ(s.plugins()[0].config.get_string("greeting").value(), "Howdy");
    EXPECT_EQ(s.plugins()[0].stall_budget, std::chrono::seconds(1));
    EXPECT_TRUE(s.loaded.warnings.empty()) << warnings_text(s);
}

TEST(SettingsPlugins, FlagReplacesTheEmbeddedDemo) {
    LoadOptions o = embedded_options();
    o.flags = {{"plugin.path", "mine.so", "--plugin"}};
    const LoadedSettings s = load_ok(o);
    ASSERT_EQ(s.plugins().size(), 1u);
    EXPECT_EQ(s.plugins()[0].path, "mine.so");
}

// --- flags -------------------------------------------------------------------------------------

// The keys with a flag of their own (main.cpp adds one option per key the schema gives a flag).
TEST(SettingsFlags, KeysWithAFlagOfTheirOwnAllLoad) {
    const std::map<std::string, const char*> samples = {
        {"--listen", "127.0.0.1:1"},     {"--admin", "127.0.0.1:2"}, {"--hubs", "2"},
        {"--backend", "epoll"},          {"--log-level", "debug"},   {"--log-format", "json"},
        {"--max-blocking-time", "50ms"},
    };
    LoadOptions o = bare_options();
    std::set<std::string> flags;
    for (const auto& k : settings_schema().keys()) {
        if (k.flag.empty()) continue;
        SCOPED_TRACE(k.flag);
        flags.insert(k.flag);
        ASSERT_EQ(samples.count(k.flag), 1u);
        EXPECT_FALSE(k.doc.empty());
        EXPECT_FALSE(k.value_name.empty());
        o.flags.push_back({k.dotted(), samples.at(k.flag), k.flag});
    }
    EXPECT_EQ(flags.size(), samples.size());
    o.flags.push_back({"plugin", "x.so", "--plugin"});
    const LoadedSettings s = load_ok(o);
    EXPECT_EQ(s.values.admin.listen.port(), 2);
    EXPECT_EQ(s.source("admin.listen").to_string(), "flag --admin");
    EXPECT_EQ(s.values.runtime.hubs, 2u);
    EXPECT_EQ(s.source("runtime.hubs").to_string(), "flag --hubs");
    EXPECT_EQ(s.values.monitor.max_blocking_time, 50ms);
    EXPECT_EQ(s.values.log.format, LogFormat::json);
    ASSERT_EQ(s.plugins().size(), 1u);
}

TEST(SettingsFlags, EveryKeyHasADoc) {
    for (const auto& k : settings_schema().keys())
        EXPECT_FALSE(k.doc.empty()) << k.dotted();
}

TEST(SettingsFlags, GenericAssignment) {
    auto f = config::parse_assignment("server.max_body_bytes = 2MiB");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->key, "server.max_body_bytes");
    EXPECT_EQ(f->value, " 2MiB");
    EXPECT_EQ(f->flag, "--set server.max_body_bytes");
    EXPECT_FALSE(config::parse_assignment("runtime.hubs"));

    LoadOptions o = bare_options();
    o.flags = {*f};
    const LoadedSettings s = load_ok(o);
    EXPECT_EQ(s.values.http.max_body_bytes, 2 * kMiB);
    EXPECT_EQ(s.source("server.max_body_bytes").to_string(), "flag --set server.max_body_bytes");
}

// --- the file and the result -------------------------------------------------------------------

TEST(SettingsFile, ReadsFromDisk) {
    char path[] = "/tmp/weft_settings_testXXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        std::ofstream out(path);
        out << "[runtime]\n\nhubs = 7\n";
    }
    LoadOptions o;
    o.file = path;
    auto r = load(o);
    std::remove(path);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r.value().values.runtime.hubs, 7u);
    EXPECT_EQ(r.value().source("runtime.hubs").to_string(), std::string(path) + ":3");
}

TEST(SettingsResult, SettingsCanBeMovedOutOfATemporary) {
    const LoadedSettings s = load(bare_options()).value();
    EXPECT_EQ(s.values.listener.listen.port(), 8080);
}

TEST(SettingsResult, ValueOfAFailedLoadThrowsTheErrors) {
    Settings values;
    const auto r = config::load(settings_schema(), values, file_options("[runtime]\nhubs = -1\n"));
    ASSERT_FALSE(r.ok());
    EXPECT_THROW((void)r.value(), weft::BadResultAccess);
    try {
        (void)r.value();
        FAIL() << "value() of a failed load did not throw";
    } catch (const weft::ResultError<config::ConfigErrors>& e) {
        EXPECT_NE(std::string(e.what()).find("[runtime] hubs"), std::string::npos) << e.what();
        ASSERT_EQ(e.error().list.size(), 1u);
        EXPECT_EQ(e.error().list[0].source.to_string(), "weft.toml:2");
    }
}

}  // namespace
}  // namespace weft::server::test
