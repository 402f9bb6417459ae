// render_effective and to_json: the rendered TOML loads back to the same values with a source
// comment on every value, and the JSON is valid (a strict hand parser here, and Python's).
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "config_test_util.hpp"
#include "weft/config/load.hpp"
#include "weft/config/render.hpp"

namespace weft::config {
namespace {

using test::bare_options;
using test::file_options;
using test::load_ok;

// Every key set away from its default, and a plugin table with every kind of value.
constexpr const char* kRichFile = R"([server]
listen = "[::1]:8443"
hubs = 3
backend = "epoll"
stack_size = 131072
max_connections = 77
max_header_bytes = 20000
max_uri_bytes = "4KiB"
max_body_bytes = 0
header_timeout = 0.0015
body_timeout = "1m30s"
idle_timeout = "2h"
send_timeout = 7
max_requests_per_connection = 1000
drain_timeout = 0
offload_threads = 4
server_name = "acme/2.1 (\"edge\") v2"

[admin]
enabled = false
listen = "*:9999"
debug_endpoints = false

[monitor]
enabled = false
max_blocking_time = "250us"
print_blocking_reports = false
memory_max = "1.5GiB"
memory_period = "3s"
track_fiber_tree = false
reports_file = "reports \"quoted\" \\ é.jsonl"
report_rate_limit = 0
lag_probe_interval = "1ms"

[log]
level = "critical"
format = "json"
access_log = "/var/log/weft/access.log"

[[plugin]]
path = "demo"
[plugin.config]
greeting = "hi \"there\"\n\ttab é \u0001 \u007f"
count = -3
ratio = 0.1
big = 1e300
tiny = 5e-324
not_a_number = nan
negative_infinity = -inf
flag = true
list = [1, 2.5, "three", [4], { five = 5 }]
"key with spaces" = "x"
"ünïcode" = 1
empty = {}
[plugin.config.db]
host = "h"
[plugin.config.db.pool]
size = 4
[[plugin.config.routes]]
path = "/a"
[[plugin.config.routes]]
path = "/b"

[[plugin]]
path = "second.so"
)";

Config rich_config() {
    LoadOptions o = file_options(kRichFile);
    o.env = {{"WEFT_HUBS", "5"}};
    o.flags = {{"log.level", "debug", "--log-level"}};
    return load_ok(o);
}

std::string line_of_key(const std::string& text, std::string_view key) {
    const std::string needle = "\n" + std::string(key) + " = ";
    const auto at = text.find(needle);
    if (at == std::string::npos) return {};
    const auto end = text.find('\n', at + 1);
    return text.substr(at + 1, end - at - 1);
}

// Same values everywhere. Plugin tables are compared without regard to key order: rendering
// puts a table's sub-tables after its other values, as TOML requires.
void expect_same(const Config& a, const Config& b) {
    Config a_settings = a;
    Config b_settings = b;
    for (auto& p : a_settings.plugins)
        p.config = Table{};
    for (auto& p : b_settings.plugins)
        p.config = Table{};
    EXPECT_EQ(to_json(a_settings, false), to_json(b_settings, false));
    ASSERT_EQ(a.plugins.size(), b.plugins.size());
    for (std::size_t i = 0; i < a.plugins.size(); ++i) {
        EXPECT_EQ(a.plugins[i].path.value, b.plugins[i].path.value);
        EXPECT_TRUE(Value::make_table(a.plugins[i].config)
                        .same_content(Value::make_table(b.plugins[i].config)))
            << "plugin " << i;
    }
}

TEST(ConfigRender, RoundTripsEveryValue) {
    const Config original = rich_config();
    const std::string rendered = render_effective(original);
    const Config reloaded = load_ok(file_options(rendered));
    expect_same(original, reloaded);
    // Spot checks that do not go through to_json.
    EXPECT_EQ(reloaded.server.header_timeout.value, std::chrono::microseconds(1500));
    EXPECT_EQ(reloaded.server.max_header_bytes.value, 20000u);
    EXPECT_EQ(reloaded.monitor.memory_max.value, 3 * kGiB / 2);
    EXPECT_EQ(reloaded.monitor.reports_file.value, "reports \"quoted\" \\ é.jsonl");
    EXPECT_EQ(reloaded.server.listen.value.to_string(), "[::1]:8443");
    EXPECT_EQ(reloaded.admin.listen.value.to_string(), "*:9999");
    EXPECT_EQ(reloaded.plugins[0].config.get_string("greeting").value(),
              "hi \"there\"\n\ttab é \x01 \x7f");
    EXPECT_EQ(reloaded.plugins[0].config.get_double("big").value(), 1e300);
    // Rendering the reloaded configuration gives the same values again.
    expect_same(reloaded, load_ok(file_options(render_effective(reloaded))));
}

TEST(ConfigRender, RoundTripsTheDefaults) {
    const Config embedded = load_ok(LoadOptions{});
    expect_same(embedded, load_ok(file_options(render_effective(embedded))));
    const Config builtin = load_ok(bare_options());
    expect_same(builtin, load_ok(file_options(render_effective(builtin))));
}

TEST(ConfigRender, EachValueNamesItsSource) {
    const std::string rendered = render_effective(rich_config());
    EXPECT_NE(line_of_key(rendered, "hubs").find("# environment WEFT_HUBS"), std::string::npos)
        << rendered;
    EXPECT_NE(line_of_key(rendered, "level").find("# flag --log-level"), std::string::npos);
    EXPECT_NE(line_of_key(rendered, "backend").find("# weft.toml:4"), std::string::npos);
    EXPECT_NE(line_of_key(rendered, "idle_timeout").find("\"2h\""), std::string::npos);
    EXPECT_NE(line_of_key(rendered, "stack_size").find("\"128KiB\""), std::string::npos);
    EXPECT_NE(line_of_key(rendered, "max_header_bytes").find("= 20000 "), std::string::npos);

    const std::string builtin = render_effective(load_ok(bare_options()));
    EXPECT_NE(line_of_key(builtin, "max_connections").find("10000"), std::string::npos);
    EXPECT_NE(line_of_key(builtin, "max_connections").find("# built-in default"),
              std::string::npos);
    // Every line is a comment, blank, a header, or a key with a source comment.
    std::size_t start = 0;
    while (start < builtin.size()) {
        const auto end = builtin.find('\n', start);
        const std::string l = builtin.substr(start, end - start);
        start = end + 1;
        if (l.empty() || l[0] == '#' || l[0] == '[') continue;
        EXPECT_NE(l.find("  # "), std::string::npos) << l;
    }
}

// --- JSON --------------------------------------------------------------------------------

// A strict JSON syntax checker (RFC 8259), small enough to trust by reading.
class JsonChecker {
  public:
    explicit JsonChecker(std::string_view text) : s_(text) {}

    bool valid() {
        space();
        if (!value()) return false;
        space();
        return i_ == s_.size();
    }

  private:
    bool value() {
        if (i_ >= s_.size()) return false;
        switch (s_[i_]) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return string();
            case 't':
                return literal("true");
            case 'f':
                return literal("false");
            case 'n':
                return literal("null");
            default:
                return number();
        }
    }
    bool object() {
        ++i_;
        space();
        if (peek('}')) return ++i_, true;
        while (true) {
            space();
            if (!peek('"') || !string()) return false;
            space();
            if (!peek(':')) return false;
            ++i_;
            space();
            if (!value()) return false;
            space();
            if (peek('}')) return ++i_, true;
            if (!peek(',')) return false;
            ++i_;
        }
    }
    bool array() {
        ++i_;
        space();
        if (peek(']')) return ++i_, true;
        while (true) {
            space();
            if (!value()) return false;
            space();
            if (peek(']')) return ++i_, true;
            if (!peek(',')) return false;
            ++i_;
        }
    }
    bool string() {
        ++i_;
        while (i_ < s_.size()) {
            const auto c = static_cast<unsigned char>(s_[i_++]);
            if (c == '"') return true;
            if (c < 0x20) return false;
            if (c != '\\') continue;
            if (i_ >= s_.size()) return false;
            const char e = s_[i_++];
            if (e == 'u') {
                for (int k = 0; k < 4; ++k) {
                    if (i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_++]))) {
                        return false;
                    }
                }
            } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                return false;
            }
        }
        return false;
    }
    bool number() {
        const std::size_t start = i_;
        if (peek('-')) ++i_;
        if (peek('0')) {
            ++i_;
        } else if (!digits()) {
            return false;
        }
        if (peek('.')) {
            ++i_;
            if (!digits()) return false;
        }
        if (peek('e') || peek('E')) {
            ++i_;
            if (peek('+') || peek('-')) ++i_;
            if (!digits()) return false;
        }
        return i_ > start;
    }
    bool digits() {
        const std::size_t start = i_;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
            ++i_;
        return i_ > start;
    }
    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }
    bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
    void space() {
        while (i_ < s_.size() &&
               std::string_view(" \t\r\n").find(s_[i_]) != std::string_view::npos) {
            ++i_;
        }
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

TEST(ConfigJson, CheckerRejectsBrokenJson) {
    EXPECT_TRUE(JsonChecker(R"({"a": [1, -2.5e+3, "x\n", true, null, {}]})").valid());
    for (const char* bad : {R"({"a": 1,})", R"({"a" 1})", "[01]", "[1.]", R"(["\x"])", "[\"a\nb\"]",
                            "[nan]", R"({"a": 1} x)", "[1 2]"}) {
        EXPECT_FALSE(JsonChecker(bad).valid()) << bad;
    }
}

TEST(ConfigJson, IsValidJson) {
    const Config c = rich_config();
    for (const bool sources : {true, false}) {
        const std::string json = to_json(c, sources);
        EXPECT_TRUE(JsonChecker(json).valid()) << json;
        EXPECT_EQ(json.find("\"sources\"") != std::string::npos, sources);
    }
    EXPECT_TRUE(JsonChecker(to_json(load_ok(bare_options()))).valid());
    EXPECT_TRUE(JsonChecker(to_json(load_ok(LoadOptions{}))).valid());
}

TEST(ConfigJson, PythonReadsTheValuesBack) {
    if (std::system("python3 -c 'import json' >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "python3 is not available";
    }
    char path[] = "/tmp/weft_config_jsonXXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        std::ofstream out(path);
        out << to_json(rich_config());
    }
    const std::string script =
        "import json, sys\n"
        "d = json.load(open(sys.argv[1]))\n"
        "c = d['plugins'][0]['config']\n"
        "assert c['greeting'] == 'hi \"there\"\\n\\ttab \\u00e9 \\x01 \\x7f', repr(c['greeting'])\n"
        "assert c['not_a_number'] is None and c['negative_infinity'] is None\n"
        "assert c['list'] == [1, 2.5, 'three', [4], {'five': 5}], c['list']\n"
        "assert c['key with spaces'] == 'x' and c['\\u00fcn\\u00efcode'] == 1\n"
        "assert c['db']['pool']['size'] == 4 and c['routes'][1]['path'] == '/b'\n"
        "assert d['server']['hubs'] == 5 and d['server']['header_timeout'] == 0.0015\n"
        "assert d['server']['stack_size'] == 131072 and d['log']['level'] == 'debug'\n"
        "assert d['monitor']['max_blocking_time'] == 0.00025\n"
        "assert d['monitor']['reports_file'] == 'reports \"quoted\" \\\\ \\u00e9.jsonl'\n"
        "assert d['admin']['listen'] == '*:9999'\n"
        "assert d['server']['server_name'] == 'acme/2.1 (\"edge\") v2'\n"
        "assert d['sources']['server.hubs'] == 'environment WEFT_HUBS'\n"
        "assert d['sources']['log.level'] == 'flag --log-level'\n"
        "assert d['sources']['plugins[0].config.db.pool.size'] == 'weft.toml:58'\n"
        "assert d['plugins'][1] == {'path': 'second.so', 'config': {}}\n";
    char script_path[] = "/tmp/weft_config_checkXXXXXX";
    const int sfd = ::mkstemp(script_path);
    ASSERT_GE(sfd, 0);
    ::close(sfd);
    {
        std::ofstream out(script_path);
        out << script;
    }
    const int status = std::system(("python3 " + std::string(script_path) + " " + path).c_str());
    std::remove(path);
    std::remove(script_path);
    EXPECT_EQ(status, 0) << "the Python check failed (its message is above)";
}

}  // namespace
}  // namespace weft::config
