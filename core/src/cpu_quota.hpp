// How many CPUs this process may use: the affinity mask, capped by the cgroup CPU quota
// (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us), as a container sees it.
#pragma once

#include <string>

namespace weft::detail {

/// CPUs allowed by the quota of the cgroup of this process, looked up under `root` (tests pass a
/// fake tree; "" is the real one): 0 when there is no limit.
unsigned cgroup_cpu_limit(const std::string& root = "");
/// Parses cpu.max ("max 100000" or "150000 100000"): ceil(quota/period), 0 for no limit.
unsigned parse_cpu_max(const std::string& text);
/// ceil(quota/period) for v1 values; 0 when quota is -1 (no limit).
unsigned quota_to_cpus(long long quota, long long period);

}  // namespace weft::detail
