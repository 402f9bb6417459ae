// The table of configuration keys: for each, its section and name, its parser with the allowed
// range, and its TOML and JSON printers. Ranges live here, next to the key they guard.
#include "keys.hpp"

#include <limits>
#include <type_traits>
#include <vector>

namespace weft::config::detail {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kSections[] = {"server", "admin", "monitor", "log"};
constexpr std::string_view kBackends[] = {"auto", "io_uring", "epoll"};
// Indexed by the enum's value: the runtime's order, and its names (weft::backend_name).
static_assert(static_cast<int>(Backend::automatic) == 0 &&
              static_cast<int>(Backend::io_uring) == 1 && static_cast<int>(Backend::epoll) == 2);
constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                        "error", "critical", "off"};
constexpr std::string_view kFormats[] = {"text", "json"};
constexpr Duration kDay = hours(24);
constexpr auto kNoLimit = std::numeric_limits<std::uint64_t>::max();

// Builds a KeySpec from an accessor (a generic lambda returning the Setting, usable on a const
// or a mutable Config), a parser Input -> Parsed<U>, and printers of the stored value.
template <class Access, class Parse, class Toml, class Json>
KeySpec make(std::string_view section, std::string_view name, Access access, Parse parse, Toml toml,
             Json json) {
    KeySpec k;
    k.section = section;
    k.name = name;
    k.apply = [access, parse](Config& c, const Input& in,
                              const Source& source) -> std::optional<std::string> {
        auto parsed = parse(in);
        if (auto* problem = std::get_if<Problem>(&parsed)) return std::move(problem->message);
        auto& setting = access(c);
        using T = std::remove_cvref_t<decltype(setting.value)>;
        setting.value = static_cast<T>(std::get<0>(std::move(parsed)));
        setting.source = source;
        return std::nullopt;
    };
    k.source = [access](const Config& c) -> const Source& { return access(c).source; };
    k.toml = [access, toml](const Config& c) { return toml(access(c).value); };
    k.json = [access, json](const Config& c) { return json(access(c).value); };
    return k;
}

std::string toml_bool(bool v) {
    return v ? "true" : "false";
}
std::string toml_int(std::uint64_t v) {
    return std::to_string(v);
}
std::string toml_size(std::uint64_t v) {
    const std::string s = format_size(v);
    return s == std::to_string(v) ? s : toml_quote(s);
}
std::string toml_duration(Duration d) {
    return toml_quote(format_duration(d));
}
std::string json_duration(Duration d) {
    return format_double(static_cast<double>(d.count()) / 1e9);
}

template <class Access>
KeySpec boolean(std::string_view section, std::string_view name, Access access) {
    return make(section, name, access, parse_bool, toml_bool, toml_bool);
}

template <class Access>
KeySpec integer(std::string_view section, std::string_view name, Access access, std::int64_t min,
                std::int64_t max) {
    auto parse = [min, max](const Input& in) { return parse_integer(in, min, max); };
    return make(section, name, access, parse, toml_int, toml_int);
}

template <class Access>
KeySpec count_or_auto(std::string_view section, std::string_view name, Access access,
                      std::int64_t max) {
    auto parse = [max](const Input& in) { return parse_count_or_auto(in, max); };
    return make(section, name, access, parse, toml_int, toml_int);
}

template <class Access>
KeySpec size(std::string_view section, std::string_view name, Access access, std::uint64_t min,
             std::uint64_t max) {
    auto parse = [min, max](const Input& in) { return parse_size(in, min, max); };
    return make(section, name, access, parse, toml_size, toml_int);
}

template <class Access>
KeySpec duration(std::string_view section, std::string_view name, Access access, Duration min,
                 Duration max, bool min_exclusive) {
    auto parse = [=](const Input& in) { return parse_duration(in, min, max, min_exclusive); };
    return make(section, name, access, parse, toml_duration, json_duration);
}

template <class Enum, std::size_t N, class Access>
KeySpec choice(std::string_view section, std::string_view name, Access access,
               const std::string_view (&names)[N]) {
    auto parse = [&names](const Input& in) -> Parsed<Enum> {
        auto r = parse_choice(in, names);
        if (auto* problem = std::get_if<Problem>(&r)) return std::move(*problem);
        return static_cast<Enum>(std::get<0>(r));
    };
    auto toml = [&names](Enum v) { return toml_quote(names[static_cast<std::size_t>(v)]); };
    auto json = [&names](Enum v) { return json_quote(names[static_cast<std::size_t>(v)]); };
    return make(section, name, access, parse, toml, json);
}

template <class Access>
KeySpec listen(std::string_view section, std::string_view name, Access access) {
    return make(
        section, name, access, parse_listen,
        [](const ListenAddress& a) { return toml_quote(a.to_string()); },
        [](const ListenAddress& a) { return json_quote(a.to_string()); });
}

template <class Access>
KeySpec path(std::string_view section, std::string_view name, Access access) {
    auto parse = [](const Input& in) -> Parsed<std::string> {
        if (!in.is_textual()) return Problem{"expected a file path (a string; \"\" for none)"};
        if (in.text.find('\0') != std::string::npos) {
            return Problem{"a path must not contain a NUL character"};
        }
        return in.text;
    };
    return make(
        section, name, access, parse, [](const std::string& s) { return toml_quote(s); },
        [](const std::string& s) { return json_quote(s); });
}

// The Server header's value (http's ServerOptions::server_name, which checks the same).
template <class Access>
KeySpec header_phrase(std::string_view section, std::string_view name, Access access) {
    auto parse = [](const Input& in) -> Parsed<std::string> {
        if (!in.is_textual() || !valid_header_phrase(in.text)) {
            return Problem{"expected at most " + std::to_string(kMaxHeaderPhraseBytes) +
                           " visible ASCII characters and inner spaces, such as \"weft\" or "
                           "\"acme/2.1 (edge)\" (\"\" sends no header)"};
        }
        return in.text;
    };
    return make(
        section, name, access, parse, [](const std::string& s) { return toml_quote(s); },
        [](const std::string& s) { return json_quote(s); });
}

template <class Access>
KeySpec access_log(std::string_view section, std::string_view name, Access access) {
    return make(
        section, name, access, parse_access_log,
        [](const AccessLog& a) { return toml_quote(a.to_string()); },
        [](const AccessLog& a) { return json_quote(a.to_string()); });
}

std::vector<KeySpec> build_specs() {
    std::vector<KeySpec> k;
    // clang-format off
    k.push_back(listen("server", "listen", [](auto& c) -> auto& { return c.server.listen; }));
    k.push_back(count_or_auto("server", "hubs",
        [](auto& c) -> auto& { return c.server.hubs; }, 1024));
    k.push_back(choice<Backend>("server", "backend",
        [](auto& c) -> auto& { return c.server.backend; }, kBackends));
    k.push_back(size("server", "stack_size",
        [](auto& c) -> auto& { return c.server.stack_size; }, 16 * kKiB, 8 * kMiB));
    k.push_back(integer("server", "max_connections",
        [](auto& c) -> auto& { return c.server.max_connections; }, 1, 10'000'000));
    k.push_back(size("server", "max_header_bytes",
        [](auto& c) -> auto& { return c.server.max_header_bytes; }, 1 * kKiB, 1 * kMiB));
    k.push_back(size("server", "max_uri_bytes",
        [](auto& c) -> auto& { return c.server.max_uri_bytes; }, 256, 1 * kMiB));
    k.push_back(size("server", "max_body_bytes",
        [](auto& c) -> auto& { return c.server.max_body_bytes; }, 0, kNoLimit));
    k.push_back(duration("server", "header_timeout",
        [](auto& c) -> auto& { return c.server.header_timeout; }, Duration::zero(), kDay, true));
    k.push_back(duration("server", "body_timeout",
        [](auto& c) -> auto& { return c.server.body_timeout; }, Duration::zero(), kDay, true));
    k.push_back(duration("server", "idle_timeout",
        [](auto& c) -> auto& { return c.server.idle_timeout; }, Duration::zero(), kDay, true));
    k.push_back(duration("server", "send_timeout",
        [](auto& c) -> auto& { return c.server.send_timeout; }, Duration::zero(), kDay, true));
    k.push_back(integer("server", "max_requests_per_connection",
        [](auto& c) -> auto& { return c.server.max_requests_per_connection; }, 0,
        std::numeric_limits<std::int64_t>::max()));
    k.push_back(duration("server", "drain_timeout",
        [](auto& c) -> auto& { return c.server.drain_timeout; }, Duration::zero(), kDay, false));
    k.push_back(count_or_auto("server", "offload_threads",
        [](auto& c) -> auto& { return c.server.offload_threads; }, 1024));
    k.push_back(header_phrase("server", "server_name",
        [](auto& c) -> auto& { return c.server.server_name; }));

    k.push_back(boolean("admin", "enabled", [](auto& c) -> auto& { return c.admin.enabled; }));
    k.push_back(listen("admin", "listen", [](auto& c) -> auto& { return c.admin.listen; }));
    k.push_back(boolean("admin", "debug_endpoints",
        [](auto& c) -> auto& { return c.admin.debug_endpoints; }));

    k.push_back(boolean("monitor", "enabled",
        [](auto& c) -> auto& { return c.monitor.enabled; }));
    k.push_back(duration("monitor", "max_blocking_time",
        [](auto& c) -> auto& { return c.monitor.max_blocking_time; }, Duration::zero(),
        hours(1), true));
    k.push_back(boolean("monitor", "print_blocking_reports",
        [](auto& c) -> auto& { return c.monitor.print_blocking_reports; }));
    k.push_back(size("monitor", "memory_max",
        [](auto& c) -> auto& { return c.monitor.memory_max; }, 0, kNoLimit));
    k.push_back(duration("monitor", "memory_period",
        [](auto& c) -> auto& { return c.monitor.memory_period; }, seconds(2), kDay, false));
    k.push_back(boolean("monitor", "track_fiber_tree",
        [](auto& c) -> auto& { return c.monitor.track_fiber_tree; }));
    k.push_back(path("monitor", "reports_file",
        [](auto& c) -> auto& { return c.monitor.reports_file; }));
    k.push_back(integer("monitor", "report_rate_limit",
        [](auto& c) -> auto& { return c.monitor.report_rate_limit; }, 0, 1'000'000));
    k.push_back(duration("monitor", "lag_probe_interval",
        [](auto& c) -> auto& { return c.monitor.lag_probe_interval; }, milliseconds(1),
        seconds(60), false));

    k.push_back(choice<LogLevel>("log", "level", [](auto& c) -> auto& { return c.log.level; },
        kLevels));
    k.push_back(choice<LogFormat>("log", "format", [](auto& c) -> auto& { return c.log.format; },
        kFormats));
    k.push_back(access_log("log", "access_log",
        [](auto& c) -> auto& { return c.log.access_log; }));
    // clang-format on
    return k;
}

}  // namespace

std::string KeySpec::display() const {
    std::string s = "[";
    s.append(section).append("] ").append(name);
    return s;
}

std::string KeySpec::env_name() const {
    return "WEFT_" + to_upper(section) + "_" + to_upper(name);
}

std::span<const KeySpec> key_specs() {
    static const std::vector<KeySpec> specs = build_specs();
    return specs;
}

std::span<const std::string_view> section_names() {
    return kSections;
}

const KeySpec* find_key(std::string_view section, std::string_view name) {
    for (const auto& k : key_specs()) {
        if (k.section == section && k.name == name) return &k;
    }
    return nullptr;
}

}  // namespace weft::config::detail
