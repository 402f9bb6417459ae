// Where a configuration value came from: a line of a file, an environment variable, a flag, or
// the built-in default. Every message and `weft --print-config` name sources the same way,
// through Source::to_string().
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace weft::config {

/// The origin of one configuration value.
struct Source {
    enum class Kind : std::uint8_t {
        built_in,          ///< the default of the member the key sets; `where` is empty
        embedded_default,  ///< an embedded default file; `where` is "default.toml:LINE"
        file,              ///< a configuration file; `where` is "PATH:LINE" (or "PATH[:LINE:COL]")
        environment,       ///< an environment variable; `where` is its name
        flag,              ///< a command-line flag; `where` is the flag as typed ("--listen")
    };

    Kind kind = Kind::built_in;
    std::string where;

    static Source built_in_default() { return {}; }
    static Source environment(std::string name) { return {Kind::environment, std::move(name)}; }
    static Source flag(std::string name) { return {Kind::flag, std::move(name)}; }

    /// "built-in default", "embedded default.toml:12", "weft.toml:12",
    /// "environment WEFT_SERVER_LISTEN" or "flag --listen".
    std::string to_string() const;

    bool operator==(const Source&) const = default;
};

}  // namespace weft::config
