// The in-memory sink behind /debug/blocking and Watchdog::recent_reports(): the last N reports,
// each with its closing record once the blockage ends.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

#include "report_json.hpp"
#include "report_sink.hpp"

namespace weft::monitor::detail {

/// A ring of the `capacity` most recent reports (oldest dropped first). The newest
/// kFullReports keep every hub's fiber tree and the threads; older ones drop them (their
/// blocked fiber, stack and labels stay).
///
/// Threads: the reporter writes; reports() and entries() may be called from any thread.
class RecentReportsSink final : public ReportSink {
  public:
    static constexpr std::size_t kFullReports = 8;
    explicit RecentReportsSink(std::size_t capacity);
    const char* name() const noexcept override { return "recent reports"; }
    void on_report(const BlockingReport& r) override;
    /// Attaches `e` to its report, if that is still in the ring.
    void on_end(const BlockingEnd& e) override;

    /// The reports, oldest first.
    std::vector<BlockingReport> reports() const;
    /// The reports with their closing records, oldest first.
    std::deque<RingEntry> entries() const;

  private:
    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::deque<RingEntry> ring_;
};

}  // namespace weft::monitor::detail
