// The one interface through which blocking reports leave the watchdog: the reporter thread hands
// every report and every closing record to each sink in turn (the log, the JSON-lines file, the
// ring behind /debug/blocking, the subscribers). A new output is a new sink, never a new call site.
#pragma once

#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor::detail {

/// A destination for blocking reports and their closing records.
///
/// Threads: called on the watchdog's reporter thread only, in order (a report before its
/// closing record). A sink that throws is logged by the reporter under name(), and the other
/// sinks still get the record. A slow sink delays later reports, never detection.
class ReportSink {
  public:
    virtual ~ReportSink() = default;
    /// What the failure log calls this sink ("log", "JSON file", ...).
    virtual const char* name() const noexcept = 0;
    /// A new blockage; `r` is complete (symbolized, collapsed against earlier stacks).
    virtual void on_report(const BlockingReport& r) = 0;
    /// A reported blockage ended (blockages that were not reported have no closing record).
    virtual void on_end(const BlockingEnd& e) = 0;
};

}  // namespace weft::monitor::detail
