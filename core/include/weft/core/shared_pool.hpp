// SharedPool<T>: a bounded pool of resources (database connections, clients) that fibers of
// every hub borrow and give back, waiting without blocking their hub when all are lent out.
// Built on SharedSemaphore; one-hub code may prefer a Channel of resources.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"
#include "weft/core/shared_semaphore.hpp"

namespace weft {

/// At most `max_size` resources of type T, made by `make` when a borrower finds none idle and
/// the pool is below its size, kept idle between uses.
///
/// Blocking: acquire() parks the calling fiber (or blocks a thread that is no hub) while every
/// resource is lent out, until the deadline (the fiber's own deadline included:
/// Errc::timed_out) or a cancel (Errc::cancelled); in a hub's posted task it does not wait
/// (Errc::would_block), as SharedSemaphore::acquire(). `make` runs in the borrower's fiber, outside
/// the pool's lock, and may block cooperatively (connect to a database); if it throws, the slot is
/// given back and the exception reaches the borrower. Threads: any thread. A Lease must be released
/// (destroyed) by the thread or hub that holds it; it may move between fibers of one hub.
template <class T>
class SharedPool {
  public:
    class Lease {
      public:
        Lease() = default;
        Lease(Lease&& o) noexcept
            : pool_(std::exchange(o.pool_, nullptr)), item_(std::move(o.item_)) {}
        Lease& operator=(Lease&& o) noexcept {
            if (this != &o) {
                give_back();
                pool_ = std::exchange(o.pool_, nullptr);
                item_ = std::move(o.item_);
            }
            return *this;
        }
        ~Lease() { give_back(); }

        T& operator*() const noexcept { return *item_; }
        T* operator->() const noexcept { return item_.get(); }
        T* get() const noexcept { return item_.get(); }
        explicit operator bool() const noexcept { return item_ != nullptr; }
        /// The resource is broken (a dropped connection): destroy it instead of giving it back;
        /// the pool makes a fresh one when next needed.
        void discard() noexcept {
            if (!pool_) return;
            item_.reset();
            pool_->permits_.release();
            pool_ = nullptr;
        }

      private:
        friend class SharedPool;
        Lease(SharedPool* p, std::unique_ptr<T> item) noexcept : pool_(p), item_(std::move(item)) {}
        void give_back() noexcept {
            if (!pool_) return;
            pool_->put_back(std::move(item_));
            pool_ = nullptr;
        }
        SharedPool* pool_ = nullptr;
        std::unique_ptr<T> item_;
    };

    SharedPool(std::size_t max_size, std::function<std::unique_ptr<T>()> make)
        : permits_(max_size), make_(std::move(make)) {
        idle_.reserve(max_size);  // put_back() never allocates
    }
    SharedPool(const SharedPool&) = delete;
    SharedPool& operator=(const SharedPool&) = delete;

    /// Borrows a resource: an idle one, or a new one while the pool is below its size.
    [[nodiscard]] Result<Lease> acquire(Deadline deadline = {}) {
        if (auto r = permits_.acquire(deadline); !r) return r.error();
        {
            std::lock_guard<std::mutex> g(mu_);
            if (!idle_.empty()) {
                std::unique_ptr<T> item = std::move(idle_.back());
                idle_.pop_back();
                return Lease(this, std::move(item));
            }
        }
        std::unique_ptr<T> item;
        try {
            item = make_();
        } catch (...) {
            permits_.release();
            throw;
        }
        if (!item) {
            permits_.release();
            return Error(Errc::unavailable);
        }
        return Lease(this, std::move(item));
    }

    /// Resources lying idle now.
    std::size_t idle() const {
        std::lock_guard<std::mutex> g(mu_);
        return idle_.size();
    }
    /// Borrowers waiting for a resource now.
    std::size_t waiting() const noexcept { return permits_.waiting(); }

  private:
    void put_back(std::unique_ptr<T> item) noexcept {
        if (item) {
            std::lock_guard<std::mutex> g(mu_);
            idle_.push_back(std::move(item));  // vector capacity: at most max_size, kept
        }
        permits_.release();
    }

    SharedSemaphore permits_;
    std::function<std::unique_ptr<T>()> make_;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<T>> idle_;
};

}  // namespace weft
