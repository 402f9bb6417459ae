// Offload thread pool.
#include "thread_pool.hpp"

#include <pthread.h>

#include "weft/core/deadline.hpp"

namespace weft::detail {

ThreadPool::ThreadPool(unsigned threads, std::string name, std::string role)
    : size_(threads ? threads : 1), name_(std::move(name)), role_(std::move(role)) {}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
        t.join();
}

void ThreadPool::submit(UniqueFunction<void()> task) {
    submit(std::make_shared<PoolTask>(std::move(task)));
}

void ThreadPool::submit(std::shared_ptr<PoolTask> task) {
    task->queued_ns_ = now_ns();
    std::unique_lock<std::mutex> g(mu_);
    tasks_.push_back(std::move(task));
    start_thread_if_needed();
    g.unlock();
    cv_.notify_one();
}

// Grow lazily: a thread per queued task until the pool is full. Under mu_.
void ThreadPool::start_thread_if_needed() {
    if (threads_.size() < size_ && tasks_.size() > idle_) {
        unsigned i = static_cast<unsigned>(threads_.size());
        threads_.emplace_back([this, i] { worker(i); });
    }
}

void ThreadPool::worker(unsigned i) {
    std::string tname = name_ + "-" + role_ + "-" + std::to_string(i);
    if (tname.size() > 15) tname.resize(15);
    pthread_setname_np(pthread_self(), tname.c_str());
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        ++idle_;
        cv_.wait(g, [this] { return stop_ || !tasks_.empty(); });
        --idle_;
        if (tasks_.empty()) return;  // stop_ and drained
        std::shared_ptr<PoolTask> task = std::move(tasks_.front());
        tasks_.pop_front();
        int expected = PoolTask::kQueued;
        if (!task->state_.compare_exchange_strong(expected, PoolTask::kTaken,
                                                  std::memory_order_acq_rel)) {
            ++withdrawn_;  // its submitter gave up waiting before a thread was free
            continue;
        }
        ++started_;
        ++busy_;
        queue_wait_.observe(now_ns() - task->queued_ns_);
        g.unlock();
        task->work_();
        task->work_ = nullptr;
        task.reset();
        g.lock();
        --busy_;
    }
}

internal::OffloadStats ThreadPool::stats() const {
    internal::OffloadStats s;
    std::lock_guard<std::mutex> g(mu_);
    s.max_threads = size_;
    s.threads = static_cast<unsigned>(threads_.size());
    s.busy_threads = static_cast<unsigned>(busy_);
    s.queued = tasks_.size();
    s.started = started_;
    s.withdrawn = withdrawn_;
    for (std::size_t b = 0; b < LatencyHistogram::kBuckets; ++b)
        s.queue_wait_buckets[b] = queue_wait_.buckets[b].load(std::memory_order_relaxed);
    s.queue_wait_sum_ns = queue_wait_.sum_ns.load(std::memory_order_relaxed);
    return s;
}

}  // namespace weft::detail
