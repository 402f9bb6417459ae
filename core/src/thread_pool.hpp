// ThreadPool: plain OS threads for offload() and the resolver (gevent's threadpool). Threads
// start lazily, one per queued task, up to the pool's size. A task may be withdrawn while it
// is still queued (an offload whose deadline passed first). The pool counts what it does for
// the metrics: queue length, busy threads, and how long tasks waited in the queue.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weft/core/internal/offload_stats.hpp"
#include "weft/core/latency_histogram.hpp"
#include "weft/core/unique_function.hpp"

namespace weft::detail {

/// One queued piece of work. A task runs at most once; withdraw() keeps it from starting.
class PoolTask {
  public:
    explicit PoolTask(UniqueFunction<void()> work) : work_(std::move(work)) {}
    /// Stops the task from starting; false when a thread has already taken it.
    bool withdraw() noexcept {
        int expected = kQueued;
        return state_.compare_exchange_strong(expected, kWithdrawn, std::memory_order_acq_rel);
    }

  private:
    friend class ThreadPool;
    static constexpr int kQueued = 0, kTaken = 1, kWithdrawn = 2;
    std::atomic<int> state_{kQueued};
    UniqueFunction<void()> work_;
    std::int64_t queued_ns_ = 0;
};

class ThreadPool {
  public:
    /// Threads are started as work comes, up to `threads`, named "<name>-<role>-<index>".
    ThreadPool(unsigned threads, std::string name, std::string role);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Queues `task` (must not throw). Thread-safe.
    void submit(UniqueFunction<void()> task);
    /// Queues a task that its submitter may withdraw while it waits. Thread-safe.
    void submit(std::shared_ptr<PoolTask> task);
    unsigned size() const noexcept { return size_; }
    /// What the pool is doing now and has done. Thread-safe.
    internal::OffloadStats stats() const;

  private:
    void worker(unsigned i);
    void start_thread_if_needed();
    unsigned size_;
    std::size_t idle_ = 0;
    std::size_t busy_ = 0;
    std::string name_;
    std::string role_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<PoolTask>> tasks_;
    std::vector<std::thread> threads_;
    bool stop_ = false;
    // Under mu_: one writer at a time.
    std::uint64_t started_ = 0;
    std::uint64_t withdrawn_ = 0;
    LatencyHistogram queue_wait_;
};

}  // namespace weft::detail
