// The ring of recent reports.
#include "recent_reports_sink.hpp"

namespace weft::monitor::detail {

RecentReportsSink::RecentReportsSink(std::size_t capacity) : capacity_(capacity) {}

void RecentReportsSink::on_report(const BlockingReport& r) {
    std::lock_guard<std::mutex> g(mu_);
    ring_.push_back({r, std::nullopt});
    while (ring_.size() > capacity_)
        ring_.pop_front();
    // Every hub's fiber tree and the thread list are the bulk of a report (megabytes with
    // thousands of fibers): only the newest reports keep them.
    if (ring_.size() > kFullReports) {
        BlockingReport& older = ring_[ring_.size() - 1 - kFullReports].report;
        std::vector<HubFibers>().swap(older.hubs);
        std::vector<ThreadInfo>().swap(older.threads);
    }
}

void RecentReportsSink::on_end(const BlockingEnd& e) {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& entry : ring_)
        if (entry.report.id == e.report_id) entry.end = e;
}

std::vector<BlockingReport> RecentReportsSink::reports() const {
    std::lock_guard<std::mutex> g(mu_);
    std::vector<BlockingReport> out;
    out.reserve(ring_.size());
    for (const auto& entry : ring_)
        out.push_back(entry.report);
    return out;
}

std::deque<RingEntry> RecentReportsSink::entries() const {
    std::lock_guard<std::mutex> g(mu_);
    return ring_;
}

}  // namespace weft::monitor::detail
