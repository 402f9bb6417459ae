// Where a configuration value came from (a line of a file, an environment variable, a flag, or
// the built-in default), and Setting<T>, a typed value that remembers it. Every message and
// `weft --print-config` name sources the same way, through Source::to_string().
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace weft::config {

/// The origin of one configuration value.
struct Source {
    enum class Kind : std::uint8_t {
        built_in,          ///< the default compiled into Weft; `where` is empty
        embedded_default,  ///< the embedded default.toml; `where` is "default.toml:LINE"
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

/// A typed configuration value and the source that set it (the last one in precedence order:
/// flag > environment > file > built-in default).
template <class T>
struct Setting {
    T value{};
    Source source{};
};

}  // namespace weft::config
