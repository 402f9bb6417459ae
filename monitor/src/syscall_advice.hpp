// What a report says about a hub blocked in a system call: where the call came from (the first
// frame outside the system libraries) and what syscall patching does about it, with what to do
// instead ("use weft::offload", "use weft::sleep_for"...).
#pragma once

#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor::detail {

/// Fills r.caller_module/caller_function, r.syscall_patchable, r.patching_on and r.advice from
/// r.syscall, r.syscall_detail, r.cause and r.stack (symbolized); for a report on a CPU, or
/// waiting for one, only r.advice. `patching_on`: whether the
/// hub's runtime patches blocking calls.
void explain_system_call(BlockingReport& r, bool patching_on);

}  // namespace weft::monitor::detail
