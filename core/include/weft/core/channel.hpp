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
/// Fair, as Go's channels: parked senders and receivers go in the order they came. A send while
/// receivers wait gives the longest waiter a value, and room made while senders wait is the
/// longest waiter's: a newcomer (or try_send/try_recv) cannot take either before the waiter
/// runs. (Values still leave in the order they were sent.)
/// Threads: owned by one hub (its fibers only; SharedSemaphore and SharedPool are shared by
/// all hubs).
template <class T>
class Channel {
  public:
    /// `capacity` values may wait in the channel (at least 1).
    explicit Channel(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

    Result<void> send(T value, Deadline deadline = {}) {
        receivers_.claim("Channel", idle());  // one hub's: see WaitQueue::claim()
        if (closed_) return Errc::closed;
        if (!room()) {
            if (auto r = senders_.wait(deadline, "channel send"); !r) return r;
            // Woken with the room a receiver made for us, or by close().
            if (closed_) return Errc::closed;
            try {
                items_.push_back(std::move(value));
            } catch (...) {
                // The room goes to the next waiting sender, or back to anyone.
                if (!senders_.notify_one()) --slots_handed_;
                throw;
            }
            --slots_handed_;
            if (receivers_.notify_one()) ++items_handed_;
            return {};
        }
        push(std::move(value));
        return {};
    }
    /// Sends without waiting: Errc::would_block when full, Errc::closed when closed.
    Result<void> try_send(T value) {
        if (closed_) return Errc::closed;
        if (!room()) return Errc::would_block;
        push(std::move(value));
        return {};
    }
    Result<T> recv(Deadline deadline = {}) {
        receivers_.claim("Channel", idle());
        if (free_items() > 0 || (closed_ && !items_.empty())) return pop();
        if (closed_) return Errc::closed;
        if (auto r = receivers_.wait(deadline, "channel recv"); !r) return r.error();
        // Woken with a value of our own, or by close() (then whatever is left, if anything).
        if (items_.empty()) return Errc::closed;
        return pop(true);
    }
    /// Receives without waiting: Errc::would_block when empty, Errc::closed when closed
    /// and drained.
    Result<T> try_recv() {
        if (free_items() > 0 || (closed_ && !items_.empty())) return pop();
        return closed_ && items_.empty() ? Errc::closed : Errc::would_block;
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
    // Nothing in it, handed on or waiting: another hub may take it over (WaitQueue::claim).
    bool idle() const noexcept {
        return items_.empty() && slots_handed_ == 0 && items_handed_ == 0 && senders_.empty() &&
               receivers_.empty();
    }
    // Room for a newcomer: not counting the room already handed to woken senders.
    bool room() const noexcept { return items_.size() + slots_handed_ < capacity_; }
    // Values a newcomer may take: not counting those handed to woken receivers.
    std::size_t free_items() const noexcept {
        return items_.size() > items_handed_ ? items_.size() - items_handed_ : 0;
    }
    void push(T&& value) {
        items_.push_back(std::move(value));
        if (receivers_.notify_one()) ++items_handed_;
    }
    // `handed`: the caller was woken with a value of its own (it is counted in items_handed_).
    Result<T> pop(bool handed = false) {
        Result<T> out = [&] {
            try {
                return Result<T>(std::move(items_.front()));
            } catch (...) {
                // The value stays; what was ours goes to the next waiting receiver, or to anyone.
                if (handed && !receivers_.notify_one() && items_handed_ > 0) --items_handed_;
                throw;
            }
        }();
        if (handed && items_handed_ > 0) --items_handed_;
        items_.pop_front();
        if (!closed_ && senders_.notify_one()) ++slots_handed_;
        return out;
    }
    std::size_t capacity_;
    bool closed_ = false;
    std::deque<T> items_;
    std::size_t items_handed_ = 0;  // values that woken receivers will take
    std::size_t slots_handed_ = 0;  // room that woken senders will fill
    WaitQueue senders_;
    WaitQueue receivers_;
};

}  // namespace weft
