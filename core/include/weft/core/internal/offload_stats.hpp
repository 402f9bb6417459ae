// Engine hooks, not for handler authors: what the offload pool reports for the metrics (the
// monitor renders them). Not installed with the SDK.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "weft/core/latency_histogram.hpp"

namespace weft {

class Runtime;

namespace internal {

/// A snapshot of the runtime's offload pool.
struct OffloadStats {
    unsigned max_threads = 0;   ///< the pool's size (offload_threads, resolver_threads)
    unsigned threads = 0;       ///< threads started so far (they start on demand)
    unsigned busy_threads = 0;  ///< running a task now
    std::size_t queued = 0;     ///< tasks waiting for a thread (withdrawn ones included)
    std::uint64_t started = 0;  ///< tasks a thread has taken
    /// Tasks whose submitter stopped waiting (deadline or cancel) before a thread took them.
    std::uint64_t withdrawn = 0;
    /// Time from submission to a thread taking the task, LatencyHistogram's buckets.
    std::array<std::uint64_t, LatencyHistogram::kBuckets> queue_wait_buckets{};
    std::uint64_t queue_wait_sum_ns = 0;
};

OffloadStats offload_stats(const Runtime& rt);
/// The same for the runtime's resolver threads (name lookups).
OffloadStats resolver_stats(const Runtime& rt);

}  // namespace internal
}  // namespace weft
