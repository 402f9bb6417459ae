// The schema machinery on a schema of the tests' own (config_test_util.hpp): every source reaches
// the bound member with the member's own type, precedence and provenance, every kind of problem
// is collected with its key, source, value and what is allowed, and rendering loads back.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_test_util.hpp"
#include "weft/config/render.hpp"

namespace weft::config {
namespace {

using namespace std::chrono_literals;
using test::Colour;
using test::Demo;
using test::demo_schema;
using test::file_options;
using test::load_demo;
using test::load_errors;
using test::load_ok;

std::string all_text(const std::vector<ConfigError>& errors) {
    std::string s;
    for (const auto& e : errors)
        s += e.to_string() + "\n";
    return s;
}

TEST(ConfigSchema, KeysKeepTheirOrderSectionsAndNames) {
    const auto& keys = demo_schema().keys();
    ASSERT_EQ(keys.size(), 9u);
    EXPECT_EQ(keys[0].display(), "[main] workers");
    EXPECT_EQ(keys[0].dotted(), "main.workers");
    EXPECT_EQ(keys[0].env_name(), "WEFT_MAIN_WORKERS");
    EXPECT_EQ(demo_schema().sections(), (std::vector<std::string>{"main", "other"}));
    EXPECT_NE(demo_schema().find("other", "workers"), nullptr);
    EXPECT_EQ(demo_schema().find("other", "timeout"), nullptr);
    EXPECT_EQ(demo_schema().find_old("old.workers"), &keys[0]);
}

TEST(ConfigSchema, NothingGivenLeavesTheMembersDefaults) {
    const Demo d = load_ok(LoadOptions{});
    const test::DemoOptions defaults;
    EXPECT_EQ(d.values.main.workers, defaults.workers);
    EXPECT_EQ(d.values.main.timeout, defaults.timeout);
    EXPECT_EQ(d.values.main.cache, defaults.cache);
    EXPECT_EQ(d.values.main.name, defaults.name);
    EXPECT_EQ(d.values.main.colour, defaults.colour);
    EXPECT_EQ(d.loaded.sources.of("main.workers").kind, Source::Kind::built_in);
    EXPECT_TRUE(d.loaded.warnings.empty());
}

TEST(ConfigSchema, FileValuesReachTheMembersInTheirOwnTypes) {
    const Demo d = load_ok(file_options(R"([main]
workers = 8
threads = "auto"
timeout = "250ms"
cache = "128KiB"
verbose = true
name = "edge"
colour = "blue"
listen = "[::1]:80"
)"));
    EXPECT_EQ(d.values.main.workers, 8);
    EXPECT_EQ(d.values.main.threads, 0);
    EXPECT_EQ(d.values.main.timeout, 250ms);  // a std::chrono::milliseconds member
    EXPECT_EQ(d.values.main.cache, 128 * kKiB);
    EXPECT_TRUE(d.values.main.verbose);
    EXPECT_EQ(d.values.main.name, "edge");
    EXPECT_EQ(d.values.main.colour, Colour::blue);
    EXPECT_EQ(d.values.main.listen.to_string(), "[::1]:80");
    EXPECT_EQ(d.values.other.workers, 4) << "another section's member of the same name";
    EXPECT_EQ(d.loaded.sources.of("main.timeout").to_string(), "weft.toml:4");
    EXPECT_EQ(d.loaded.sources.of("other.workers").kind, Source::Kind::built_in);
}

TEST(ConfigSchema, FlagBeatsEnvironmentBeatsFile) {
    LoadOptions o = file_options("[main]\nworkers = 2\ntimeout = 3\ncache = 2048\n");
    o.env = {{"WEFT_MAIN_WORKERS", "3"}, {"WEFT_MAIN_TIMEOUT", "2s"}};
    o.flags = {{"main.workers", "5", "--workers"}};
    const Demo d = load_ok(o);
    EXPECT_EQ(d.values.main.workers, 5);
    EXPECT_EQ(d.loaded.sources.of("main.workers").to_string(), "flag --workers");
    EXPECT_EQ(d.values.main.timeout, 2s);
    EXPECT_EQ(d.loaded.sources.of("main.timeout").to_string(), "environment WEFT_MAIN_TIMEOUT");
    EXPECT_EQ(d.values.main.cache, 2048u);
    EXPECT_EQ(d.loaded.sources.of("main.cache").to_string(), "weft.toml:4");
}

TEST(ConfigSchema, BlanksAroundAListenAddressAreFine) {
    // As around every other kind of value ("--set server.listen = 127.0.0.1:81").
    LoadOptions o = file_options("");
    o.env = {{"WEFT_MAIN_LISTEN", " 127.0.0.1:81 "}};
    const Demo d = load_ok(o);
    EXPECT_EQ(d.values.main.listen.to_string(), "127.0.0.1:81");
}

TEST(ConfigSchema, AliasesAndFormerNamesStillWork) {
    LoadOptions o = file_options("[old]\nworkers = 6\n");
    Demo d = load_ok(o);
    EXPECT_EQ(d.values.main.workers, 6);
    ASSERT_EQ(d.loaded.warnings.size(), 1u);
    EXPECT_EQ(d.loaded.warnings[0],
              "[old] workers (weft.toml:2) is now main.workers; please rename it");

    LoadOptions e;
    e.env = {{"WEFT_WORKERS", "7"}};
    d = load_ok(e);
    EXPECT_EQ(d.values.main.workers, 7);
    EXPECT_EQ(d.loaded.sources.of("main.workers").to_string(), "environment WEFT_WORKERS");

    // A file with both names: the same value is fine, two values are an error naming both
    // (which would win is only the order of the sections).
    d = load_ok(file_options("[main]\nworkers = 6\n[old]\nworkers = 6\n"));
    EXPECT_EQ(d.values.main.workers, 6);
    const std::string both =
        all_text(load_errors(file_options("[main]\nworkers = 6\n[old]\nworkers = 8\n")));
    EXPECT_NE(both.find("conflicts with [main] workers = 6 (weft.toml:2)"), std::string::npos)
        << both;
    EXPECT_NE(both.find("weft.toml:4"), std::string::npos) << both;

    // Variables of other parts of the program are not configuration and are left alone.
    LoadOptions other;
    other.env = {{"WEFT_TEST_SOMETHING", "x"}};
    EXPECT_TRUE(load_demo(other).ok());
}

TEST(ConfigSchema, EachProblemNamesKeySourceValueAndWhatIsAllowed) {
    const auto errors = load_errors(file_options(R"([main]
workers = 65
cache = "2MiB"
verbose = "yes"
name = "much too long"
colour = "mauve"
listen = "localhost:80"
timeout = 0
)"));
    const std::string text = all_text(errors);
    ASSERT_EQ(errors.size(), 7u) << text;
    EXPECT_EQ(errors[0].to_string(),
              "[main] workers: must be between 1 and 64, got 65 (weft.toml:2)");
    EXPECT_NE(text.find("[main] cache: must be between 1KiB and 1MiB, got \"2MiB\" (weft.toml:3)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("[main] verbose: expected a boolean"), std::string::npos) << text;
    EXPECT_NE(text.find("[main] name: expected 1 to 8 characters, got \"much too long\""),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("[main] colour: expected one of: red, green, blue, got \"mauve\""),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("[main] listen:"), std::string::npos) << text;
    EXPECT_NE(text.find("[main] timeout: must be greater than 0"), std::string::npos) << text;
}

TEST(ConfigSchema, UnknownNamesGetASuggestion) {
    std::string text = all_text(load_errors(file_options("[main]\nworkrs = 2\n")));
    EXPECT_NE(text.find("unknown key; did you mean 'workers'?"), std::string::npos) << text;
    text = all_text(load_errors(file_options("[mian]\nworkers = 2\n")));
    EXPECT_NE(text.find("did you mean [main]?"), std::string::npos) << text;
    LoadOptions e;
    e.env = {{"WEFT_MAIN_WORKRS", "2"}};
    text = all_text(load_errors(e));
    EXPECT_NE(text.find("did you mean WEFT_MAIN_WORKERS?"), std::string::npos) << text;
    LoadOptions f;
    f.flags = {{"main.colur", "red", "--set"}};
    text = all_text(load_errors(f));
    EXPECT_NE(text.find("did you mean"), std::string::npos) << text;
    EXPECT_NE(text.find("colour"), std::string::npos) << text;
}

TEST(ConfigSchema, CrossKeyChecksNameBothSources) {
    LoadOptions o = file_options("[other]\nworkers = 9\n");
    o.env = {{"WEFT_MAIN_WORKERS", "8"}};
    const auto errors = load_errors(o);
    ASSERT_EQ(errors.size(), 1u) << all_text(errors);
    EXPECT_EQ(errors[0].to_string(),
              "[other] workers: must not exceed [main] workers (8, environment WEFT_MAIN_WORKERS), "
              "got 9 (weft.toml:2)");
    // A key that already failed is not judged again by the check.
    const auto bad = load_errors(file_options("[other]\nworkers = 100\n"));
    EXPECT_EQ(bad.size(), 1u) << all_text(bad);
}

TEST(ConfigSchema, RenderedConfigurationLoadsBackWithSources) {
    LoadOptions o = file_options(
        "[main]\ntimeout = \"1m30s\"\ncache = 3072\nname = \"a \\\"q\\\"\"\ncolour = \"red\"\n");
    o.env = {{"WEFT_MAIN_VERBOSE", "on"}};
    const Demo d = load_ok(o);
    const std::string rendered = render_effective(demo_schema(), d.values, d.loaded);
    // The value, padding, then its source.
    const auto line_with = [&](std::string_view start) {
        const auto at = rendered.find("\n" + std::string(start));
        return at == std::string::npos
                   ? std::string()
                   : rendered.substr(at + 1, rendered.find('\n', at + 1) - at - 1);
    };
    EXPECT_TRUE(line_with("timeout = \"90s\" ").ends_with(" # weft.toml:2")) << rendered;
    EXPECT_TRUE(line_with("verbose = true ").ends_with(" # environment WEFT_MAIN_VERBOSE"))
        << rendered;
    EXPECT_NE(rendered.find("# built-in default"), std::string::npos) << rendered;
    const Demo back = load_ok(file_options(rendered));
    EXPECT_EQ(back.values.main.timeout, 90s);
    EXPECT_EQ(back.values.main.cache, 3072u);
    EXPECT_EQ(back.values.main.name, "a \"q\"");
    EXPECT_EQ(back.values.main.colour, Colour::red);
    EXPECT_TRUE(back.values.main.verbose);
    EXPECT_EQ(to_json(demo_schema(), back.values, back.loaded, false),
              to_json(demo_schema(), d.values, d.loaded, false));
}

}  // namespace
}  // namespace weft::config
