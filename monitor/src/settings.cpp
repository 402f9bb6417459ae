// Parsing and validation of the monitor settings, and the gevent-style environment variables.
#include "weft/monitor/settings.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

namespace weft::monitor {

namespace {

std::string lower_trimmed(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A plain decimal number (strtod syntax, but no hex, inf or nan), fully consumed.
std::optional<double> parse_number(const std::string& s) {
    if (s.empty()) return std::nullopt;
    for (char c : s) {
        if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' ||
              c == '-'))
            return std::nullopt;
    }
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

constexpr double kMinMemoryPeriodS = 2.0;

}  // namespace

std::string SettingsError::message() const {
    return key + "='" + value + "' (" + source + "): expected " + allowed;
}

std::string SettingsResult::message() const {
    std::string out;
    for (const auto& e : errors) {
        if (!out.empty()) out += '\n';
        out += e.message();
    }
    return out;
}

std::optional<bool> parse_bool(std::string_view text) {
    std::string s = lower_trimmed(text);
    if (s == "1" || s == "true" || s == "on" || s == "yes") return true;
    if (s == "0" || s == "false" || s == "off" || s == "no") return false;
    return std::nullopt;
}

std::optional<std::chrono::nanoseconds> parse_seconds(std::string_view text) {
    auto v = parse_number(lower_trimmed(text));
    if (!v || *v < 0 || *v > 1e9) return std::nullopt;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(*v * 1e9)));
}

std::optional<std::uint64_t> parse_bytes(std::string_view text) {
    std::string s = lower_trimmed(text);
    double mult = 1;
    auto strip = [&](std::string_view suffix, double m) {
        if (s.size() > suffix.size() &&
            s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0) {
            s.resize(s.size() - suffix.size());
            mult = m;
            return true;
        }
        return false;
    };
    strip("gb", 1024.0 * 1024 * 1024) || strip("mb", 1024.0 * 1024) || strip("kb", 1024.0) ||
        strip("g", 1024.0 * 1024 * 1024) || strip("m", 1024.0 * 1024) || strip("k", 1024.0) ||
        strip("b", 1);
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    auto v = parse_number(s);
    if (!v || *v < 0) return std::nullopt;
    double bytes = *v * mult;
    if (bytes > 9.0e18 || (bytes > 0 && bytes < 1)) return std::nullopt;
    return static_cast<std::uint64_t>(std::llround(bytes));
}

std::vector<SettingsError> validate(const MonitorSettings& s, std::string_view source) {
    std::vector<SettingsError> errs;
    auto secs = [](std::chrono::nanoseconds d) {
        return std::to_string(std::chrono::duration<double>(d).count());
    };
    if (s.max_blocking_time <= std::chrono::nanoseconds::zero())
        errs.push_back({"max_blocking_time", std::string(source), secs(s.max_blocking_time),
                        std::string(kBlockingTimeAllowed)});
    if (s.memory_period < std::chrono::duration<double>(kMinMemoryPeriodS))
        errs.push_back({"memory_period", std::string(source), secs(s.memory_period),
                        std::string(kMemoryPeriodAllowed)});
    if (s.recent_reports == 0)
        errs.push_back({"recent_reports", std::string(source), "0", "at least 1"});
    return errs;
}

SettingsResult from_env(MonitorSettings base, EnvLookup lookup) {
    if (!lookup) lookup = [](const char* n) -> const char* { return std::getenv(n); };
    SettingsResult r{std::move(base), {}};
    auto get = [&](const char* name) -> std::optional<std::string> {
        const char* v = lookup(name);
        if (!v || !*v) return std::nullopt;
        return std::string(v);
    };
    auto fail = [&](const char* name, const std::string& value, std::string_view allowed) {
        r.errors.push_back({name, "environment", value, std::string(allowed)});
    };
    auto read_bool = [&](const char* name, bool& out) {
        if (auto v = get(name)) {
            if (auto b = parse_bool(*v))
                out = *b;
            else
                fail(name, *v, kBoolAllowed);
        }
    };

    read_bool("WEFT_MONITOR_THREAD_ENABLE", r.settings.enabled);
    if (auto v = get("WEFT_MAX_BLOCKING_TIME")) {
        auto d = parse_seconds(*v);
        if (d && d->count() > 0)
            r.settings.max_blocking_time = *d;
        else
            fail("WEFT_MAX_BLOCKING_TIME", *v, kBlockingTimeAllowed);
    }
    read_bool("WEFT_MONITOR_PRINT_BLOCKING_REPORTS", r.settings.print_blocking_reports);
    if (auto v = get("WEFT_MONITOR_MEMORY_MAX")) {
        if (auto b = parse_bytes(*v))
            r.settings.memory_max = *b;
        else
            fail("WEFT_MONITOR_MEMORY_MAX", *v, kBytesAllowed);
    }
    if (auto v = get("WEFT_MONITOR_MEMORY_PERIOD")) {
        auto d = parse_seconds(*v);
        if (d && *d >= std::chrono::duration<double>(kMinMemoryPeriodS))
            r.settings.memory_period = *d;
        else
            fail("WEFT_MONITOR_MEMORY_PERIOD", *v, kMemoryPeriodAllowed);
    }
    read_bool("WEFT_TRACK_FIBER_TREE", r.settings.track_fiber_tree);
    return r;
}

}  // namespace weft::monitor
