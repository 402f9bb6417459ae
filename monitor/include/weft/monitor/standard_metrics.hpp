// The metrics every Weft process exports: per-hub latency histograms and counters read from each
// hub's probe, the standard process_* metrics, and weft_build_info. Each is a collector that reads
// its source at scrape time, so a scrape costs the hubs nothing.
#pragma once

#include "weft/core/runtime.hpp"
#include "weft/monitor/metrics.hpp"

namespace weft::monitor {

/// Per hub (label `hub`): weft_hub_run_duration_seconds, weft_hub_schedule_delay_seconds and
/// weft_hub_lag_seconds (histograms, 1-2-5 buckets from 5 us to 10 s),
/// weft_hub_busy_seconds_total, weft_hub_idle_seconds_total, weft_hub_fibers{state},
/// weft_hub_fibers_spawned_total, and weft_patched_calls_total{call} and
/// weft_patched_call_waits_total{call} (syscall patching). For the runtime's offload pool:
/// weft_offload_threads, _max_threads, _busy_threads, _queue_length (gauges),
/// weft_offload_tasks_started_total, _tasks_withdrawn_total and the
/// weft_offload_queue_wait_seconds histogram; the same as weft_resolver_* for the resolver
/// threads (name lookups). `rt` must outlive the handle.
[[nodiscard]] CollectorHandle add_hub_metrics(Registry& registry, const Runtime& rt);

/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds, process_start_time_seconds, process_threads (from /proc).
[[nodiscard]] CollectorHandle add_process_metrics(Registry& registry);

/// weft_build_info{version, compiler, build_type, sanitizers} 1 (an info metric).
[[nodiscard]] CollectorHandle add_build_info(Registry& registry);

}  // namespace weft::monitor
