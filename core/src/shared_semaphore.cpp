// SharedSemaphore: a mutex-guarded count and a FIFO of waiters, each a fiber (woken through its
// hub, by a post when the releasing thread is another) or a thread (woken by its condition
// variable). A permit is handed to a waiter under the lock (granted), so a waiter that times
// out at the same moment either withdraws before the grant or keeps the permit it was given.
#include "weft/core/shared_semaphore.hpp"

#include "hub_impl.hpp"

namespace weft::detail {

struct SharedWaiter final : Interruptible {
    SharedSemaphore* sem = nullptr;
    SharedWaiter* prev = nullptr;
    SharedWaiter* next = nullptr;
    HubImpl* hub = nullptr;  ///< a fiber's hub, or nullptr for a thread
    FiberRecord* fiber = nullptr;
    std::condition_variable* cv = nullptr;  ///< a thread's
    bool granted = false;

    void unlink() noexcept {
        (prev ? prev->next : sem->head_) = next;
        (next ? next->prev : sem->tail_) = prev;
        prev = next = nullptr;
        --sem->waiting_;
    }
    // On the fiber's own hub: a deadline or cancel. A waiter already granted its permit keeps
    // it: the grant's wakeup is on its way.
    void interrupt(FiberRecord* f, Errc why) noexcept override {
        {
            std::lock_guard<std::mutex> g(sem->mu_);
            if (granted) return;
            unlink();
        }
        hub->make_ready(f, why);
    }
};

}  // namespace weft::detail

namespace weft {

using detail::SharedWaiter;

SharedSemaphore::~SharedSemaphore() {
    WEFT_CHECK(head_ == nullptr, "SharedSemaphore destroyed while fibers or threads wait on it");
}

Result<void> SharedSemaphore::acquire(Deadline deadline) {
    detail::HubImpl* hub = detail::HubImpl::current();
    detail::FiberRecord* me = hub ? hub->running() : nullptr;
    if (me) {
        if (auto r = hub->check_interrupt(deadline); !r) return r;
    }
    std::unique_lock<std::mutex> g(mu_);
    if (permits_ > 0 && head_ == nullptr) {
        --permits_;
        return {};
    }
    // On a hub's thread outside its fibers (a posted task, the loop): waiting would stall every
    // fiber of the hub, and a holder among them could never release. Say so instead.
    if (hub && !me) return Errc::would_block;
    SharedWaiter w;
    w.sem = this;
    w.prev = tail_;
    (tail_ ? tail_->next : head_) = &w;
    tail_ = &w;
    ++waiting_;
    if (me) {
        w.hub = hub;
        w.fiber = me;
        g.unlock();
        auto r = hub->park(&w, deadline, "shared semaphore");
        // Granted: the permit is ours whatever else happened meanwhile.
        std::lock_guard<std::mutex> relock(mu_);
        if (w.granted) return {};
        return r;
    }
    std::condition_variable cv;
    w.cv = &cv;
    const bool timed = !deadline.is_never();
    while (!w.granted) {
        if (timed) {
            if (cv.wait_until(g, deadline.time_point()) == std::cv_status::timeout && !w.granted) {
                w.unlink();
                return Errc::timed_out;
            }
        } else {
            cv.wait(g);
        }
    }
    return {};
}

bool SharedSemaphore::try_acquire() noexcept {
    std::lock_guard<std::mutex> g(mu_);
    if (permits_ == 0 || head_ != nullptr) return false;
    --permits_;
    return true;
}

void SharedSemaphore::release(std::size_t n) noexcept {
    // Wake outside the lock: a waiter on this thread's hub is made ready directly, one on
    // another hub through a post, a thread through its condition variable.
    SharedWaiter* woken[16];
    std::size_t count = 0;
    for (;;) {
        {
            std::lock_guard<std::mutex> g(mu_);
            while (n > 0 && head_ && count < std::size(woken)) {
                SharedWaiter* w = head_;
                w->unlink();
                w->granted = true;
                if (w->cv)
                    w->cv->notify_one();  // under the lock: the thread cannot leave before
                else
                    woken[count++] = w;
                --n;
            }
            if (n == 0 || !head_) {
                permits_ += n;
                n = 0;
            }
        }
        for (std::size_t i = 0; i < count; ++i) {
            // The waiter's node may vanish once its fiber runs: copy what the wakeup needs.
            detail::HubImpl* h = woken[i]->hub;
            detail::FiberRecord* f = woken[i]->fiber;
            if (h == detail::HubImpl::current())
                h->make_ready(f, Errc::ok);
            else
                h->post_any([h, f] { h->make_ready(f, Errc::ok); });
        }
        count = 0;
        if (n == 0) return;
    }
}

std::size_t SharedSemaphore::available() const noexcept {
    std::lock_guard<std::mutex> g(mu_);
    return permits_;
}

std::size_t SharedSemaphore::waiting() const noexcept {
    std::lock_guard<std::mutex> g(mu_);
    return waiting_;
}

}  // namespace weft
