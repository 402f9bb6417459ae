// The loader: the members' defaults, then the TOML file (or the default text), then WEFT_*
// variables, then flags; every problem is collected with its key, source, value and what is
// allowed, and the load succeeds only when there is none. It knows no key: it walks a Schema.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "toml_document.hpp"
#include "weft/config/load.hpp"

extern char** environ;  // NOLINT: POSIX declares it nowhere in a header

namespace weft::config {
namespace {

constexpr std::string_view kPluginKeys[] = {"path", "config", "stall_budget"};

std::string section_title(std::string_view section) {
    return "[" + std::string(section) + "]";
}

std::vector<std::string> keys_of(const SchemaBase& schema, std::string_view section) {
    std::vector<std::string> out;
    for (const auto& k : schema.keys()) {
        if (k.section == section) out.emplace_back(k.name);
    }
    return out;
}

// Whether `name`=`value` has the shape of the variables Kubernetes gives a pod for each Service
// of its namespace: NAME_SERVICE_HOST, NAME_SERVICE_PORT, NAME_SERVICE_PORT_<PORT NAME>,
// NAME_PORT=tcp://IP:PORT (or udp://, sctp://), and NAME_PORT_<NUMBER>_<TCP|UDP|SCTP>, alone or
// followed by _PROTO, _PORT or _ADDR. (A bare NAME_PORT=80 is someone's setting, not a link.)
bool kubernetes_service_link(std::string_view name, std::string_view value) {
    if (name.ends_with("_SERVICE_HOST") || name.ends_with("_SERVICE_PORT") ||
        name.find("_SERVICE_PORT_") != std::string_view::npos)
        return true;
    for (auto at = name.find("_PORT_"); at != std::string_view::npos;
         at = name.find("_PORT_", at + 1)) {
        std::string_view rest = name.substr(at + 6);
        std::size_t digits = 0;
        while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9')
            ++digits;
        if (digits == 0 || digits >= rest.size() || rest[digits] != '_') continue;
        rest.remove_prefix(digits + 1);
        for (std::string_view proto : {"TCP", "UDP", "SCTP"}) {
            if (!rest.starts_with(proto)) continue;
            const std::string_view tail = rest.substr(proto.size());
            if (tail.empty() || tail == "_PROTO" || tail == "_PORT" || tail == "_ADDR") return true;
        }
    }
    return name.ends_with("_PORT") && (value.starts_with("tcp://") || value.starts_with("udp://") ||
                                       value.starts_with("sctp://"));
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
    if (auto s = suggest(word, candidates)) {
        message += "; did you mean " + std::string(quote) + *s + std::string(quote) + "?";
    } else {
        message += "; known: " + join(candidates);
    }
    return message;
}

class Loader final : private CheckContext {
  public:
    Loader(const SchemaBase& schema, void* root, const LoadOptions& options)
        : schema_(schema), root_(root), options_(options) {}

    Result<Loaded, ConfigErrors> run() {
        // Variables of a wider convention (HTTP_PROXY) are the machine's defaults, not settings
        // made for weft: the file, WEFT_* variables and flags all override them.
        apply_environment(true);
        if (options_.file) {
            load_file(*options_.file, Source::Kind::file);
        } else if (!options_.default_text.empty()) {
            load_text(options_.default_text, options_.default_name, Source::Kind::embedded_default);
        }
        apply_environment(false);
        apply_flags();
        for (auto& [dotted, e] : ambient_errors_) {
            // A key weft's own configuration got wrong already has its error: that one says it.
            if (failed_.count(e.key) || failed_.count(dotted)) continue;
            failed_.insert(dotted);
            errors_.push_back(std::move(e));
        }
        schema_.run_checks(root_, *this);
        if (!errors_.empty()) return ConfigErrors{std::move(errors_)};
        return std::move(loaded_);
    }

  private:
    // CheckContext
    bool failed(std::string_view dotted) const override {
        return failed_.count(std::string(dotted)) > 0;
    }
    const Source& source(std::string_view dotted) const override {
        return loaded_.sources.of(dotted);
    }
    void error(std::string_view dotted, std::string value, std::string message) override {
        const auto dot = dotted.find('.');
        const Key* k = dot == std::string_view::npos
                           ? nullptr
                           : schema_.find(dotted.substr(0, dot), dotted.substr(dot + 1));
        error(k ? k->display() : std::string(dotted), loaded_.sources.of(dotted), std::move(value),
              std::move(message));
    }

    void error(std::string key, Source source, std::string value, std::string message) {
        failed_.insert(key);
        errors_.push_back(
            {std::move(key), std::move(source), std::move(value), std::move(message)});
    }

    bool apply(const Key& key, const Input& in, const Source& source) {
        // Anything weft's own configuration says of a key replaces what the machine's
        // variable (HTTP_PROXY) said, its error included.
        ambient_errors_.erase(key.dotted());
        if (auto problem = key.apply(root_, in)) {
            failed_.insert(key.dotted());
            error(key.display(), source, key.shown ? key.shown(in) : in.display(),
                  std::move(*problem));
            return false;
        }
        loaded_.sources.set(key.dotted(), source);
        return true;
    }

    // A key under its former name: it still works, and the warning says the new one.
    void moved(const Key& key, std::string_view old_name, const Source& source) {
        loaded_.warnings.push_back(std::string(old_name) + " (" + source.to_string() + ") is now " +
                                   key.dotted() + "; please rename it");
    }

    // --- the file ---------------------------------------------------------------------------

    void load_file(const std::string& path, Source::Kind kind) {
        if (options_.file_text) {
            load_text(*options_.file_text, path, kind);
            return;
        }
        // A directory opens as a stream that reads nothing: it would pass for an empty file.
        std::error_code ec;
        if (std::filesystem::is_directory(path, ec)) {
            error({}, Source{kind, path}, {},
                  "cannot read the configuration file: " + std::string(std::strerror(EISDIR)));
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

    bool known_section(std::string_view name) const {
        for (const auto& k : schema_.keys()) {
            if (k.section == name) return true;
        }
        for (const auto& k : schema_.keys()) {
            for (const auto& old : k.old_names) {
                if (old.substr(0, old.find('.')) == name) return true;
            }
        }
        return false;
    }

    void apply_document(const Table& root) {
        std::vector<std::string> section_list;
        for (const auto& section : schema_.sections())
            section_list.push_back(section_title(section));
        section_list.emplace_back("[[plugin]]");
        // A key set under its name and a former one to different values: which would win is
        // the order of the sections, so neither does (as with an environment alias).
        struct SetAs {
            std::string name;
            Source source;
            std::string value;
        };
        std::map<const Key*, SetAs> set_as;
        enum class Seen { first, same, conflict };
        auto once = [&](const Key& k, const std::string& as, const Value& v) {
            const std::string shown = k.shown ? k.shown(Input::from_value(v)) : v.describe();
            auto [it, fresh] = set_as.try_emplace(&k, SetAs{as, v.source(), shown});
            if (fresh) return Seen::first;
            if (it->second.value == shown) return Seen::same;
            error(as, v.source(), shown,
                  "conflicts with " + it->second.name + " = " + it->second.value + " (" +
                      it->second.source.to_string() + "); set only one of them");
            return Seen::conflict;
        };
        for (const auto& [name, value] : root) {
            if (name == "plugin") {
                apply_plugins(value);
                continue;
            }
            if (!known_section(name)) {
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
                const Key* spec = schema_.find(name, key);
                if (!spec) {
                    const std::string dotted = name + "." + key;
                    if (const Key* now = schema_.find_old(dotted)) {
                        const std::string as = section_title(name) + " " + key;
                        const Seen seen = once(*now, as, v);
                        if (seen == Seen::same ||
                            (seen == Seen::first && apply(*now, Input::from_value(v), v.source())))
                            moved(*now, as, v.source());  // a former name: say so
                        continue;
                    }
                    error(section_title(name) + " " + key, v.source(), {},
                          unknown("key", key, keys_of(schema_, name)));
                    continue;
                }
                if (once(*spec, spec->display(), v) == Seen::first)
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
        if (const auto* items = value.as_array();
            items && !items->empty() && items->front().as_table()) {
            // [[plugins]] for [[plugin]]: an array of tables, not a key.
            error("[[" + name + "]]", value.source(), {},
                  "unknown array of tables; the only one is [[plugin]]");
            return;
        }
        // A key written above every section header: name the section it belongs to.
        for (const auto& k : schema_.keys()) {
            if (k.name == name) {
                error(name, value.source(), {},
                      "a key outside any section; did you mean " + k.display() +
                          "? (put it after the [" + k.section + "] line)");
                return;
            }
        }
        std::vector<std::string> everywhere;
        for (const auto& k : schema_.keys())
            everywhere.emplace_back(k.name);
        if (auto s = suggest(name, everywhere)) {
            const Key* k = nullptr;
            for (const auto& spec : schema_.keys()) {
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
            plugin.path = *path->as_string();
            plugin.source = path->source();
        }
        const std::string context = "plugin '" + plugin.path + "' config";
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
        if (const Value* budget = t.find("stall_budget")) {
            // The same grammar and limits as [stall] budget, the server-wide default.
            auto d = parse_duration(Input::from_value(*budget), Duration::zero(),
                                    std::chrono::hours(24));
            if (d) {
                plugin.stall_budget = *d;
                plugin.stall_budget_source = budget->source();
            } else {
                error("[[plugin]] stall_budget", budget->source(), budget->describe(),
                      d.error().message);
                good = false;
            }
        }
        const std::vector<std::string> known(std::begin(kPluginKeys), std::end(kPluginKeys));
        for (const auto& [key, v] : t) {
            if (std::find(known.begin(), known.end(), key) != known.end()) continue;
            error("[[plugin]] " + key, v.source(), {}, unknown("key", key, known));
            good = false;
        }
        if (good) loaded_.plugins.push_back(std::move(plugin));
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
        const Key* key;
        std::string name;
        const std::string* value;
        bool former = false;  // a variable of the key's former name
    };

    // `ambient`: the keys' aliases outside WEFT_*; otherwise the WEFT_* variables.
    void apply_environment(bool ambient) {
        if (ambient) {
            apply_ambient();
            return;
        }
        const std::size_t first = errors_.size();
        apply_variables();
        // Report by variable name, whichever step found the problem.
        std::stable_sort(errors_.begin() + static_cast<std::ptrdiff_t>(first), errors_.end(),
                         [](const ConfigError& a, const ConfigError& b) {
                             return a.source.where < b.source.where;
                         });
    }

    // Variables of a wider convention that keys take too (HTTP_PROXY, http_proxy): empty is
    // unset there, as the programs that share them read them; the first set in the key's
    // order wins, as Go reads HTTP_PROXY before http_proxy. A value the key cannot take is
    // held back: it becomes an error only if weft's own configuration does not set the key.
    void apply_ambient() {
        for (const auto& k : schema_.keys()) {
            const std::string* chosen = nullptr;
            std::string chosen_name;
            for (const auto& alias : k.env_aliases) {
                if (alias.starts_with("WEFT_")) continue;
                const auto it = options_.env.find(alias);
                if (it == options_.env.end() || it->second.empty()) continue;
                if (!chosen) {
                    chosen = &it->second;
                    chosen_name = alias;
                } else if (it->second != *chosen) {
                    loaded_.warnings.push_back(Source::environment(alias).to_string() +
                                               " differs from " + chosen_name + ", which " +
                                               k.display() + " takes; unset one of them");
                }
            }
            if (!chosen) continue;
            const Source source = Source::environment(chosen_name);
            const Input in = Input::from_text(*chosen);
            if (!valid_utf8(*chosen)) {
                ambient_errors_[k.dotted()] = {
                    k.display(), source, {}, "the value is not valid UTF-8"};
                continue;
            }
            if (auto problem = k.apply(root_, in)) {
                ambient_errors_[k.dotted()] = {
                    k.display(), source, k.shown ? k.shown(in) : in.display(), std::move(*problem)};
                continue;
            }
            loaded_.sources.set(k.dotted(), source);
        }
    }

    void apply_variables() {
        std::vector<EnvSetting> found;
        for (const auto& [name, value] : options_.env) {
            if (!name.starts_with("WEFT_")) continue;
            bool former = false;
            if (const Key* key = resolve_env(name, value, former))
                found.push_back({key, name, &value, former});
        }
        if (!service_links_.empty()) {
            std::string names;
            for (const auto& n : service_links_)
                names += (names.empty() ? "" : ", ") + n;
            loaded_.warnings.push_back(
                "environment " + names + (service_links_.size() == 1 ? " is" : " are") +
                " not configuration and ignored: Kubernetes names a Service's variables so "
                "(<SERVICE>_SERVICE_HOST, <SERVICE>_PORT...); a pod spec with "
                "enableServiceLinks: false has none");
        }
        // An alias and the regular name may both be set, but not to different values.
        std::set<const Key*> done;
        for (const auto& s : found) {
            if (done.count(s.key)) continue;
            done.insert(s.key);
            const EnvSetting* chosen = &s;
            for (const auto& other : found) {
                if (other.key != s.key || &other == &s) continue;
                if (*other.value != *s.value) {
                    auto shown = [&](const std::string& v) {
                        return s.key->shown ? s.key->shown(Input::from_text(v)) : toml_quote(v);
                    };
                    error(s.key->display(), Source::environment(other.name), shown(*other.value),
                          "conflicts with " + s.name + "=" + shown(*s.value) +
                              "; set only one of them");
                    chosen = nullptr;
                    break;
                }
                if (other.name == s.key->env_name()) chosen = &other;
            }
            if (!chosen) continue;
            const Source source = Source::environment(chosen->name);
            if (!valid_utf8(*chosen->value)) {
                error(s.key->display(), source, {}, "the value is not valid UTF-8");
                continue;
            }
            if (apply(*s.key, Input::from_text(*chosen->value), source) && chosen->former)
                moved(*s.key, chosen->name, source);
        }
    }

    // The key a WEFT_* variable sets, nullptr when it is not ours (or unknown: then an error).
    const Key* resolve_env(const std::string& name, const std::string& value, bool& former) {
        for (const auto& k : schema_.keys()) {
            if (k.env_name() == name) return &k;
            for (const auto& alias : k.env_aliases) {
                if (alias == name) return &k;
            }
        }
        for (const auto& k : schema_.keys()) {
            for (const auto& old : k.old_names) {
                if ("WEFT_" + to_upper(old.substr(0, old.find('.'))) + "_" +
                        to_upper(old.substr(old.find('.') + 1)) ==
                    name) {
                    former = true;
                    return &k;
                }
            }
        }
        for (const auto& section : schema_.sections()) {
            const std::string prefix = "WEFT_" + to_upper(section) + "_";
            if (!name.starts_with(prefix)) continue;
            // A Service named like a section (weft-admin) gives every pod WEFT_ADMIN_PORT,
            // WEFT_ADMIN_SERVICE_HOST...: not ours, and no reason to refuse to start.
            if (kubernetes_service_link(name, value)) {
                service_links_.push_back(name);
                return nullptr;
            }
            const std::string key = to_lower(std::string_view(name).substr(prefix.size()));
            // Compare only what follows the prefix, which every candidate shares.
            std::vector<std::string> tails = keys_of(schema_, section);
            for (const auto& k : schema_.keys()) {
                for (const auto& alias : k.env_aliases) {
                    if (alias.starts_with(prefix))
                        tails.push_back(to_lower(std::string_view(alias).substr(prefix.size())));
                }
            }
            std::string message = "unknown environment variable";
            if (auto s = suggest(key, tails)) {
                message += "; did you mean " + prefix + to_upper(*s) + "?";
            } else {
                message += "; known:";
                for (std::size_t i = 0; i < tails.size(); ++i) {
                    message += (i ? ", " : " ") + prefix + to_upper(tails[i]);
                }
            }
            error(section_title(section) + " " + key, Source::environment(name), {},
                  std::move(message));
            return nullptr;
        }
        // Another WEFT_* variable (WEFT_TEST_LOG, a Kubernetes service's WEFT_SERVICE_HOST...):
        // not configuration. One a letter or two away from a variable of ours is a typo in
        // its section (WEFT_ADMN_DEBUG_ENDPOINTS) that would otherwise pass unseen: a warning,
        // not an error, since such a name may well be someone else's.
        // A key's name without its section (WEFT_LISTEN for WEFT_SERVER_LISTEN), or a section's
        // name alone (WEFT_ADMIN), is a likely guess too, however far in letters.
        const std::string tail = to_lower(std::string_view(name).substr(5));
        std::string same;
        for (const auto& k : schema_.keys()) {
            if (k.name == tail) same += (same.empty() ? "" : " or ") + k.env_name();
        }
        if (same.empty()) {
            for (const auto& section : schema_.sections()) {
                if (section == tail) same = "one of WEFT_" + to_upper(section) + "_*";
            }
        }
        if (!same.empty()) {
            loaded_.warnings.push_back(Source::environment(name).to_string() +
                                       " is not a configuration variable and is ignored; did "
                                       "you mean " +
                                       same + "?");
            return nullptr;
        }
        constexpr std::size_t kTypo = 2;
        std::size_t best = kTypo + 1;
        std::string near;
        auto consider = [&](const std::string& known) {
            const std::size_t d = edit_distance(name, known);
            if (d < best) {
                best = d;
                near = known;
            }
        };
        for (const auto& k : schema_.keys()) {
            consider(k.env_name());
            for (const auto& alias : k.env_aliases)
                consider(alias);
        }
        if (!near.empty())
            loaded_.warnings.push_back(Source::environment(name).to_string() +
                                       " is not a configuration variable and is ignored; did "
                                       "you mean " +
                                       near + "?");
        return nullptr;
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
            const Key* key = dot == std::string::npos
                                 ? nullptr
                                 : schema_.find(std::string_view(f.key).substr(0, dot),
                                                std::string_view(f.key).substr(dot + 1));
            bool former = false;
            if (!key && (key = schema_.find_old(f.key))) former = true;
            if (!key) {
                unknown_flag_key(f.key, source);
                continue;
            }
            if (!valid_utf8(f.value)) {
                error(key->display(), source, {}, "the value is not valid UTF-8");
                continue;
            }
            if (apply(*key, Input::from_text(f.value), source) && former)
                moved(*key, f.key, source);
        }
        if (plugin_flags.empty()) return;
        std::vector<PluginConfig> plugins;
        for (const FlagOverride* f : plugin_flags) {
            const Source source = Source::flag(f->flag);
            if (!valid_utf8(f->value)) {
                error("[[plugin]] path", source, {}, "the value is not valid UTF-8");
                continue;
            }
            if (!check_plugin_path(Input::from_text(f->value), source)) continue;
            PluginConfig p;
            p.path = f->value;
            p.source = source;
            p.config = Table("plugin '" + f->value + "' config", source);
            for (auto& configured : loaded_.plugins) {
                if (same_plugin(configured.path, f->value)) {
                    p.config = configured.config;
                    p.stall_budget = configured.stall_budget;
                    p.stall_budget_source = configured.stall_budget_source;
                    configured.path.clear();  // matched: no warning below
                    break;
                }
            }
            plugins.push_back(std::move(p));
        }
        // A configured entry with settings of its own that no flag named: its table would
        // otherwise vanish without a word (a path spelled otherwise, a plugin left out).
        for (const auto& configured : loaded_.plugins) {
            if (configured.path.empty() ||
                (configured.config.empty() && !configured.stall_budget) ||
                configured.source.kind == Source::Kind::embedded_default)
                continue;
            loaded_.warnings.push_back(
                configured.source.to_string() + ": [[plugin]] '" + configured.path +
                "' is not loaded, nor its " +
                (configured.config.empty() ? "stall_budget" : "[plugin.config] table") +
                ": --plugin replaces the configured plugins (name that file to keep them)");
        }
        loaded_.plugins = std::move(plugins);
    }

    // Whether two plugin paths name one plugin: the same text (a bundled plugin's name), or
    // the same file however spelled ("./build/x.so", "build/x.so", an absolute path).
    static bool same_plugin(const std::string& a, const std::string& b) {
        if (a == b) return true;
        std::error_code ec;
        return std::filesystem::equivalent(a, b, ec) && !ec;
    }

    void unknown_flag_key(const std::string& key, const Source& source) {
        const auto dot = key.find('.');
        const auto sections = schema_.sections();
        if (dot != std::string::npos &&
            std::find(sections.begin(), sections.end(), key.substr(0, dot)) != sections.end()) {
            // A known section: compare key names only, which is where the typo is.
            const std::string section = key.substr(0, dot);
            std::vector<std::string> names = keys_of(schema_, section);
            std::string message = "unknown key";
            if (auto s = suggest(key.substr(dot + 1), names)) {
                message += "; did you mean '" + section + "." + *s + "'?";
            } else {
                for (auto& n : names)
                    n = section + "." + n;
                message += "; known: " + join(names);
            }
            error(key, source, {}, std::move(message));
            return;
        }
        // No section, or an unknown one: the name may still be a key's ("access_log" for
        // log.access_log, "enabled" in three sections), or close to a dotted key.
        const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
        std::vector<std::string> candidates{"plugin"};
        std::vector<std::string> names;
        for (const auto& k : schema_.keys()) {
            candidates.push_back(k.dotted());
            names.push_back(k.name);
        }
        // The name as it is, else the closest key name ("max_headrs").
        const std::string wanted = std::find(names.begin(), names.end(), name) != names.end()
                                       ? name
                                       : suggest(name, names).value_or(std::string());
        std::vector<std::string> same_name;
        for (const auto& k : schema_.keys())
            if (k.name == wanted) same_name.push_back("'" + k.dotted() + "'");
        // A typo in the section ("sever.listen") first: it names the key the best.
        const auto close = dot != std::string::npos ? suggest(key, candidates) : std::nullopt;
        std::string message;
        if (close) {
            message = "unknown key; did you mean '" + *close + "'?";
        } else if (same_name.size() == 1) {
            message = "unknown key; did you mean " + same_name[0] + "?";
        } else if (!same_name.empty()) {
            message = "unknown key; did you mean one of " + join(same_name) + "?";
        } else {
            // Not the ninety keys: where to find them.
            std::vector<std::string> all(sections.begin(), sections.end());
            message = "unknown key; a key is SECTION.NAME, the sections being " + join(all) +
                      " (--print-config lists every key with its value)";
        }
        error(key, source, {}, std::move(message));
    }

    const SchemaBase& schema_;
    void* root_;
    const LoadOptions& options_;
    Loaded loaded_;
    std::vector<ConfigError> errors_;
    // Errors of variables outside WEFT_* (HTTP_PROXY), by dotted key, until a later source
    // sets the key.
    std::map<std::string, ConfigError> ambient_errors_;
    std::set<std::string> failed_;            // display names ("[server] listen") and dotted names
    std::vector<std::string> service_links_;  // WEFT_<SECTION>_... variables of a Service
};

}  // namespace

const Source& Provenance::of(std::string_view dotted) const {
    static const Source kBuiltIn;
    auto it = by_key_.find(dotted);
    return it == by_key_.end() ? kBuiltIn : it->second;
}

void Provenance::set(std::string dotted, Source source) {
    by_key_[std::move(dotted)] = std::move(source);
}

Result<Loaded, ConfigErrors> load(const SchemaBase& schema, void* root,
                                  const LoadOptions& options) {
    return Loader(schema, root, options).run();
}

Environment environment_from_environ() {
    Environment env;
    for (char** e = environ; e && *e; ++e) {
        const std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos) continue;
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

std::optional<FlagOverride> parse_assignment(std::string_view text, std::string flag) {
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string key(text.substr(0, eq));
    while (!key.empty() && key.back() == ' ')
        key.pop_back();
    while (!key.empty() && key.front() == ' ')
        key.erase(key.begin());
    if (key.empty()) return std::nullopt;  // "=5": no key to set
    FlagOverride f;
    f.flag = flag + " " + key;
    f.key = std::move(key);
    f.value = std::string(text.substr(eq + 1));
    return f;
}

}  // namespace weft::config
