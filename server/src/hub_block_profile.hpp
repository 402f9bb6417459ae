// Hub-blocking time by stack, route, plugin and kind, since the server started: what
// /debug/pprof/hubblock serves. Fed with the watchdog's reports (stack, request labels, CPU or
// system call) and their closing records (measured duration); a blockage counts once it ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "weft/monitor/blocking_report.hpp"
#include "weft/monitor/pprof.hpp"

namespace weft::server {

/// "cpu", "syscall", "waiting_for_cpu" or "unknown": a blockage's kind as profiles label it
/// (the hub-blocking profile adds " (allowed)" for blocking the code allowed).
const char* blocking_kind(monitor::BlockingCause c) noexcept;
/// Whether a blockage counts against the stall budget (and the blocking time) of the plugin
/// whose code held the hub: not when the code allowed it (monitor::AllowBlocking), nor when the
/// hub was runnable but starved of a CPU (`waiting_for_cpu`: an overloaded machine or a
/// throttled cgroup, which every plugin suffers alike).
bool charges_plugin(const monitor::BlockingReport& r) noexcept;
/// The same for the part of a blockage after its report, judged on what held the hub then
/// (BlockingEnd::cause_after_report); when that is unknown, `report_charged` (the report's).
bool charges_plugin(const monitor::BlockingEnd& e, bool report_charged) noexcept;
/// The value of a report's request label ("route", "method"...), or "".
std::string report_label(const monitor::BlockingReport& r, std::string_view key);

class HubBlockProfile {
  public:
    struct Entry {
        std::vector<monitor::StackFrame> stack;
        std::string route, plugin, kind;
        std::int64_t blockages = 0;
        std::int64_t ns = 0;
    };
    /// Keyed by stack, route, plugin and kind.
    using Totals = std::map<std::string, Entry>;

    /// A report (the reporter thread): remembered until its closing record.
    void on_report(const monitor::BlockingReport& r, std::string plugin);
    /// What a closing record added: its plugin, the time counted at the report, and whether
    /// the time after the report charges the plugin (charges_plugin(BlockingEnd, ...)).
    struct Ended {
        std::string plugin;
        std::chrono::nanoseconds reported{0};
        std::chrono::nanoseconds total{0};
        bool charged = true;
    };
    /// The closing record of a report seen by on_report(); nullopt for any other.
    std::optional<Ended> on_end(const monitor::BlockingEnd& e);

    /// Every ended blockage so far. Thread-safe.
    Totals totals() const;
    /// `now` minus `base` (or all of `now`) as a pprof profile: sample types blockages/count and
    /// blocked/nanoseconds, labels route, plugin and kind.
    static monitor::PprofProfile to_pprof(const Totals& now, const Totals* base,
                                          std::int64_t start_unix_ns, std::int64_t duration_ns);

  private:
    struct Open {
        std::string key;
        Entry entry;
        std::int64_t reported_ns = 0;
        bool charged = true;
    };
    mutable std::mutex mu_;
    std::map<std::uint64_t, Open> open_;  // report id -> its blockage, until it ends
    Totals totals_;
};

}  // namespace weft::server
