// ThreadPool: plain OS threads for offload() and resolve(). Started lazily on first use.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weft/core/unique_function.hpp"

namespace weft::detail {

class ThreadPool {
  public:
    ThreadPool(unsigned threads, std::string name);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Queues `task` (must not throw). Thread-safe.
    void submit(UniqueFunction<void()> task);
    unsigned size() const noexcept { return size_; }

  private:
    void worker(unsigned i);
    std::size_t idle_hint() const noexcept { return idle_; }
    unsigned size_;
    std::size_t idle_ = 0;
    std::string name_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<UniqueFunction<void()>> tasks_;
    std::vector<std::thread> threads_;
    bool stop_ = false;
};

}  // namespace weft::detail
