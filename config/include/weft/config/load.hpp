// Loading the configuration: the built-in defaults, then a TOML file (or the embedded default),
// then WEFT_* environment variables, then command-line flags, each overriding the one before.
// The result is a complete, validated Config or every error found; never a half-built Config.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/config/config.hpp"
#include "weft/config/error.hpp"

namespace weft::config {

/// Environment variables by name. The loader looks only at names starting with "WEFT_".
using Environment = std::map<std::string, std::string, std::less<>>;

/// The WEFT_* variables of this process (from `environ`).
Environment environment_from_environ();

/// One value given on the command line. `key` is "section.key" ("server.listen"); "plugin"
/// (or "plugin.path") adds a plugin. `flag` names the flag in messages ("--listen").
struct FlagOverride {
    std::string key;
    std::string value;
    std::string flag;
};

/// A command-line flag the server offers, mapped to its key; for registering with CLI11:
///
///     std::map<std::string, std::vector<std::string>> given;
///     for (const auto& f : weft::config::standard_flags())
///         app.add_option(std::string(f.flag), given[std::string(f.key)], std::string(f.help))
///             ->type_name(std::string(f.value_name));
///     ... after parsing:
///     for (const auto& f : weft::config::standard_flags())
///         for (auto& v : given[std::string(f.key)])
///             options.flags.push_back({std::string(f.key), v, std::string(f.flag)});
struct FlagSpec {
    std::string_view flag;        ///< "--listen"
    std::string_view key;         ///< "server.listen"
    std::string_view value_name;  ///< "ADDR:PORT"
    std::string_view help;
    bool repeatable;  ///< only --plugin
};

/// --listen, --admin, --hubs, --plugin, --backend, --log-level, --log-format,
/// --max-blocking-time. (--config, --print-config and --check-config are the server's.)
std::span<const FlagSpec> standard_flags() noexcept;

/// Parses a generic "section.key=value" assignment (a `--set` flag) into a FlagOverride whose
/// messages name `flag`. Returns nullopt when there is no '='.
std::optional<FlagOverride> parse_assignment(std::string_view text, std::string flag = "--set");

struct LoadOptions {
    /// A TOML file to read; its path appears in messages as given ("weft.toml:12").
    std::optional<std::string> file;
    /// The file's contents, when already in memory (tests); then `file` is only its name.
    std::optional<std::string> file_text;
    /// Without a file: start from the embedded default.toml (the demo plugin, admin on, the
    /// watchdog on). Otherwise only the built-in defaults (and no plugins).
    bool use_embedded_default = true;
    Environment env;
    /// Applied in order; a later flag for the same key wins. Any "plugin" flag replaces the
    /// file's plugin list with the flags' plugins, in order; a plugin also listed in the file
    /// (same path) keeps that entry's config table.
    std::vector<FlagOverride> flags;
};

/// Either a Config or a non-empty list of errors.
class LoadResult {
  public:
    explicit LoadResult(Config config) : config_(std::move(config)) {}
    explicit LoadResult(std::vector<ConfigError> errors) : errors_(std::move(errors)) {}

    bool ok() const noexcept { return config_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }

    /// Precondition: ok(); otherwise throws BadConfigAccess with the first error.
    const Config& config() const&;
    /// By value, so that `auto c = load(o).config();` never refers into a dead LoadResult.
    Config config() &&;

    /// Empty when ok().
    const std::vector<ConfigError>& errors() const noexcept { return errors_; }
    /// Every error's to_string(), one per line.
    std::string error_text() const;

  private:
    std::optional<Config> config_;
    std::vector<ConfigError> errors_;
};

/// Loads, merges and validates. Reads the file named by options.file (unless file_text is set);
/// touches nothing else in the process (the environment comes from options.env).
LoadResult load(const LoadOptions& options);

/// The embedded default configuration (config/default.toml, compiled in), NUL-terminated.
const char* embedded_default_toml() noexcept;

}  // namespace weft::config
