// The watchdog's settings (gevent's monitor-thread options with the WEFT_ prefix), their parsers
// and validation. The config module fills MonitorSettings from TOML, the environment and flags;
// from_env() reads the gevent-style variables for programs that have no config file.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::monitor {

struct MonitorSettings {
    /// Runs the watchdog thread (blocking reports and the memory monitor).
    /// WEFT_MONITOR_THREAD_ENABLE.
    bool enabled = true;
    /// A hub whose epoch has not moved for longer than this, while it runs a fiber or its own
    /// loop, is reported as blocked. WEFT_MAX_BLOCKING_TIME (seconds, > 0).
    std::chrono::nanoseconds max_blocking_time = std::chrono::milliseconds(100);
    /// Writes reports to the "weft.monitor" log; when false they still reach the other sinks.
    /// WEFT_MONITOR_PRINT_BLOCKING_REPORTS.
    bool print_blocking_reports = true;
    /// Resident set size above which the memory monitor fires; 0 disables it.
    /// WEFT_MONITOR_MEMORY_MAX (bytes, kb/mb/gb suffixes).
    std::uint64_t memory_max = 0;
    /// How often the memory monitor samples RSS. WEFT_MONITOR_MEMORY_PERIOD (seconds, >= 2).
    std::chrono::nanoseconds memory_period = std::chrono::seconds(5);
    /// Show every hub's fibers as a tree (parents, spawn sites) in reports. Core records parents
    /// and spawn sites for every fiber anyway (a pointer copy at spawn), so this only shapes
    /// the reports. WEFT_TRACK_FIBER_TREE.
    bool track_fiber_tree = true;
    /// File that receives every report and closing record as one JSON object per line
    /// (appended); empty: none.
    std::string reports_file;
    /// Reports written per rolling minute; later blockages are counted, not reported, until the
    /// window allows again. 0: no limit.
    unsigned reports_per_minute = 20;
    /// Reports kept in memory for /debug/blocking.
    std::size_t recent_reports = 64;
    /// Name of the spdlog logger that prints reports.
    std::string logger_name = "weft.monitor";
};

/// One bad setting: which key, where it came from, its value, and what is allowed.
struct SettingsError {
    std::string key;     ///< "WEFT_MAX_BLOCKING_TIME", or a config key
    std::string source;  ///< "environment", "file.toml:12", "--max-blocking-time"...
    std::string value;
    std::string allowed;  ///< "a number of seconds greater than 0, e.g. 0.1"
    /// "WEFT_MAX_BLOCKING_TIME='abc' (environment): expected a number of seconds ..."
    std::string message() const;
};

/// The outcome of reading settings: the settings, or every error found (all are reported at
/// once so that a user fixes them in one go).
struct SettingsResult {
    MonitorSettings settings;
    std::vector<SettingsError> errors;
    bool ok() const noexcept { return errors.empty(); }
    /// Every error's message, one per line.
    std::string message() const;
};

/// Looks a variable up; returns nullptr when unset. Defaults to std::getenv.
using EnvLookup = const char* (*)(const char* name);

/// Reads WEFT_MONITOR_THREAD_ENABLE, WEFT_MAX_BLOCKING_TIME,
/// WEFT_MONITOR_PRINT_BLOCKING_REPORTS, WEFT_MONITOR_MEMORY_MAX, WEFT_MONITOR_MEMORY_PERIOD and
/// WEFT_TRACK_FIBER_TREE over `base`. Unset or empty variables keep the base value.
SettingsResult from_env(MonitorSettings base = {}, EnvLookup lookup = nullptr);

/// Checks values that did not come from text (e.g. set in code or by the config module):
/// max_blocking_time > 0, memory_period >= 2 s, recent_reports >= 1.
std::vector<SettingsError> validate(const MonitorSettings& s, std::string_view source = "settings");

// Parsers shared with the config module, so that every source accepts the same spellings.
// Each returns nullopt for a bad value; the matching k...Allowed text says what is allowed.

/// 1/true/on/yes or 0/false/off/no, any case.
std::optional<bool> parse_bool(std::string_view text);
inline constexpr std::string_view kBoolAllowed = "one of 1, true, on, yes, 0, false, off, no";
/// A decimal number of seconds ("0.1", "2", "1e-3"), finite and >= 0.
std::optional<std::chrono::nanoseconds> parse_seconds(std::string_view text);
inline constexpr std::string_view kBlockingTimeAllowed =
    "a number of seconds greater than 0, e.g. 0.1";
inline constexpr std::string_view kMemoryPeriodAllowed = "a number of seconds, at least 2, e.g. 5";
/// A byte count with an optional b, kb, mb or gb suffix (1024-based, any case; "1.5gb" is
/// allowed). 0 disables the memory monitor.
std::optional<std::uint64_t> parse_bytes(std::string_view text);
inline constexpr std::string_view kBytesAllowed =
    "a size in bytes with an optional kb, mb or gb suffix (1024-based), e.g. 512mb; 0 disables";

}  // namespace weft::monitor
