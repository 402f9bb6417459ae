// The run-info dump (gevent's format_run_info): the process's threads, then every hub's fibers as
// a tree with states, wait reasons and spawn sites. Works from any thread, also while every hub
// is blocked (it reads core's thread-safe fiber registry, never a hub's own state).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "weft/core/runtime.hpp"
#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor {

/// Every hub's fibers as trees (depth-first, children by id). With `max_per_hub` > 0 a hub with
/// more fibers lists that many (always including `keep` and its ancestors) and counts the rest.
std::vector<HubFibers> snapshot_hubs(const Runtime& rt, std::size_t max_per_hub = 0,
                                     FiberId keep = 0);

/// Every thread of the process; hub threads of `rt` are marked with their hub.
std::vector<ThreadInfo> snapshot_threads(const Runtime* rt = nullptr);

/// The whole dump as text, at most `max_per_hub` fibers of each hub (0: all; the dump says how
/// many it left out). Thread-safe.
std::string format_run_info(const Runtime& rt, std::size_t max_per_hub = 0);

}  // namespace weft::monitor
