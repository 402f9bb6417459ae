// Loading a configuration into the options a Schema binds: the members' own defaults, then a
// TOML file (or a default text such as the server's embedded default.toml), then WEFT_*
// environment variables, then command-line flags, each overriding the one before. Every problem
// is collected with its key, source, value and what is allowed; a load that found any returns
// them all and no configuration.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/config/error.hpp"
#include "weft/config/schema.hpp"
#include "weft/config/table.hpp"

namespace weft::config {

/// Environment variables by name. The loader looks only at names starting with "WEFT_".
using Environment = std::map<std::string, std::string, std::less<>>;

/// The variables of this process (from `environ`): the loader reads the WEFT_* ones and the
/// keys' aliases (Key::env_aliases).
Environment environment_from_environ();

/// One value given on the command line. `key` is "section.key" ("server.listen"); "plugin"
/// (or "plugin.path") adds a plugin. `flag` names the flag in messages ("--listen").
struct FlagOverride {
    std::string key;
    std::string value;
    std::string flag;
};

/// Parses a generic "section.key=value" assignment (a `--set` flag) into a FlagOverride whose
/// messages name `flag`. Returns nullopt when there is no '='.
std::optional<FlagOverride> parse_assignment(std::string_view text, std::string flag = "--set");

/// One [[plugin]] entry: what to load and the table handed to it unchanged.
struct PluginConfig {
    std::string path;  ///< a file path or a bundled plugin's name ("demo")
    Source source;     ///< where the path was given
    Table config;      ///< its `config` sub-table; messages say "plugin 'PATH' config"
    /// `stall_budget`: how long this plugin's handlers may block their hubs within the stall
    /// window before its routes are quarantined; unset: the server's default. 0: never.
    std::optional<Duration> stall_budget;
    Source stall_budget_source;  ///< where stall_budget was given, when it was
};

/// Where each key's value came from.
class Provenance {
  public:
    /// The source of "section.name"; the built-in default when no source set it.
    const Source& of(std::string_view dotted) const;
    void set(std::string dotted, Source source);

  private:
    std::map<std::string, Source, std::less<>> by_key_;
};

struct LoadOptions {
    /// A TOML file to read; its path appears in messages as given ("weft.toml:12").
    std::optional<std::string> file;
    /// The file's contents, when already in memory (tests); then `file` is only its name.
    std::optional<std::string> file_text;
    /// Without a file: read this text instead (the program's embedded default), named
    /// `default_name` in sources ("embedded default.toml:12"). Empty: the members' defaults only.
    std::string_view default_text;
    std::string default_name = "default.toml";
    Environment env;
    /// Applied in order; a later flag for the same key wins. Any "plugin" flag replaces the
    /// file's plugin list with the flags' plugins, in order; a plugin also listed in the file
    /// (same path) keeps that entry's config table.
    std::vector<FlagOverride> flags;
};

/// What a load found besides the values it wrote into the root.
struct Loaded {
    Provenance sources;
    std::vector<PluginConfig> plugins;
    /// Things that work but should change (a key under its former name), one line each.
    std::vector<std::string> warnings;
};

/// Loads into `root` (which holds the defaults on entry) and validates. Reads the file named
/// by options.file (unless file_text is set); touches nothing else in the process. On an
/// error, `root` is partly written: discard it.
Result<Loaded, ConfigErrors> load(const SchemaBase& schema, void* root, const LoadOptions& options);
template <class Root>
Result<Loaded, ConfigErrors> load(const Schema<Root>& schema, Root& root,
                                  const LoadOptions& options) {
    return load(static_cast<const SchemaBase&>(schema), static_cast<void*>(&root), options);
}

}  // namespace weft::config
