// FiberGroup: fibers that end before the code that spawned them goes on (structured
// concurrency, as Trio's nursery or Go's errgroup): the way to fan work out over fibers that
// use the spawner's locals.
#pragma once

#include <cstddef>
#include <exception>
#include <source_location>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/core/fiber.hpp"

namespace weft {

/// Children spawned through a group may use the spawner's locals by reference: none outlives
/// the group. join() waits for every child; if the spawner is cancelled meanwhile (its client
/// hung up, the server stops), join() cancels the children and waits until each has ended
/// before it throws weft::Cancelled. The destructor does the same for children still running
/// (an exception is leaving the scope, or join() was not called), and never throws.
///
/// Cancelled children end at their next blocking call; one inside weft::offload() ends when
/// its offloaded function returns (started offloads cannot be interrupted), and the group waits
/// for that. Plain Fiber handles, by contrast, let a fiber run on when they are dropped.
///
///     std::vector<Result> out(n);
///     weft::FiberGroup group;
///     for (std::size_t i = 0; i < n; ++i)
///         group.spawn("fetch", [&, i] { out[i] = fetch(urls[i]); });
///     group.join();  // every child ended: `out` is complete
///
/// Use it from one fiber (the children run on that fiber's hub).
class FiberGroup {
  public:
    /// What a child's failure (an exception it ends with) does to the others.
    enum class OnError : unsigned char {
        /// They run on; join() waits for every child and rethrows the first failure in spawn
        /// order.
        wait_for_all,
        /// The first child to fail cancels the others at once (Go's errgroup.WithContext),
        /// so a fan-out stops when one part of it cannot succeed; join() rethrows that
        /// failure, and the siblings' cancellations it caused are not reported.
        cancel_the_rest,
    };

    explicit FiberGroup(OnError on_error = OnError::wait_for_all) noexcept : on_error_(on_error) {}
    FiberGroup(const FiberGroup&) = delete;
    FiberGroup& operator=(const FiberGroup&) = delete;
    /// Cancels the children still running and waits until they have ended.
    ~FiberGroup();

    /// Starts `fn` as a child (its return value, if any, is dropped: write results through
    /// what it captured). Like weft::spawn(), it first runs when the caller yields or parks.
    template <class F>
    void spawn(std::string_view name, F&& fn,
               std::source_location site = std::source_location::current()) {
        // Room first: a throw after the spawn would leave a child unheld.
        if (children_.size() == children_.capacity())
            children_.reserve(children_.empty() ? 4 : 2 * children_.size());
        children_.push_back(weft::spawn(
            name,
            [this, f = std::forward<F>(fn)]() mutable {
                if (on_error_ == OnError::wait_for_all) {
                    (void)f();
                    return;
                }
                try {
                    (void)f();
                } catch (...) {
                    child_failed(std::current_exception());
                    throw;
                }
            },
            site));
        // A failure came first: a child spawned after it starts cancelled, as a goroutine
        // started under errgroup's cancelled context would.
        if (failure_) children_.back().cancel();
    }

    /// Waits for every child to end, then rethrows the first exception a child ended with (in
    /// spawn order; with OnError::cancel_the_rest, the first failure in time), if any. Throws
    /// weft::Cancelled, once every child has ended, if the calling fiber is cancelled while it
    /// waits. The caller's own deadline does not end the wait: the children inherited it, so their
    /// blocking calls end by then. The group is empty after.
    void join();
    /// Asks every child still running to stop (each wakes with Errc::cancelled).
    void cancel() noexcept;
    /// Children spawned and not joined yet.
    std::size_t size() const noexcept { return children_.size(); }

  private:
    /// Cancels the children and waits until each has ended, whatever happens to the caller;
    /// their outcomes are dropped.
    void cancel_and_wait() noexcept;
    /// OnError::cancel_the_rest: a child ends with `e`; the first real failure (not the
    /// cancellation a sibling's failure caused) cancels the others.
    void child_failed(std::exception_ptr e) noexcept;

    std::vector<Fiber<void>> children_;
    OnError on_error_;
    std::exception_ptr failure_;  // cancel_the_rest: the failure that cancelled the rest
};

}  // namespace weft
