// JSON for the admin endpoint /debug/blocking: the recent reports with their closing records,
// the distinct stacks with counts, and per-hub totals.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor::detail {

struct RingEntry {
    BlockingReport report;
    std::optional<BlockingEnd> end;
};

struct StackStat {
    std::uint64_t hash = 0;
    std::uint64_t count = 0;
    std::uint64_t first_report = 0;
    std::uint64_t last_report = 0;
    std::vector<StackFrame> frames;
};

/// `hubs`: every hub's totals, by hub index.
std::string debug_blocking_json(bool enabled, double threshold_s,
                                const std::vector<HubBlockingStats>& hubs,
                                const std::deque<RingEntry>& recent,
                                const std::vector<StackStat>& stacks);

}  // namespace weft::monitor::detail
