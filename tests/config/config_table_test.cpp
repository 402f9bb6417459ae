// Table and Value: the generic tree handed to plugins. Getters return the value or an error
// that names the plugin, the key, the value and its line, like the server's own settings.
#include <gtest/gtest.h>

#include <string>

#include "config_test_util.hpp"
#include "weft/config/load.hpp"

namespace weft::config {
namespace {

using namespace std::chrono_literals;
using test::file_options;
using test::load_ok;

constexpr const char* kFile = R"([[plugin]]
path = "demo"
[plugin.config]
greeting = 42
name = "weft"
ratio = 1
pi = 3.5
enabled = true
timeout = "250ms"
cache = "2MiB"
hosts = ["a", 3]
names = ["x", "y"]
db = { port = "x", host = "h" }
negative = -1
)";

Table demo_config() {
    const test::Demo d = load_ok(file_options(kFile));
    if (d.loaded.plugins.size() != 1) return {};
    return d.loaded.plugins[0].config;
}

TEST(ConfigTable, WrongTypeNamesPluginKeyValueAndLine) {
    const Table t = demo_config();
    const auto r = t.get_string("greeting");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().to_string(),
              "plugin 'demo' config key 'greeting': expected a string, got 42 (weft.toml:4)");
    EXPECT_EQ(t.get_int("name").error().to_string(),
              "plugin 'demo' config key 'name': expected an integer, got \"weft\" (weft.toml:5)");
    EXPECT_EQ(t.get_bool("ratio").error().to_string(),
              "plugin 'demo' config key 'ratio': expected a boolean (true or false), got 1 "
              "(weft.toml:6)");
    EXPECT_NE(t.get_double("name").error().to_string().find("expected a number"),
              std::string::npos);
    EXPECT_NE(t.get_duration("name").error().to_string().find("expected a duration"),
              std::string::npos);
    EXPECT_NE(t.get_size("pi").error().to_string().find("expected a size"), std::string::npos);
    EXPECT_NE(t.get_duration("negative")
                  .error()
                  .to_string()
                  .find("key 'negative': must not be negative, got -1"),
              std::string::npos);
    EXPECT_NE(t.get_table("name").error().to_string().find("expected a table"), std::string::npos);
    EXPECT_NE(t.get_string_array("name").error().to_string().find("expected an array"),
              std::string::npos);
}

// An error about a setting that looks like a secret does not show it (see secret_key()).
TEST(ConfigTable, AnErrorDoesNotShowASecret) {
    const test::Demo d = load_ok(file_options(R"([[plugin]]
path = "demo"
[plugin.config]
db_password = "hunter2"
conninfo = "host=db password=hunter3"
dsns = ["postgres://u:hunter4@h", 1]
[plugin.config.credentials]
user = "hunter5"
)"));
    ASSERT_EQ(d.loaded.plugins.size(), 1u);
    const Table& t = d.loaded.plugins[0].config;
    EXPECT_EQ(t.get_int("db_password").error().to_string(),
              "plugin 'demo' config key 'db_password': expected an integer, got \"***\" "
              "(weft.toml:4)");
    EXPECT_EQ(t.get_int("conninfo").error().to_string(),
              "plugin 'demo' config key 'conninfo': expected an integer, got \"host=db "
              "password=***\" (weft.toml:5)");
    EXPECT_EQ(t.get_string("db_password").value(), "hunter2");  // the plugin gets it
    const std::string arr = t.get_int("dsns").error().to_string();
    EXPECT_EQ(arr.find("hunter"), std::string::npos) << arr;
    EXPECT_NE(arr.find("postgres://u:***@h"), std::string::npos) << arr;
    const auto creds = t.get_table("credentials");
    ASSERT_TRUE(creds.ok());
    const std::string nested = creds.value().get_int("user").error().to_string();
    EXPECT_EQ(nested.find("hunter"), std::string::npos) << nested;
}

TEST(ConfigTable, TypedGetters) {
    const Table t = demo_config();
    EXPECT_EQ(t.get_string("name").value(), "weft");
    EXPECT_EQ(t.get_int("greeting").value(), 42);
    EXPECT_EQ(t.get_double("ratio").value(), 1.0);  // an integer is a fine double
    EXPECT_EQ(t.get_double("pi").value(), 3.5);
    EXPECT_TRUE(t.get_bool("enabled").value());
    EXPECT_EQ(t.get_duration("timeout").value(), 250ms);
    EXPECT_EQ(t.get_duration("ratio").value(), 1s);
    EXPECT_EQ(t.get_size("cache").value(), 2 * kMiB);
    EXPECT_EQ(t.get_string_array("names").value(), (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(t.get_table("db").value().get_string("host").value(), "h");
}

TEST(ConfigTable, MissingKeysUseFallbacksOrSayRequired) {
    const Table t = demo_config();
    EXPECT_EQ(t.get_string("absent", "dflt").value(), "dflt");
    EXPECT_EQ(t.get_int("absent", 7).value(), 7);
    EXPECT_EQ(t.get_double("absent", 0.5).value(), 0.5);
    EXPECT_FALSE(t.get_bool("absent", false).value());
    EXPECT_EQ(t.get_duration("absent", 3s).value(), 3s);
    EXPECT_EQ(t.get_size("absent", 10).value(), 10u);
    EXPECT_EQ(t.get_string_array("absent", {"z"}).value(), std::vector<std::string>{"z"});
    EXPECT_EQ(t.get_string("absent").error().to_string(),
              "plugin 'demo' config key 'absent': is required but missing (weft.toml:3)");
    EXPECT_FALSE(t.get_string_array("absent").ok());
    EXPECT_FALSE(t.get_table("absent").ok());
    // A fallback does not hide a wrong type.
    EXPECT_FALSE(t.get_string("greeting", "dflt").ok());
}

TEST(ConfigTable, NestedAndArrayErrorsNameThePath) {
    const Table t = demo_config();
    EXPECT_EQ(t.get_table("db").value().get_int("port").error().to_string(),
              "plugin 'demo' config key 'db.port': expected an integer, got \"x\" (weft.toml:13)");
    EXPECT_EQ(t.get_string_array("hosts").error().to_string(),
              "plugin 'demo' config key 'hosts[1]': expected a string, got 3 (weft.toml:11)");
}

TEST(ConfigTable, OwnChecksAndUnknownKeys) {
    const Table t = demo_config();
    EXPECT_EQ(t.error("pi", "must be below 3").to_string(),
              "plugin 'demo' config key 'pi': must be below 3, got 3.5 (weft.toml:7)");
    const auto errors = t.check_keys({"greting", "name", "ratio", "pi", "enabled", "timeout",
                                      "cache", "hosts", "names", "negative"});
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].to_string(),
              "plugin 'demo' config key 'greeting': unknown key; did you mean 'greting'? "
              "(weft.toml:4)");
    EXPECT_EQ(errors[1].key, "plugin 'demo' config key 'db'");
}

TEST(ConfigTable, ValueThrowsWithTheMessage) {
    const Table t = demo_config();
    try {
        (void)t.get_string("greeting").value();
        FAIL() << "value() of an error did not throw";
    } catch (const ResultError<ConfigError>& e) {
        EXPECT_EQ(std::string(e.what()), e.error().to_string());
        EXPECT_EQ(e.error().key, "plugin 'demo' config key 'greeting'");
    }
    EXPECT_EQ(t.get_string("greeting").value_or("x"), "x");
}

TEST(ConfigTable, BuiltByHand) {
    Table t("my table", Source::flag("--x"));
    t.set("b", Value::make_integer(1, {}));
    t.set("a", Value::make_array({Value::make_integer(1, {}), Value::make_string("s", {})}, {}));
    t.set("b", Value::make_boolean(true, Source::environment("E")));
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t.begin()->first, "b");  // insertion order; set() replaces in place
    EXPECT_EQ(t.find("b")->describe(), "true");
    EXPECT_EQ(t.find("b")->source().to_string(), "environment E");
    EXPECT_EQ(t.find("a")->describe(), "[1, \"s\"]");
    EXPECT_EQ(Value::make_table(Table{}).describe(), "a table");
    EXPECT_EQ(t.get_string("missing").error().to_string(),
              "my table key 'missing': is required but missing (flag --x)");
    EXPECT_TRUE(t.find("a")->same_content(*t.find("a")));
    EXPECT_FALSE(t.find("a")->same_content(*t.find("b")));
}

}  // namespace
}  // namespace weft::config
