// Parsing of booleans, integers, sizes, durations, choices and addresses from TOML values and
// from environment/flag text, with messages that say what is allowed; and the quoting and
// formatting helpers that turn values back into TOML, JSON and messages.
#include "weft/config/parse.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

namespace weft::config {
namespace {
constexpr std::string_view kSpaces = " \t\r\n";
}  // namespace

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(kSpaces);
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(kSpaces);
    return s.substr(first, last - first + 1);
}

namespace {

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

// Reads "[-]DIGITS[.DIGITS]" or "[-].DIGITS" from the front of `s`; advances `s`.
std::optional<long double> take_decimal(std::string_view& s) {
    std::size_t i = 0;
    bool negative = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
    const std::size_t digits_start = i;
    long double value = 0;
    while (i < s.size() && is_digit(s[i]))
        value = value * 10 + (s[i++] - '0');
    bool any_digit = i > digits_start;
    if (i < s.size() && s[i] == '.') {
        ++i;
        long double scale = 0.1L;
        const std::size_t fraction_start = i;
        while (i < s.size() && is_digit(s[i])) {
            value += (s[i++] - '0') * scale;
            scale /= 10;
        }
        any_digit = any_digit || i > fraction_start;
    }
    if (!any_digit) return std::nullopt;
    s.remove_prefix(i);
    return negative ? -value : value;
}

struct Unit {
    std::string_view name;
    long double factor;
};

constexpr Unit kDurationUnits[] = {
    {"ns", 1.0L}, {"us", 1e3L}, {"\xC2\xB5s", 1e3L}, {"ms", 1e6L},
    {"s", 1e9L},  {"m", 60e9L}, {"h", 3600e9L},
};

constexpr Unit kSizeUnits[] = {
    {"", 1.0L},
    {"b", 1.0L},
    {"k", 1024.0L},
    {"kb", 1024.0L},
    {"kib", 1024.0L},
    {"m", 1048576.0L},
    {"mb", 1048576.0L},
    {"mib", 1048576.0L},
    {"g", 1073741824.0L},
    {"gb", 1073741824.0L},
    {"gib", 1073741824.0L},
    {"t", 1099511627776.0L},
    {"tb", 1099511627776.0L},
    {"tib", 1099511627776.0L},
};

// Nanoseconds as a long double, so that range checks happen before any overflow.
std::optional<long double> duration_ns_from_text(std::string_view text) {
    std::string_view s = trim(text);
    if (s.empty()) return std::nullopt;
    // A bare number is seconds (WEFT_MAX_BLOCKING_TIME=0.1, as gevent reads it).
    {
        std::string_view probe = s;
        if (auto v = take_decimal(probe); v && probe.empty()) return *v * 1e9L;
    }
    bool negative = false;
    if (s.front() == '-' || s.front() == '+') {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    long double total = 0;
    while (!s.empty()) {
        if (s.front() == '-' || s.front() == '+') return std::nullopt;
        auto number = take_decimal(s);
        if (!number) return std::nullopt;
        std::size_t n = 0;
        while (n < s.size() && !is_digit(s[n]) && s[n] != '.')
            ++n;
        const std::string_view unit = s.substr(0, n);
        s.remove_prefix(n);
        const auto* found = std::find_if(std::begin(kDurationUnits), std::end(kDurationUnits),
                                         [&](const Unit& u) { return u.name == unit; });
        if (found == std::end(kDurationUnits)) return std::nullopt;
        total += *number * found->factor;
    }
    return negative ? -total : total;
}

std::optional<long double> size_bytes_from_text(std::string_view text) {
    std::string_view s = trim(text);
    auto number = take_decimal(s);
    if (!number) return std::nullopt;
    const std::string unit = to_lower(trim(s));
    const auto* found = std::find_if(std::begin(kSizeUnits), std::end(kSizeUnits),
                                     [&](const Unit& u) { return u.name == unit; });
    if (found == std::end(kSizeUnits)) return std::nullopt;
    return *number * found->factor;
}

const char* kSizeExpected =
    "expected a size: bytes as an integer, or a string with a unit such as \"512KiB\", "
    "\"16kb\", \"1MiB\" or \"2gb\" (all binary: kb = KiB = 1024 bytes)";
const char* kDurationExpected =
    "expected a duration: seconds as a number (0.1) or a string with a unit ns, us, ms, s, m "
    "or h (\"100ms\", \"10s\", \"2m\", \"1m30s\")";

template <class T>
std::string range_text(T min, T max, std::string (*show)(T)) {
    if (max == std::numeric_limits<T>::max()) {
        if (min == 0) return "must not be negative";
        return "must be at least " + show(min);
    }
    return "must be between " + show(min) + " and " + show(max);
}

std::string show_int(std::int64_t v) {
    return std::to_string(v);
}
std::string show_size(std::uint64_t v) {
    return format_size(v);
}

}  // namespace

Input Input::from_text(std::string_view text) {
    Input in;
    in.kind = Kind::text;
    in.text = std::string(text);
    return in;
}

Input Input::from_value(const Value& value) {
    Input in;
    switch (value.type()) {
        case Value::Type::string:
            in.kind = Kind::string;
            in.text = *value.as_string();
            break;
        case Value::Type::integer:
            in.kind = Kind::integer;
            in.integer = *value.as_integer();
            break;
        case Value::Type::floating:
            in.kind = Kind::floating;
            in.floating = *value.as_floating();
            break;
        case Value::Type::boolean:
            in.kind = Kind::boolean;
            in.boolean = *value.as_boolean();
            break;
        case Value::Type::array:
            in.kind = Kind::array;
            break;
        case Value::Type::table:
            in.kind = Kind::table;
            break;
    }
    return in;
}

std::string Input::display() const {
    switch (kind) {
        case Kind::text:
        case Kind::string:
            return toml_quote(text);
        case Kind::integer:
            return std::to_string(integer);
        case Kind::floating:
            return format_double(floating);
        case Kind::boolean:
            return boolean ? "true" : "false";
        case Kind::array:
            return "an array";
        case Kind::table:
            return "a table";
    }
    return {};
}

Parsed<bool> parse_bool(const Input& in) {
    if (in.kind == Input::Kind::boolean) return in.boolean;
    if (in.kind == Input::Kind::text) {
        const std::string t = to_lower(trim(in.text));
        if (t == "1" || t == "true" || t == "on" || t == "yes") return true;
        if (t == "0" || t == "false" || t == "off" || t == "no") return false;
        return Problem{"expected a boolean: 1, true, on, yes, 0, false, off or no"};
    }
    return Problem{"expected a boolean (true or false, without quotes)"};
}

Parsed<std::int64_t> parse_integer(const Input& in, std::int64_t min, std::int64_t max) {
    std::int64_t v = 0;
    if (in.kind == Input::Kind::integer) {
        v = in.integer;
    } else if (in.kind == Input::Kind::text) {
        std::string_view t = trim(in.text);
        if (!t.empty() && t.front() == '+') t.remove_prefix(1);
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (t.empty() || end != t.data() + t.size()) return Problem{"expected an integer"};
        if (ec == std::errc::result_out_of_range) return Problem{range_text(min, max, show_int)};
    } else if (in.kind == Input::Kind::string) {
        return Problem{"expected an integer (without quotes)"};
    } else {
        return Problem{"expected an integer"};
    }
    if (v < min || v > max) return Problem{range_text(min, max, show_int)};
    return v;
}

Parsed<std::int64_t> parse_count_or_auto(const Input& in, std::int64_t max) {
    if (in.is_textual() && to_lower(trim(in.text)) == "auto") return std::int64_t{0};
    if (in.kind == Input::Kind::string) {
        return Problem{"expected an integer 0.." + std::to_string(max) +
                       " (0 or \"auto\": automatic)"};
    }
    auto r = parse_integer(in, 0, max);
    if (!r) {
        return Problem{"expected an integer 0.." + std::to_string(max) +
                       " (0 or \"auto\": automatic)"};
    }
    return r;
}

Parsed<double> parse_number(const Input& in) {
    if (in.kind == Input::Kind::floating) return in.floating;
    if (in.kind == Input::Kind::integer) return static_cast<double>(in.integer);
    return Problem{"expected a number"};
}

Parsed<std::string> parse_string(const Input& in) {
    if (in.is_textual()) return in.text;
    return Problem{"expected a string"};
}

Parsed<std::uint64_t> parse_size(const Input& in, std::uint64_t min, std::uint64_t max) {
    long double bytes = 0;
    if (in.kind == Input::Kind::integer) {
        bytes = static_cast<long double>(in.integer);
    } else if (in.is_textual()) {
        auto v = size_bytes_from_text(in.text);
        if (!v) return Problem{kSizeExpected};
        bytes = *v;
    } else {
        return Problem{kSizeExpected};
    }
    // Whole bytes, checked after rounding: 0.4 must not become 0 (often "no limit"), and a
    // count past what 64 bits hold must not wrap.
    const long double rounded = std::roundl(bytes);
    if (bytes != 0 && rounded == 0) {
        return Problem{min == 0 ? "less than one byte: must be 0 or at least 1 byte"
                                : "less than one byte; " + range_text(min, max, show_size)};
    }
    if (rounded > static_cast<long double>(max)) {
        // The type's own limit is not a limit range_text() names.
        return Problem{max == std::numeric_limits<std::uint64_t>::max()
                           ? std::string("must be less than 16EiB (2^64 bytes)")
                           : range_text(min, max, show_size)};
    }
    if (rounded < static_cast<long double>(min)) return Problem{range_text(min, max, show_size)};
    return static_cast<std::uint64_t>(rounded);
}

Parsed<Duration> parse_duration(const Input& in, Duration min, Duration max, bool min_exclusive) {
    long double ns = 0;
    if (in.kind == Input::Kind::integer) {
        ns = static_cast<long double>(in.integer) * 1e9L;
    } else if (in.kind == Input::Kind::floating) {
        if (!std::isfinite(in.floating)) return Problem{kDurationExpected};
        ns = static_cast<long double>(in.floating) * 1e9L;
    } else if (in.is_textual()) {
        auto v = duration_ns_from_text(in.text);
        if (!v) return Problem{kDurationExpected};
        ns = *v;
    } else {
        return Problem{kDurationExpected};
    }
    const auto lo = static_cast<long double>(min.count());
    const auto hi = static_cast<long double>(max.count());
    const bool too_small = min_exclusive ? ns <= lo : ns < lo;
    // Rounding to whole nanoseconds must not turn 0.1ns into "0" past a "> 0" check.
    const long double rounded = std::roundl(ns);
    if (too_small || ns > hi || (min_exclusive && rounded <= lo)) {
        if (min_exclusive) {
            const std::string lowest = min == Duration::zero() ? "0" : format_duration(min);
            return Problem{"must be greater than " + lowest + " and at most " +
                           format_duration(max)};
        }
        if (max == Duration::max()) {
            // No bound of its own: too long means beyond what a duration holds (292 years).
            if (ns > hi) return Problem{"is too long: at most 292 years"};
            return Problem{min == Duration::zero() ? std::string("must not be negative")
                                                   : "must be at least " + format_duration(min)};
        }
        return Problem{"must be between " + format_duration(min) + " and " + format_duration(max)};
    }
    return Duration(static_cast<Duration::rep>(rounded));
}

Parsed<std::size_t> parse_choice(const Input& in, std::span<const std::string_view> names) {
    if (in.is_textual()) {
        const std::string t = to_lower(trim(in.text));
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (names[i] == t) return i;
        }
    }
    std::string allowed = "expected one of: ";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) allowed += ", ";
        allowed += names[i];
    }
    return Problem{allowed};
}

std::optional<std::uint64_t> size_from_text(std::string_view text) {
    auto v = size_bytes_from_text(text);
    if (!v || *v < 0 || *v > static_cast<long double>(std::numeric_limits<std::int64_t>::max())) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(std::llroundl(*v));
}

std::optional<Duration> duration_from_text(std::string_view text) {
    auto v = duration_ns_from_text(text);
    if (!v || std::fabs(*v) > static_cast<long double>(std::numeric_limits<Duration::rep>::max())) {
        return std::nullopt;
    }
    return Duration(static_cast<Duration::rep>(std::roundl(*v)));
}

std::string format_size(std::uint64_t bytes) {
    if (bytes != 0) {
        if (bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "GiB";
        if (bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
        if (bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "KiB";
    }
    return std::to_string(bytes);
}

std::string format_duration(Duration d) {
    const auto ns = d.count();
    if (ns == 0) return "0s";
    constexpr std::int64_t kSecond = 1'000'000'000;
    constexpr std::int64_t kHour = 3600 * kSecond;
    if (ns % kHour == 0) return std::to_string(ns / kHour) + "h";
    if (ns % kSecond == 0) return std::to_string(ns / kSecond) + "s";
    if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
    if (ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
    return std::to_string(ns) + "ns";
}

std::string format_double(double v) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    std::string s(buf, ec == std::errc() ? end : buf);
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
}

std::string toml_key(std::string_view key) {
    const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
               c == '-';
    });
    return bare ? std::string(key) : toml_quote(key);
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

bool secret_key(std::string_view key) {
    const std::string k = to_lower(key);
    for (std::string_view w : {"password", "passwd", "secret", "token", "credential", "api_key",
                               "apikey", "access_key", "private_key"})
        if (k.find(w) != std::string::npos) return true;
    return false;
}

std::string hide_secrets(std::string_view in) {
    std::string s(in);
    // "scheme://user:password@host...": the password.
    for (std::size_t at = s.find("://"); at != std::string::npos; at = s.find("://", at)) {
        at += 3;
        std::size_t end = s.find_first_of("/?# \t\"'", at);
        if (end == std::string::npos) end = s.size();
        const std::size_t user_end = s.rfind('@', end == 0 ? 0 : end - 1);
        if (user_end == std::string::npos || user_end < at) continue;
        const std::size_t colon = s.find(':', at);
        if (colon >= user_end) continue;
        s.replace(colon + 1, user_end - colon - 1, kHiddenSecret);
    }
    // "password=value", "pwd = 'a b'": the value, quoted or up to a space, ';' or '&'.
    const std::string lower = to_lower(s);
    std::string out;
    std::size_t copied = 0;
    for (std::size_t i = 0; i < lower.size(); ++i) {
        std::size_t name = 0;
        for (std::string_view w : {"password", "passwd", "pwd"})
            if (lower.compare(i, w.size(), w) == 0) {
                name = w.size();
                break;
            }
        if (name == 0) continue;  // (within a longer name too: "PGPASSWORD=...")
        std::size_t j = i + name;
        while (j < s.size() && s[j] == ' ')
            ++j;
        if (j >= s.size() || s[j] != '=') continue;
        ++j;
        while (j < s.size() && s[j] == ' ')
            ++j;
        std::size_t v_end = j;
        if (j < s.size() && (s[j] == '\'' || s[j] == '"')) {
            const char q = s[j];
            v_end = j + 1;
            while (v_end < s.size() && s[v_end] != q)
                v_end += s[v_end] == '\\' ? 2 : 1;
            v_end = std::min(v_end + 1, s.size());
        } else {
            while (v_end < s.size() && s[v_end] != ' ' && s[v_end] != ';' && s[v_end] != '&' &&
                   s[v_end] != '\t')
                ++v_end;
        }
        if (v_end == j) continue;
        out.append(s, copied, j - copied);
        out += kHiddenSecret;
        copied = v_end;
        i = v_end - 1;
    }
    out.append(s, copied, std::string::npos);
    return out;
}

std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Optimal string alignment: insertions, deletions, substitutions and adjacent swaps
    // ("lsiten") each cost one.
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[n][m];
}

std::optional<std::string> suggest(std::string_view word, std::span<const std::string> candidates) {
    const std::string w = to_lower(word);
    const std::size_t limit = std::max<std::size_t>(1, w.size() / 3);
    std::optional<std::string> best;
    std::size_t best_distance = limit + 1;
    for (const auto& c : candidates) {
        const std::size_t dist = edit_distance(w, to_lower(c));
        if (dist < best_distance) {
            best_distance = dist;
            best = c;
        }
    }
    if (best || w.size() < 3) return best;
    // A name cut short ("max_blocking") or run on ("listen_address"): one candidate that
    // starts with the word, or that the word starts with.
    for (const auto& c : candidates) {
        const std::string lc = to_lower(c);
        if (lc.starts_with(w) || w.starts_with(lc)) {
            if (best) return std::nullopt;  // ambiguous
            best = c;
        }
    }
    return best;
}

}  // namespace weft::config
