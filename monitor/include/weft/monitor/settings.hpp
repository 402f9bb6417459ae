// The watchdog's settings (gevent's monitor-thread options) and their validation. This struct owns
// them (type, default, meaning); the weft server's key table binds the [monitor] keys and the
// gevent-style variables (WEFT_MAX_BLOCKING_TIME, ...) straight to these members, in the one
// grammar of weft::config.
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
    bool enabled = true;
    /// A hub whose epoch has not moved for longer than this, while it runs a fiber or its own
    /// loop, is reported as blocked (> 0).
    std::chrono::nanoseconds max_blocking_time = std::chrono::milliseconds(100);
    /// Writes reports to the "weft.monitor" log; when false they still reach the other sinks.
    bool print_blocking_reports = true;
    /// Resident set size in bytes above which the memory monitor fires; 0 disables it.
    std::uint64_t memory_max = 0;
    /// How often the memory monitor samples RSS (at least 2 s).
    std::chrono::nanoseconds memory_period = std::chrono::seconds(5);
    /// Show every hub's fibers as a tree (parents, spawn sites) in reports. Core records parents
    /// and spawn sites for every fiber anyway (a pointer copy at spawn), so this only shapes
    /// the reports.
    bool track_fiber_tree = true;
    /// Capture the stack of a hub blocked in a system call too. The capture signals the hub's
    /// thread, which ends a call the kernel does not restart after a signal handler
    /// (nanosleep, poll, select, epoll_wait, a socket with SO_RCVTIMEO) early with EINTR; code
    /// that retries on EINTR sees nothing. false: such a report names the call and the fiber
    /// but has no stack and no request (the signal brings both), so the blockage is charged to
    /// no plugin's stall budget; the call runs undisturbed.
    bool stacks_in_system_calls = true;
    /// File that receives every report and closing record as one JSON object per line
    /// (appended); empty: none. Rotate it by renaming (logrotate's default): the next line
    /// goes to a new file at the path.
    std::string reports_file;
    /// Reports written per rolling minute; later blockages are counted, not reported, until the
    /// window allows again, except that a hub not reported in the last minute is reported
    /// anyway (so one hub that blocks all the time cannot hide another): at most this many
    /// plus one per hub a minute (of each kind, allowed or not). 0: no limit.
    unsigned reports_per_minute = 60;
    /// Reports kept in memory for /debug/blocking.
    std::size_t recent_reports = 64;
    /// Name of the spdlog logger that prints reports (set in code; the server keeps it).
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

/// Checks settings made in code: max_blocking_time > 0, memory_period >= 2 s,
/// recent_reports >= 1. (The server's key table enforces the same limits on what it reads.)
std::vector<SettingsError> validate(const MonitorSettings& s, std::string_view source = "settings");

}  // namespace weft::monitor
