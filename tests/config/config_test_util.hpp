// Helpers shared by the tests of config/ as a generic library: a small options struct of the
// tests' own with a schema binding every kind of key, and loading a TOML text as if it were the
// file "weft.toml" into it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "weft/config/load.hpp"
#include "weft/config/schema.hpp"

namespace weft::config::test {

enum class Colour : std::uint8_t { red, green, blue };
inline constexpr std::string_view kColours[] = {"red", "green", "blue"};

/// The options of an imaginary module: each member owns its default.
struct DemoOptions {
    std::int64_t workers = 4;
    std::int64_t threads = 0;  ///< 0: automatic
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1500);
    std::uint64_t cache = 64 * kKiB;
    bool verbose = false;
    std::string name = "demo";
    Colour colour = Colour::green;
    SocketAddress listen = *SocketAddress::parse("127.0.0.1:7000");
};

/// Two sections, so that messages and rendering show which one a key is in.
struct DemoRoot {
    DemoOptions main;
    DemoOptions other;
};

inline Schema<DemoRoot> build_demo_schema() {
    Schema<DemoRoot> s;
    s.bind("main", "workers", [](auto& r) -> auto& { return r.main.workers; }, integer(1, 64),
           "worker count")
        .with_flag("--workers", "N")
        .with_env_alias("WEFT_WORKERS")
        .formerly("old.workers");
    s.bind("main", "threads", [](auto& r) -> auto& { return r.main.threads; }, count_or_auto(32),
           "threads; 0: automatic");
    s.bind("main", "timeout", [](auto& r) -> auto& { return r.main.timeout; },
           duration(Duration::zero(), std::chrono::hours(1), true), "how long to wait");
    s.bind("main", "cache", [](auto& r) -> auto& { return r.main.cache; }, size(kKiB, kMiB),
           "cache size");
    s.bind("main", "verbose", [](auto& r) -> auto& { return r.main.verbose; }, boolean(),
           "say more");
    s.bind("main", "name", [](auto& r) -> auto& { return r.main.name; },
           text([](std::string_view v) { return !v.empty() && v.size() <= 8; },
                "expected 1 to 8 characters"),
           "a name");
    s.bind("main", "colour", [](auto& r) -> auto& { return r.main.colour; },
           choice<Colour>(kColours), "red, green or blue");
    s.bind("main", "listen", [](auto& r) -> auto& { return r.main.listen; }, listen_address(),
           "where to listen");
    s.bind("other", "workers", [](auto& r) -> auto& { return r.other.workers; }, integer(1, 64),
           "the other worker count");
    s.check([](const DemoRoot& r, CheckContext& ctx) {
        if (!ctx.failed("other.workers") && r.other.workers > r.main.workers) {
            ctx.error("other.workers", std::to_string(r.other.workers),
                      "must not exceed [main] workers (" + std::to_string(r.main.workers) + ", " +
                          ctx.source("main.workers").to_string() + ")");
        }
    });
    return s;
}

inline const Schema<DemoRoot>& demo_schema() {
    static const Schema<DemoRoot> s = build_demo_schema();
    return s;
}

/// What a load gave: the values it wrote and what else it found.
struct Demo {
    DemoRoot values;
    Loaded loaded;
};

/// Options that read `text` as the file "weft.toml" (no default text, no environment).
inline LoadOptions file_options(std::string text) {
    LoadOptions o;
    o.file = "weft.toml";
    o.file_text = std::move(text);
    return o;
}

inline Result<Demo, ConfigErrors> load_demo(const LoadOptions& options) {
    Demo out;
    auto r = load(demo_schema(), out.values, options);
    if (!r) return std::move(r).error();
    out.loaded = std::move(r).value();
    return out;
}

/// Loads and fails the test (with every error) unless the result is ok.
inline Demo load_ok(const LoadOptions& options) {
    auto r = load_demo(options);
    if (!r.ok()) {
        ADD_FAILURE() << "unexpected configuration errors:\n" << r.error().to_string();
        return Demo{};
    }
    return std::move(r).value();
}

/// Every error of a load that must fail (and fails the test when it does not).
inline std::vector<ConfigError> load_errors(const LoadOptions& options) {
    auto r = load_demo(options);
    if (r.ok()) {
        ADD_FAILURE() << "the load succeeded where it should have failed";
        return {};
    }
    return std::move(r).error().list;
}

}  // namespace weft::config::test
