// The key registry: every [section] key of the server's configuration, how it parses, and how it
// prints as TOML and JSON. The loader, the environment mapping and the renderers all walk it,
// so a key added here is loadable, settable by WEFT_SECTION_KEY, and printed everywhere.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "parse.hpp"
#include "weft/config/config.hpp"

namespace weft::config::detail {

struct KeySpec {
    std::string_view section;  // "server"
    std::string_view name;     // "listen"
    /// Parses `in` into the setting and records `source`; on failure returns the problem and
    /// leaves the setting alone.
    std::function<std::optional<std::string>(Config&, const Input&, const Source&)> apply;
    std::function<const Source&(const Config&)> source;
    std::function<std::string(const Config&)> toml;  // the value as a TOML literal
    std::function<std::string(const Config&)> json;  // the value as a JSON literal

    /// "[server] listen"
    std::string display() const;
    /// "WEFT_SERVER_LISTEN"
    std::string env_name() const;
};

/// Every key, grouped by section in the order of section_names().
std::span<const KeySpec> key_specs();
/// "server", "admin", "monitor", "log".
std::span<const std::string_view> section_names();
const KeySpec* find_key(std::string_view section, std::string_view name);

}  // namespace weft::config::detail
