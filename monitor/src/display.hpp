// Small text helpers shared by the report renderers.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>

namespace weft::monitor::detail {

/// Whether `s` starts with one of `prefixes` (a module name against a list of libraries).
inline bool starts_with_any(std::string_view s, std::span<const std::string_view> prefixes) {
    for (auto p : prefixes)
        if (s.starts_with(p)) return true;
    return false;
}

/// A source path as reports show it: relative to the Weft source tree when inside it, and
/// without the leading "../" of a path relative to a build folder.
std::string display_path(std::string_view path);
/// `s` cut to at most `max` characters, with "..." in the middle when cut.
std::string shorten(std::string_view s, std::size_t max = 120);
/// "2026-11-27T23:37:20.957Z": UTC with milliseconds, as reports show times.
std::string utc(std::chrono::system_clock::time_point tp);

}  // namespace weft::monitor::detail
