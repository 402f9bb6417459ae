// A CPU profile of a runtime's hub threads by sampling: the watchdog's signal-based stack
// capture, taken `hz` times a second from each hub thread that is on a CPU, symbolized and
// returned as a pprof profile (what /debug/pprof/profile serves).
#pragma once

#include <atomic>
#include <chrono>

#include "weft/core/runtime.hpp"
#include "weft/monitor/pprof.hpp"

namespace weft::monitor {

struct CpuProfileOptions {
    std::chrono::nanoseconds duration = std::chrono::seconds(30);
    int hz = 100;  ///< samples per second and hub thread, 1..1000
    /// When set and it becomes true, sampling ends early (the runtime is about to go).
    const std::atomic<bool>* stop = nullptr;
    /// The same for the one who asked (a client that hung up).
    const std::atomic<bool>* cancel = nullptr;
};

/// Samples `rt`'s hub threads for `options.duration`. A hub thread is sampled only while it is
/// runnable (state R) and its hub is not idle, so time spent sleeping in the kernel is not CPU
/// time here (the hub-blocking profile shows it). Each sample is labelled with the hub and,
/// when the running fiber serves a request, its route. Sample types: samples/count and
/// cpu/nanoseconds (one period per sample).
///
/// Blocking: the calling thread sleeps between samples for the whole duration; never call it
/// on a hub (use offload). Threads: any thread; several profiles may run at once (each takes a
/// capture slot; throws std::runtime_error when stack capture is unavailable).
PprofProfile sample_cpu_profile(const Runtime& rt, const CpuProfileOptions& options);

}  // namespace weft::monitor
