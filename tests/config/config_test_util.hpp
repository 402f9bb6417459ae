// Helpers shared by the config tests: load a TOML text as if it were the file "weft.toml",
// and find lines and values in loader output.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "weft/config/load.hpp"

namespace weft::config::test {

/// Options that read `text` as the file "weft.toml" (no embedded default, no environment).
inline LoadOptions file_options(std::string text) {
    LoadOptions o;
    o.file = "weft.toml";
    o.file_text = std::move(text);
    return o;
}

/// Options with neither file nor embedded default: only the built-in defaults.
inline LoadOptions bare_options() {
    LoadOptions o;
    o.use_embedded_default = false;
    return o;
}

/// Loads and fails the test (with every error) unless the result is ok.
inline Config load_ok(const LoadOptions& options) {
    LoadResult r = load(options);
    if (!r.ok()) {
        ADD_FAILURE() << "unexpected configuration errors:\n" << r.error_text();
        return Config{};
    }
    return r.config();
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

}  // namespace weft::config::test
