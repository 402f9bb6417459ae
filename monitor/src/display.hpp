// Small text helpers shared by the report renderers.
#pragma once

#include <string>
#include <string_view>

namespace weft::monitor::detail {

/// A source path as reports show it: relative to the Weft source tree when inside it.
std::string display_path(std::string_view path);
/// `s` cut to at most `max` characters, with "..." in the middle when cut.
std::string shorten(std::string_view s, std::size_t max = 120);

}  // namespace weft::monitor::detail
