// Channel<T>: a bounded FIFO between fibers of one hub (Go's buffered channel, with close).
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

#include "weft/core/wait_queue.hpp"

namespace weft {

/// Blocking: send() parks while the channel is full, recv() while it is empty; both give up at
/// the deadline (Errc::timed_out) or on cancellation (Errc::cancelled). After close(), send()
/// fails with Errc::closed and recv() drains what is left, then fails with Errc::closed.
/// Threads: owned by one hub (its fibers only; SharedSemaphore and SharedPool are shared by
/// all hubs).
template <class T>
class Channel {
  public:
    /// `capacity` values may wait in the channel (at least 1).
    explicit Channel(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

    Result<void> send(T value, Deadline deadline = {}) {
        while (!closed_ && items_.size() >= capacity_) {
            if (auto r = senders_.wait(deadline, "channel send"); !r) return r;
        }
        if (closed_) return Errc::closed;
        items_.push_back(std::move(value));
        receivers_.notify_one();
        return {};
    }
    /// Sends without waiting: Errc::would_block when full, Errc::closed when closed.
    Result<void> try_send(T value) {
        if (closed_) return Errc::closed;
        if (items_.size() >= capacity_) return Errc::would_block;
        items_.push_back(std::move(value));
        receivers_.notify_one();
        return {};
    }
    Result<T> recv(Deadline deadline = {}) {
        while (items_.empty() && !closed_) {
            if (auto r = receivers_.wait(deadline, "channel recv"); !r) return r.error();
        }
        if (items_.empty()) return Errc::closed;
        return pop();
    }
    /// Receives without waiting: Errc::would_block when empty, Errc::closed when closed
    /// and drained.
    Result<T> try_recv() {
        if (items_.empty()) return closed_ ? Errc::closed : Errc::would_block;
        return pop();
    }
    /// Wakes every waiter; later sends fail, receives drain then fail.
    void close() noexcept {
        closed_ = true;
        senders_.notify_all();
        receivers_.notify_all();
    }
    bool closed() const noexcept { return closed_; }
    std::size_t size() const noexcept { return items_.size(); }
    std::size_t capacity() const noexcept { return capacity_; }

  private:
    Result<T> pop() {
        T v = std::move(items_.front());
        items_.pop_front();
        senders_.notify_one();
        return Result<T>(std::move(v));
    }
    std::size_t capacity_;
    bool closed_ = false;
    std::deque<T> items_;
    WaitQueue senders_;
    WaitQueue receivers_;
};

}  // namespace weft
