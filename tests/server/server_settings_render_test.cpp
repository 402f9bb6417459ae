// render_effective and to_json: the rendered TOML loads back to the same values with a source
// comment on every value, and the JSON is valid (a strict hand parser here, and Python's).
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "server_settings_test_util.hpp"

namespace weft::server::test {
namespace {

using config::kGiB;
using config::LoadOptions;
using config::Table;
using config::Value;

// Every key set away from its default, and a plugin table with every kind of value.
constexpr const char* kRichFile = R"([server]
listen = "[::1]:8443"
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
server_name = "acme/2.1 (\"edge\") v2"
max_headers = 33
linger_timeout = "750ms"
listen_backlog = 128

[runtime]
hubs = 3
backend = "epoll"
stack_size = 131072
stack_cache = 5
offload_threads = 4
run_budget = 16
recv_buffers = 64
recv_buffer_size = "4KiB"
ring_entries = 256
patch_syscalls = false

[admin]
enabled = false
listen = "*:9999"
debug_endpoints = false
max_connections = 12
header_timeout = "3s"

[monitor]
enabled = true
max_blocking_time = "2500us"
print_blocking_reports = false
memory_max = "1.5GiB"
memory_period = "3s"
track_fiber_tree = false
stacks_in_system_calls = false
reports_file = "reports \"quoted\" \\ é.jsonl"
report_rate_limit = 0
recent_reports = 9
lag_probe_interval = "1ms"

[log]
level = "critical"
format = "json"
access_log = "/var/log/weft/access.log"

[client]
http_proxy = "http://proxy.example:3128"
https_proxy = "proxy.example:3129"
no_proxy = ".corp, 10.0.0.0/8, [fd00::1]:8443"

[shed]
budget = "20ms"
quantile = 0.95
window = "2s"
min_wakeups = 7
retry_after = "3s"

[stall]
budget = "1.5s"
window = "20s"
cooldown = "1m"

[[plugin]]
path = "demo"
stall_budget = "250ms"
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

LoadedSettings rich_config() {
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
void expect_same(const LoadedSettings& a, const LoadedSettings& b) {
    LoadedSettings a_settings = a;
    LoadedSettings b_settings = b;
    for (auto& p : a_settings.loaded.plugins)
        p.config = Table{};
    for (auto& p : b_settings.loaded.plugins)
        p.config = Table{};
    EXPECT_EQ(a_settings.json(false), b_settings.json(false));
    ASSERT_EQ(a.plugins().size(), b.plugins().size());
    for (std::size_t i = 0; i < a.plugins().size(); ++i) {
        EXPECT_EQ(a.plugins()[i].path, b.plugins()[i].path);
        EXPECT_EQ(a.plugins()[i].stall_budget, b.plugins()[i].stall_budget);
        EXPECT_TRUE(Value::make_table(a.plugins()[i].config)
                        .same_content(Value::make_table(b.plugins()[i].config)))
            << "plugin " << i;
    }
}

TEST(ConfigRender, RoundTripsEveryValue) {
    const LoadedSettings original = rich_config();
    EXPECT_TRUE(original.loaded.warnings.empty()) << warnings_text(original);
    const std::string rendered = original.render();
    const LoadedSettings reloaded = load_ok(file_options(rendered));
    expect_same(original, reloaded);
    // Spot checks that do not go through to_json.
    const Settings& v = reloaded.values;
    EXPECT_EQ(v.http.header_timeout, std::chrono::microseconds(1500));
    EXPECT_EQ(v.http.max_header_bytes, 20000u);
    EXPECT_EQ(v.http.max_headers, 33u);
    EXPECT_EQ(v.http.linger_timeout, std::chrono::milliseconds(750));
    EXPECT_EQ(v.http.listen_backlog, 128);
    EXPECT_EQ(v.runtime.hubs, 5u) << "the environment's WEFT_HUBS";
    EXPECT_EQ(v.runtime.stack_size, 131072u);
    EXPECT_EQ(v.runtime.ring_entries, 256u);
    EXPECT_FALSE(v.runtime.patch_syscalls);
    EXPECT_EQ(v.admin.http.max_connections, 12u);
    EXPECT_EQ(v.monitor.memory_max, 3 * kGiB / 2);
    EXPECT_EQ(v.monitor.recent_reports, 9u);
    EXPECT_EQ(v.monitor.reports_file, "reports \"quoted\" \\ é.jsonl");
    EXPECT_EQ(v.listener.listen.to_string(), "[::1]:8443");
    EXPECT_EQ(v.admin.listen.to_string(), "0.0.0.0:9999");  // "*" means every IPv4 address
    EXPECT_EQ(reloaded.plugins()[0].config.get_string("greeting").value(),
              "hi \"there\"\n\ttab é \x01 \x7f");
    EXPECT_EQ(reloaded.plugins()[0].config.get_double("big").value(), 1e300);
    EXPECT_EQ(reloaded.plugins()[0].stall_budget, std::chrono::milliseconds(250));
    EXPECT_FALSE(reloaded.plugins()[1].stall_budget) << "unset: the [stall] default";
    EXPECT_DOUBLE_EQ(v.shed.quantile, 0.95);
    EXPECT_EQ(v.stall.cooldown, std::chrono::minutes(1));
    EXPECT_EQ(v.client.https_proxy, "proxy.example:3129");
    EXPECT_EQ(v.client.no_proxy, ".corp, 10.0.0.0/8, [fd00::1]:8443");
    // Rendering the reloaded configuration gives the same values again.
    expect_same(reloaded, load_ok(file_options(reloaded.render())));
}

// A proxy's password is not shown: --print-config and the startup log carry the rendering.
TEST(ConfigRender, AProxyPasswordIsNotShown) {
    const LoadedSettings s =
        load_ok(file_options("[client]\nhttps_proxy = \"http://svc:s%40cret@proxy.example:3128\"\n"
                             "http_proxy = \"http://proxy.example:3128\"\n"));
    EXPECT_EQ(s.values.client.https_proxy, "http://svc:s%40cret@proxy.example:3128");
    const std::string rendered = s.render();
    const std::string json = s.json();
    EXPECT_EQ(rendered.find("cret"), std::string::npos) << rendered;
    EXPECT_EQ(json.find("cret"), std::string::npos) << json;
    EXPECT_NE(line_of_key(rendered, "https_proxy").find("\"http://***@proxy.example:3128\""),
              std::string::npos)
        << rendered;
    // Read back, the file would not connect: the line says what to do, the others say nothing.
    EXPECT_NE(line_of_key(rendered, "https_proxy").find("user information hidden: write it in"),
              std::string::npos)
        << rendered;
    EXPECT_EQ(line_of_key(rendered, "http_proxy").find("hidden"), std::string::npos) << rendered;
}

// A plugin's settings have no schema: what looks like a secret is hidden wherever they are shown
// (--print-config, /debug/config and the live page), and the plugin still gets the real value.
TEST(ConfigRender, APluginsSecretsAreNotShown) {
    const LoadedSettings s = load_ok(file_options(R"([[plugin]]
path = "p.so"
[plugin.config]
conninfo = "host=db user=app password=hunter1 sslmode=disable"
quoted = "host=db password = 'hunter 2' port=5432"
url = "postgres://app:hunter3@db.example:5432/app"
odbc = "Server=y;Uid=u;Pwd=hunter4;"
api_token = "hunter5"
DB_Password = "hunter6"
max_tokens = 5
env = "PGPASSWORD=hunter9 PGHOST=db"
plain = "http://example.com:8080/a@b user=app passwords_file=x"
[plugin.config.credentials]
user = "hunter7"
list = ["hunter8"]
)"));
    EXPECT_EQ(s.plugins()[0].config.get_string("conninfo").value(),
              "host=db user=app password=hunter1 sslmode=disable");
    const std::string rendered = s.render();
    const std::string json = s.json();
    for (const std::string& out : {rendered, json}) {
        EXPECT_EQ(out.find("hunter"), std::string::npos) << out;
        EXPECT_NE(out.find("host=db user=app password=*** sslmode=disable"), std::string::npos)
            << out;
        EXPECT_NE(out.find("host=db password = *** port=5432"), std::string::npos) << out;
        EXPECT_NE(out.find("postgres://app:***@db.example:5432/app"), std::string::npos) << out;
        EXPECT_NE(out.find("Server=y;Uid=u;Pwd=***;"), std::string::npos) << out;
        EXPECT_NE(out.find("PGPASSWORD=*** PGHOST=db"), std::string::npos) << out;
        // Nothing else is touched.
        EXPECT_NE(out.find("http://example.com:8080/a@b user=app passwords_file=x"),
                  std::string::npos)
            << out;
    }
    EXPECT_NE(line_of_key(rendered, "api_token").find("\"***\""), std::string::npos) << rendered;
    EXPECT_NE(line_of_key(rendered, "DB_Password").find("\"***\""), std::string::npos) << rendered;
    EXPECT_NE(line_of_key(rendered, "list").find("[\"***\"]"), std::string::npos) << rendered;
    EXPECT_NE(line_of_key(rendered, "conninfo").find("hidden: write it in again"),
              std::string::npos)
        << rendered;
    EXPECT_EQ(line_of_key(rendered, "plain").find("hidden"), std::string::npos) << rendered;
    // A number under a secret-like name is shown, and reads back as a number.
    EXPECT_EQ(line_of_key(rendered, "max_tokens").substr(0, 14), "max_tokens = 5") << rendered;
    const LoadedSettings again = load_ok(file_options(rendered));
    EXPECT_EQ(again.plugins()[0].config.get_int("max_tokens").value(), 5);
}

TEST(ConfigRender, RoundTripsTheDefaults) {
    const LoadedSettings embedded = load_ok(embedded_options());
    expect_same(embedded, load_ok(file_options(embedded.render())));
    const LoadedSettings builtin = load_ok(bare_options());
    expect_same(builtin, load_ok(file_options(builtin.render())));
}

TEST(ConfigRender, EachValueNamesItsSource) {
    const std::string rendered = rich_config().render();
    EXPECT_NE(line_of_key(rendered, "hubs").find("# environment WEFT_HUBS"), std::string::npos)
        << rendered;
    EXPECT_NE(line_of_key(rendered, "level").find("# flag --log-level"), std::string::npos);
    EXPECT_NE(line_of_key(rendered, "backend")
                  .find("# weft.toml:" + std::to_string(line_containing(kRichFile, "backend ="))),
              std::string::npos);
    EXPECT_NE(line_of_key(rendered, "idle_timeout").find("\"2h\""), std::string::npos);
    EXPECT_NE(line_of_key(rendered, "stack_size").find("\"128KiB\""), std::string::npos);
    EXPECT_NE(line_of_key(rendered, "max_header_bytes").find("= 20000 "), std::string::npos);

    const std::string builtin = load_ok(bare_options()).render();
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
    const LoadedSettings c = rich_config();
    for (const bool sources : {true, false}) {
        const std::string json = c.json(sources);
        EXPECT_TRUE(JsonChecker(json).valid()) << json;
        EXPECT_EQ(json.find("\"sources\"") != std::string::npos, sources);
    }
    EXPECT_TRUE(JsonChecker(load_ok(bare_options()).json()).valid());
    EXPECT_TRUE(JsonChecker(load_ok(embedded_options()).json()).valid());
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
        out << rich_config().json();
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
        "assert d['runtime']['hubs'] == 5 and d['server']['header_timeout'] == 0.0015\n"
        "assert d['runtime']['stack_size'] == 131072 and d['log']['level'] == 'debug'\n"
        "assert d['monitor']['max_blocking_time'] == 0.0025\n"
        "assert d['monitor']['reports_file'] == 'reports \"quoted\" \\\\ \\u00e9.jsonl'\n"
        "assert d['admin']['listen'] == '0.0.0.0:9999'\n"
        "assert d['server']['server_name'] == 'acme/2.1 (\"edge\") v2'\n"
        "assert d['sources']['runtime.hubs'] == 'environment WEFT_HUBS'\n"
        "assert d['sources']['log.level'] == 'flag --log-level'\n"
        "assert d['sources']['plugins[0].config.db.pool.size'] == 'weft.toml:" +
        std::to_string(line_containing(kRichFile, "size = 4")) +
        "'\n"
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
}  // namespace weft::server::test
