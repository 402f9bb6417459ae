// Helpers shared by the tests of the server's configuration keys: load a TOML text as if it were
// the file "weft.toml" into the server's Settings, and find lines and values in loader output.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "settings.hpp"
#include "weft/config/load.hpp"
#include "weft/config/render.hpp"

namespace weft::server::test {

/// What a load gave: the settings it wrote and where each value came from.
struct LoadedSettings {
    Settings values;
    config::Loaded loaded;

    /// Where "section.key" was set.
    const config::Source& source(std::string_view dotted) const {
        return loaded.sources.of(dotted);
    }
    const std::vector<config::PluginConfig>& plugins() const { return loaded.plugins; }
    /// weft --print-config's text, and /debug/config's JSON.
    std::string render() const {
        return config::render_effective(settings_schema(), values, loaded);
    }
    std::string json(bool with_sources = true) const {
        return config::to_json(settings_schema(), values, loaded, with_sources);
    }
};

/// Loads as the server does, into default Settings.
inline Result<LoadedSettings, config::ConfigErrors> load(const config::LoadOptions& options) {
    LoadedSettings out;
    auto r = config::load(settings_schema(), out.values, options);
    if (!r) return std::move(r).error();
    out.loaded = std::move(r).value();
    return out;
}

/// Options that read `text` as the file "weft.toml" (no embedded default, no environment).
inline config::LoadOptions file_options(std::string text) {
    config::LoadOptions o;
    o.file = "weft.toml";
    o.file_text = std::move(text);
    return o;
}

/// Options with neither file nor embedded default: only the members' defaults.
inline config::LoadOptions bare_options() {
    return config::LoadOptions{};
}

/// Options as `weft` without --config: the embedded default.toml.
inline config::LoadOptions embedded_options() {
    config::LoadOptions o;
    o.default_text = embedded_default_toml();
    return o;
}

/// Options with only these environment variables (no file, no embedded default).
inline config::LoadOptions env_options(config::Environment env) {
    config::LoadOptions o;
    o.env = std::move(env);
    return o;
}

/// Options with only this one flag (no file, no embedded default).
inline config::LoadOptions flag_options(std::string key, std::string value, std::string flag) {
    config::LoadOptions o;
    o.flags = {{std::move(key), std::move(value), std::move(flag)}};
    return o;
}

/// Options with only `--set ASSIGNMENT` ("server.max_headers=50"), parsed as main.cpp does.
inline config::LoadOptions set_options(std::string_view assignment) {
    config::LoadOptions o;
    if (auto f = config::parse_assignment(assignment)) {
        o.flags = {std::move(*f)};
    } else {
        ADD_FAILURE() << "not an assignment: " << assignment;
    }
    return o;
}

/// Loads and fails the test (with every error) unless the result is ok.
inline LoadedSettings load_ok(const config::LoadOptions& options) {
    auto r = load(options);
    if (!r.ok()) {
        ADD_FAILURE() << "unexpected configuration errors:\n" << r.error().to_string();
        return LoadedSettings{};
    }
    return std::move(r).value();
}

/// Loads and fails the test unless the load failed; returns every error (none on success).
inline std::vector<config::ConfigError> load_errors(const config::LoadOptions& options) {
    auto r = load(options);
    if (r.ok()) {
        ADD_FAILURE() << "the load succeeded where it should have failed";
        return {};
    }
    return std::move(r).error().list;
}

/// The warnings of a load, one per line (for messages).
inline std::string warnings_text(const LoadedSettings& s) {
    std::string text;
    for (const auto& w : s.loaded.warnings)
        text += w + "\n";
    return text;
}

/// 1-based number of the first line of `text` that contains `needle`; 0 if none.
inline int line_containing(std::string_view text, std::string_view needle) {
    int line = 1;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto end = text.find('\n', start);
        const auto l = text.substr(start, end == std::string_view::npos ? text.npos : end - start);
        if (l.find(needle) != std::string_view::npos) return line;
        if (end == std::string_view::npos) break;
        start = end + 1;
        ++line;
    }
    return 0;
}

}  // namespace weft::server::test
