// The loader: built-in defaults, then the TOML file (or the embedded default), then WEFT_*
// variables, then flags; every problem is collected with its key, source, value and what is
// allowed, and a Config is returned only when there is none.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "keys.hpp"
#include "parse.hpp"
#include "toml_document.hpp"
#include "weft/config/load.hpp"

extern char** environ;  // NOLINT: POSIX declares it nowhere in a header

namespace weft::config {
namespace {

using detail::Input;
using detail::KeySpec;

constexpr std::string_view kEmbeddedName = "default.toml";
constexpr std::string_view kPluginKeys[] = {"path", "config"};

struct Alias {
    std::string_view env;
    std::string_view section;
    std::string_view name;
};

// Short and gevent-style names. WEFT_MONITOR_MEMORY_MAX is also the regular name; listing it
// here keeps the gevent set in one place.
constexpr Alias kAliases[] = {
    {"WEFT_HUBS", "server", "hubs"},
    {"WEFT_BACKEND", "server", "backend"},
    {"WEFT_MONITOR_THREAD_ENABLE", "monitor", "enabled"},
    {"WEFT_MAX_BLOCKING_TIME", "monitor", "max_blocking_time"},
    {"WEFT_MONITOR_PRINT_BLOCKING_REPORTS", "monitor", "print_blocking_reports"},
    {"WEFT_MONITOR_MEMORY_MAX", "monitor", "memory_max"},
    {"WEFT_MONITOR_MEMORY_PERIOD", "monitor", "memory_period"},
    {"WEFT_TRACK_FIBER_TREE", "monitor", "track_fiber_tree"},
};

constexpr FlagSpec kFlags[] = {
    {"--listen", "server.listen", "ADDR:PORT", "HTTP listen address ([server] listen)", false},
    {"--admin", "admin.listen", "ADDR:PORT", "admin listen address ([admin] listen)", false},
    {"--hubs", "server.hubs", "N", "number of hubs, 0 for one per CPU ([server] hubs)", false},
    {"--plugin", "plugin", "PATH",
     "load this plugin (repeatable; replaces the configured plugin list)", true},
    {"--backend", "server.backend", "auto|io_uring|epoll", "I/O backend ([server] backend)", false},
    {"--log-level", "log.level", "LEVEL",
     "trace, debug, info, warn, error, critical or off ([log] level)", false},
    {"--log-format", "log.format", "text|json", "log line format ([log] format)", false},
    {"--max-blocking-time", "monitor.max_blocking_time", "SECONDS",
     "watchdog threshold, e.g. 0.1 or 100ms ([monitor] max_blocking_time)", false},
};

std::string section_title(std::string_view section) {
    return "[" + std::string(section) + "]";
}

std::vector<std::string> keys_of(std::string_view section) {
    std::vector<std::string> out;
    for (const auto& k : detail::key_specs()) {
        if (k.section == section) out.emplace_back(k.name);
    }
    return out;
}

std::string join(const std::vector<std::string>& items) {
    std::string s;
    for (const auto& i : items)
        s += (s.empty() ? "" : ", ") + i;
    return s;
}

// "unknown key; did you mean 'listen'?" or, when nothing is close, the list to choose from.
std::string unknown(std::string_view what, std::string_view word,
                    const std::vector<std::string>& candidates, std::string_view quote = "'") {
    std::string message = "unknown " + std::string(what);
    if (auto s = detail::suggest(word, candidates)) {
        message += "; did you mean " + std::string(quote) + *s + std::string(quote) + "?";
    } else {
        message += "; known: " + join(candidates);
    }
    return message;
}

class Loader {
  public:
    explicit Loader(const LoadOptions& options) : options_(options) {}

    LoadResult run() {
        if (options_.file) {
            load_file(*options_.file, Source::Kind::file);
        } else if (options_.use_embedded_default) {
            load_text(embedded_default_toml(), kEmbeddedName, Source::Kind::embedded_default);
        }
        apply_environment();
        apply_flags();
        cross_check();
        if (!errors_.empty()) return LoadResult(std::move(errors_));
        return LoadResult(std::move(config_));
    }

  private:
    void error(std::string key, Source source, std::string value, std::string message) {
        failed_.insert(key);
        errors_.push_back(
            {std::move(key), std::move(source), std::move(value), std::move(message)});
    }

    bool apply(const KeySpec& spec, const Input& in, const Source& source) {
        if (auto problem = spec.apply(config_, in, source)) {
            error(spec.display(), source, in.display(), std::move(*problem));
            return false;
        }
        return true;
    }

    // --- the file ---------------------------------------------------------------------------

    void load_file(const std::string& path, Source::Kind kind) {
        if (options_.file_text) {
            load_text(*options_.file_text, path, kind);
            return;
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            const int e = errno;
            error({}, Source{kind, path}, {},
                  "cannot read the configuration file: " + std::string(std::strerror(e)));
            return;
        }
        std::ostringstream text;
        text << in.rdbuf();
        if (in.bad()) {
            error({}, Source{kind, path}, {}, "cannot read the configuration file");
            return;
        }
        load_text(text.str(), path, kind);
    }

    void load_text(std::string_view text, std::string_view name, Source::Kind kind) {
        const std::size_t first = errors_.size();
        auto doc = detail::parse_toml(text, name, kind);
        for (auto& e : doc.errors)
            error(e.key, e.source, e.value, e.message);
        if (doc.root) apply_document(*doc.root);
        // toml++ hands keys over sorted by name; report in the order of the file's lines.
        std::stable_sort(errors_.begin() + static_cast<std::ptrdiff_t>(first), errors_.end(),
                         [&](const ConfigError& a, const ConfigError& b) {
                             return line_of(a.source, name) < line_of(b.source, name);
                         });
    }

    static std::size_t line_of(const Source& s, std::string_view name) {
        if (s.where.size() <= name.size() + 1) return 0;
        const char* p = s.where.data() + name.size() + 1;
        std::size_t line = 0;
        std::from_chars(p, s.where.data() + s.where.size(), line);
        return line;
    }

    void apply_document(const Table& root) {
        const auto sections = detail::section_names();
        std::vector<std::string> section_list;
        for (const auto section : sections)
            section_list.push_back(section_title(section));
        section_list.emplace_back("[[plugin]]");
        for (const auto& [name, value] : root) {
            if (name == "plugin") {
                apply_plugins(value);
                continue;
            }
            if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
                unknown_top_level(name, value, section_list);
                continue;
            }
            const Table* table = value.as_table();
            if (!table) {
                error(section_title(name), value.source(), value.describe(),
                      "expected a table (a [" + name + "] section)");
                continue;
            }
            for (const auto& [key, v] : *table) {
                const KeySpec* spec = detail::find_key(name, key);
                if (!spec) {
                    error(section_title(name) + " " + key, v.source(), {},
                          unknown("key", key, keys_of(name)));
                    continue;
                }
                apply(*spec, Input::from_value(v), v.source());
            }
        }
    }

    void unknown_top_level(const std::string& name, const Value& value,
                           const std::vector<std::string>& sections) {
        if (value.as_table()) {
            error(section_title(name), value.source(), {},
                  unknown("section", section_title(name), sections, ""));
            return;
        }
        // A key written above every section header: name the section it belongs to.
        for (const auto& k : detail::key_specs()) {
            if (k.name == name) {
                error(name, value.source(), {},
                      "a key outside any section; did you mean " + k.display() +
                          "? (put it after the [" + std::string(k.section) + "] line)");
                return;
            }
        }
        std::vector<std::string> everywhere;
        for (const auto& k : detail::key_specs())
            everywhere.emplace_back(k.name);
        if (auto s = detail::suggest(name, everywhere)) {
            const KeySpec* k = nullptr;
            for (const auto& spec : detail::key_specs()) {
                if (!k && spec.name == *s) k = &spec;
            }
            error(name, value.source(), {},
                  "unknown key outside any section; did you mean " + k->display() + "?");
            return;
        }
        error(name, value.source(), {},
              "unknown key outside any section; keys belong in " + join(sections));
    }

    void apply_plugins(const Value& value) {
        const auto* entries = value.as_array();
        if (!entries) {
            error("[plugin]", value.source(), {},
                  "expected an array of tables: write [[plugin]] (two brackets) for each plugin");
            return;
        }
        for (const Value& entry : *entries) {
            const Table* t = entry.as_table();
            if (!t) {
                error("[[plugin]]", entry.source(), entry.describe(),
                      "expected a table with path = \"...\" and an optional config table");
                continue;
            }
            apply_plugin(*t);
        }
    }

    void apply_plugin(const Table& t) {
        PluginConfig plugin;
        bool good = true;
        const Value* path = t.find("path");
        if (!path) {
            error("[[plugin]] path", t.source(), {},
                  "missing: each [[plugin]] needs path = a plugin file path or a bundled "
                  "plugin's name such as \"demo\"");
            good = false;
        } else if (!check_plugin_path(Input::from_value(*path), path->source())) {
            good = false;
        } else {
            plugin.path = {*path->as_string(), path->source()};
        }
        const std::string context = "plugin '" + plugin.path.value + "' config";
        if (const Value* cfg = t.find("config")) {
            if (const Table* table = cfg->as_table()) {
                plugin.config = table->with_context(context);
            } else {
                error("[[plugin]] config", cfg->source(), cfg->describe(),
                      "expected a table ([plugin.config] after [[plugin]], or config = { ... })");
                good = false;
            }
        } else {
            plugin.config = Table(context, t.source());
        }
        const std::vector<std::string> known(std::begin(kPluginKeys), std::end(kPluginKeys));
        for (const auto& [key, v] : t) {
            if (std::find(known.begin(), known.end(), key) != known.end()) continue;
            error("[[plugin]] " + key, v.source(), {}, unknown("key", key, known));
            good = false;
        }
        if (good) config_.plugins.push_back(std::move(plugin));
    }

    bool check_plugin_path(const Input& in, const Source& source) {
        std::string problem;
        if (!in.is_textual()) {
            problem = "expected a string: a plugin file path or a bundled plugin's name";
        } else if (in.text.empty()) {
            problem = "must not be empty: a plugin file path or a bundled plugin's name";
        } else if (in.text.find('\0') != std::string::npos) {
            problem = "a path must not contain a NUL character";
        }
        if (problem.empty()) return true;
        error("[[plugin]] path", source, in.display(), std::move(problem));
        return false;
    }

    // --- the environment --------------------------------------------------------------------

    struct EnvSetting {
        const KeySpec* spec;
        std::string name;
        const std::string* value;
    };

    void apply_environment() {
        const std::size_t first = errors_.size();
        apply_variables();
        // Report by variable name, whichever step found the problem.
        std::stable_sort(errors_.begin() + static_cast<std::ptrdiff_t>(first), errors_.end(),
                         [](const ConfigError& a, const ConfigError& b) {
                             return a.source.where < b.source.where;
                         });
    }

    void apply_variables() {
        std::vector<EnvSetting> found;
        for (const auto& [name, value] : options_.env) {
            if (!name.starts_with("WEFT_")) continue;
            if (const KeySpec* spec = resolve_env(name)) found.push_back({spec, name, &value});
        }
        // An alias and the regular name may both be set, but not to different values.
        std::set<const KeySpec*> done;
        for (const auto& s : found) {
            if (done.count(s.spec)) continue;
            done.insert(s.spec);
            const EnvSetting* chosen = &s;
            for (const auto& other : found) {
                if (other.spec != s.spec || &other == &s) continue;
                if (*other.value != *s.value) {
                    error(s.spec->display(), Source::environment(other.name),
                          detail::toml_quote(*other.value),
                          "conflicts with " + s.name + "=" + detail::toml_quote(*s.value) +
                              "; set only one of them");
                    chosen = nullptr;
                    break;
                }
                if (other.name == s.spec->env_name()) chosen = &other;
            }
            if (!chosen) continue;
            const Source source = Source::environment(chosen->name);
            if (!detail::valid_utf8(*chosen->value)) {
                error(s.spec->display(), source, {}, "the value is not valid UTF-8");
                continue;
            }
            apply(*s.spec, Input::from_text(*chosen->value), source);
        }
    }

    // The key a WEFT_* variable sets, nullptr when it is not ours (or unknown: then an error).
    const KeySpec* resolve_env(const std::string& name) {
        for (const auto& a : kAliases) {
            if (a.env == name) return detail::find_key(a.section, a.name);
        }
        for (const auto section : detail::section_names()) {
            const std::string prefix = "WEFT_" + detail::to_upper(section) + "_";
            if (!name.starts_with(prefix)) continue;
            const std::string key = detail::to_lower(std::string_view(name).substr(prefix.size()));
            if (const KeySpec* spec = detail::find_key(section, key)) return spec;
            // Compare only what follows the prefix, which every candidate shares.
            std::vector<std::string> tails = keys_of(section);
            for (const auto& a : kAliases) {
                if (a.env.starts_with(prefix)) {
                    tails.push_back(detail::to_lower(a.env.substr(prefix.size())));
                }
            }
            std::string message = "unknown environment variable";
            if (auto s = detail::suggest(key, tails)) {
                message += "; did you mean " + prefix + detail::to_upper(*s) + "?";
            } else {
                message += "; known:";
                for (std::size_t i = 0; i < tails.size(); ++i) {
                    message += (i ? ", " : " ") + prefix + detail::to_upper(tails[i]);
                }
            }
            error(section_title(section) + " " + key, Source::environment(name), {},
                  std::move(message));
            return nullptr;
        }
        return nullptr;  // another WEFT_* variable (WEFT_TEST_LOG, ...): not configuration
    }

    // --- flags ------------------------------------------------------------------------------

    void apply_flags() {
        std::vector<const FlagOverride*> plugin_flags;
        for (const auto& f : options_.flags) {
            const Source source = Source::flag(f.flag);
            if (f.key == "plugin" || f.key == "plugin.path") {
                plugin_flags.push_back(&f);
                continue;
            }
            const auto dot = f.key.find('.');
            const KeySpec* spec = dot == std::string::npos
                                      ? nullptr
                                      : detail::find_key(std::string_view(f.key).substr(0, dot),
                                                         std::string_view(f.key).substr(dot + 1));
            if (!spec) {
                unknown_flag_key(f.key, source);
                continue;
            }
            if (!detail::valid_utf8(f.value)) {
                error(spec->display(), source, {}, "the value is not valid UTF-8");
                continue;
            }
            apply(*spec, Input::from_text(f.value), source);
        }
        if (plugin_flags.empty()) return;
        std::vector<PluginConfig> plugins;
        for (const FlagOverride* f : plugin_flags) {
            const Source source = Source::flag(f->flag);
            if (!detail::valid_utf8(f->value)) {
                error("[[plugin]] path", source, {}, "the value is not valid UTF-8");
                continue;
            }
            if (!check_plugin_path(Input::from_text(f->value), source)) continue;
            PluginConfig p;
            p.path = {f->value, source};
            p.config = Table("plugin '" + f->value + "' config", source);
            for (const auto& configured : config_.plugins) {
                if (configured.path.value == f->value) {
                    p.config = configured.config;
                    break;
                }
            }
            plugins.push_back(std::move(p));
        }
        config_.plugins = std::move(plugins);
    }

    void unknown_flag_key(const std::string& key, const Source& source) {
        const auto dot = key.find('.');
        const auto sections = detail::section_names();
        if (dot != std::string::npos &&
            std::find(sections.begin(), sections.end(), key.substr(0, dot)) != sections.end()) {
            // A known section: compare key names only, which is where the typo is.
            const std::string section = key.substr(0, dot);
            std::vector<std::string> names = keys_of(section);
            std::string message = "unknown key";
            if (auto s = detail::suggest(key.substr(dot + 1), names)) {
                message += "; did you mean '" + section + "." + *s + "'?";
            } else {
                for (auto& n : names)
                    n = section + "." + n;
                message += "; known: " + join(names);
            }
            error(key, source, {}, std::move(message));
            return;
        }
        std::vector<std::string> candidates{"plugin"};
        for (const auto& k : detail::key_specs()) {
            candidates.push_back(std::string(k.section) + "." + std::string(k.name));
        }
        error(key, source, {}, unknown("key", key, candidates));
    }

    // --- relations between keys -------------------------------------------------------------

    void cross_check() {
        const auto& s = config_.server;
        if (!failed_.count("[server] max_uri_bytes") &&
            !failed_.count("[server] max_header_bytes") &&
            s.max_uri_bytes.value > s.max_header_bytes.value) {
            error("[server] max_uri_bytes", s.max_uri_bytes.source,
                  detail::format_size(s.max_uri_bytes.value),
                  "must not exceed [server] max_header_bytes (" +
                      detail::format_size(s.max_header_bytes.value) + ", " +
                      s.max_header_bytes.source.to_string() +
                      "): the request line counts against both");
        }
        const auto& a = config_.admin;
        if (a.enabled.value && !failed_.count("[admin] listen") &&
            !failed_.count("[server] listen") && overlap(a.listen.value, s.listen.value)) {
            error("[admin] listen", a.listen.source, detail::toml_quote(a.listen.value.to_string()),
                  "must not use the same port as [server] listen (" + s.listen.value.to_string() +
                      ", " + s.listen.source.to_string() + ")");
        }
    }

    static bool overlap(const ListenAddress& a, const ListenAddress& b) {
        if (a.port == 0 || a.port != b.port) return false;
        auto wildcard = [](const ListenAddress& x) {
            return x.family == ListenAddress::Family::any || x.host == "0.0.0.0" || x.host == "::";
        };
        return a.host == b.host || wildcard(a) || wildcard(b);
    }

    const LoadOptions& options_;
    Config config_;
    std::vector<ConfigError> errors_;
    std::set<std::string> failed_;  // keys that already have an error
};

}  // namespace

const Config& LoadResult::config() const& {
    if (!config_) throw BadConfigAccess(errors_.front());
    return *config_;
}

Config LoadResult::config() && {
    if (!config_) throw BadConfigAccess(errors_.front());
    return std::move(*config_);
}

std::string LoadResult::error_text() const {
    std::string text;
    for (const auto& e : errors_)
        text += e.to_string() + "\n";
    return text;
}

LoadResult load(const LoadOptions& options) {
    return Loader(options).run();
}

Environment environment_from_environ() {
    Environment env;
    for (char** e = environ; e && *e; ++e) {
        const std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos || !entry.starts_with("WEFT_")) continue;
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

std::span<const FlagSpec> standard_flags() noexcept {
    return kFlags;
}

std::optional<FlagOverride> parse_assignment(std::string_view text, std::string flag) {
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string key(text.substr(0, eq));
    while (!key.empty() && key.back() == ' ')
        key.pop_back();
    while (!key.empty() && key.front() == ' ')
        key.erase(key.begin());
    FlagOverride f;
    f.flag = flag + " " + key;
    f.key = std::move(key);
    f.value = std::string(text.substr(eq + 1));
    return f;
}

}  // namespace weft::config
