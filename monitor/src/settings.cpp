// Validation of monitor settings made in code (the configuration checks what it reads itself).
#include "weft/monitor/settings.hpp"

#include <string>

namespace weft::monitor {

namespace {
constexpr double kMinMemoryPeriodS = 2.0;
}  // namespace

std::string SettingsError::message() const {
    return key + "='" + value + "' (" + source + "): expected " + allowed;
}

std::vector<SettingsError> validate(const MonitorSettings& s, std::string_view source) {
    std::vector<SettingsError> errs;
    auto secs = [](std::chrono::nanoseconds d) {
        return std::to_string(std::chrono::duration<double>(d).count());
    };
    // The watchdog looks at most once a millisecond: a shorter threshold would never be met.
    if (s.max_blocking_time < std::chrono::milliseconds(1))
        errs.push_back({"max_blocking_time", std::string(source), secs(s.max_blocking_time),
                        "a duration of at least 1 ms, e.g. 0.1 s"});
    if (s.memory_period < std::chrono::duration<double>(kMinMemoryPeriodS))
        errs.push_back({"memory_period", std::string(source), secs(s.memory_period),
                        "a duration of at least 2 s"});
    if (s.recent_reports == 0)
        errs.push_back({"recent_reports", std::string(source), "0", "at least 1"});
    return errs;
}

}  // namespace weft::monitor
