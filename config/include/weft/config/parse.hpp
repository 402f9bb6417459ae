// The one grammar of configuration values, shared by every source (a TOML file, WEFT_*
// variables, the gevent-style variables, flags) and by plugin tables: a raw Input (a typed TOML
// value, or text) to a typed value, or a Problem saying what is allowed. Plus the printers that
// turn values back into TOML, JSON and messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "weft/config/table.hpp"
#include "weft/core/result.hpp"
#include "weft/core/text.hpp"

namespace weft::config {

using Duration = std::chrono::nanoseconds;

inline constexpr std::uint64_t kKiB = 1024;
inline constexpr std::uint64_t kMiB = 1024 * kKiB;
inline constexpr std::uint64_t kGiB = 1024 * kMiB;

/// One raw value. From a TOML file it keeps its type; from the environment or a flag it is
/// text, which may spell a number, a boolean or a duration.
struct Input {
    enum class Kind : std::uint8_t { text, string, integer, floating, boolean, array, table };

    Kind kind = Kind::text;
    std::string text;  // Kind::text and Kind::string
    std::int64_t integer = 0;
    double floating = 0;
    bool boolean = false;

    static Input from_text(std::string_view text);
    static Input from_value(const Value& value);
    /// As messages show it: quoted strings, plain numbers, "a table", "an array".
    std::string display() const;
    bool is_textual() const noexcept { return kind == Kind::text || kind == Kind::string; }
};

/// What is wrong with an input and what is allowed ("expected a boolean: ...").
struct Problem {
    std::string message;
    const std::string& to_string() const noexcept { return message; }
};

/// A parsed value, or the problem.
template <class T>
using Parsed = Result<T, Problem>;

/// true/false; from text also 1/0, on/off, yes/no (any case).
Parsed<bool> parse_bool(const Input& in);
Parsed<std::int64_t> parse_integer(const Input& in, std::int64_t min, std::int64_t max);
/// Like parse_integer, and "auto" means 0.
Parsed<std::int64_t> parse_count_or_auto(const Input& in, std::int64_t max);
Parsed<double> parse_number(const Input& in);
Parsed<std::string> parse_string(const Input& in);
/// Bytes: an integer, or text with an optional unit: "512KiB", "1mb", "1.5gb" (1024-based).
Parsed<std::uint64_t> parse_size(const Input& in, std::uint64_t min, std::uint64_t max);
/// A number of seconds (0.5), or text with a unit: "100ms", "2m", "1h", "250us".
/// Inclusive bounds unless `min_exclusive` (then the value must be greater than `min`).
Parsed<Duration> parse_duration(const Input& in, Duration min, Duration max,
                                bool min_exclusive = false);
/// Index into `names` (compared without regard to case).
Parsed<std::size_t> parse_choice(const Input& in, std::span<const std::string_view> names);

/// The unit-less grammar itself, for inputs already known to be text.
std::optional<std::uint64_t> size_from_text(std::string_view text);
std::optional<Duration> duration_from_text(std::string_view text);

/// "64KiB", "1MiB" when exact, else the plain byte count.
std::string format_size(std::uint64_t bytes);
/// "100ms", "10s", "2h", "1500ms": whole hours, else the largest of s, ms, us, ns that keeps
/// the value whole (no minutes, so 60 s stays "60s").
std::string format_duration(Duration d);
/// Shortest text that reads back as the same double, always with a '.', 'e', "inf" or "nan"
/// so TOML sees a float.
std::string format_double(double v);

using weft::json_quote;  // weft/core/text.hpp
using weft::toml_quote;
using weft::valid_utf8;
/// A TOML key: bare when it can be, quoted otherwise.
std::string toml_key(std::string_view key);
std::string to_lower(std::string_view s);

/// A plugin's settings have no schema to say which of them are secrets: wherever they are
/// shown (--print-config, /debug/config, errors) a key named like one ("db_password",
/// "api_token", "client_secret", "credentials") has its text values (strings, and those of
/// its arrays and sub-tables) shown as kHiddenSecret, and in
/// every other string a URL's password ("postgres://app:***@db/app") and the "password=" field
/// of a connection string (libpq's "host=db password=***", ODBC's "Pwd=***;") are.
inline constexpr std::string_view kHiddenSecret = "***";
bool secret_key(std::string_view key);
std::string hide_secrets(std::string_view text);
std::string to_upper(std::string_view s);
std::string_view trim(std::string_view s);

std::size_t edit_distance(std::string_view a, std::string_view b);
/// The candidate closest to `word` when close enough to be a likely typo (a few edits, or the
/// only candidate that `word` is a prefix of, or that is a prefix of `word`).
std::optional<std::string> suggest(std::string_view word, std::span<const std::string> candidates);

}  // namespace weft::config
