// Offload thread pool.
#include "thread_pool.hpp"

#include <pthread.h>

namespace weft::detail {

ThreadPool::ThreadPool(unsigned threads, std::string name)
    : size_(threads ? threads : 1), name_(std::move(name)) {}

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
    std::unique_lock<std::mutex> g(mu_);
    tasks_.push_back(std::move(task));
    // Grow lazily: a thread per queued task until the pool is full.
    if (threads_.size() < size_ && tasks_.size() > idle_hint()) {
        unsigned i = static_cast<unsigned>(threads_.size());
        threads_.emplace_back([this, i] { worker(i); });
    }
    g.unlock();
    cv_.notify_one();
}

void ThreadPool::worker(unsigned i) {
    std::string tname = name_ + "-off-" + std::to_string(i);
    if (tname.size() > 15) tname.resize(15);
    pthread_setname_np(pthread_self(), tname.c_str());
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        ++idle_;
        cv_.wait(g, [this] { return stop_ || !tasks_.empty(); });
        --idle_;
        if (tasks_.empty()) return;  // stop_ and drained
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        g.unlock();
        task();
        task = nullptr;
        g.lock();
    }
}

}  // namespace weft::detail
