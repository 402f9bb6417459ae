// WaitQueue and the primitives built on it: Mutex, Semaphore, WaitGroup.
#include "weft/core/wait_queue.hpp"

#include <string>
#include <string_view>

#include "hub_impl.hpp"
#include "weft/core/check.hpp"
#include "weft/core/mutex.hpp"
#include "weft/core/semaphore.hpp"
#include "weft/core/wait_group.hpp"

namespace weft {
namespace detail {

struct WaitNode final : Interruptible {
    WaitQueue* q = nullptr;
    WaitNode* prev = nullptr;
    WaitNode* next = nullptr;
    FiberRecord* fiber = nullptr;

    void unlink() noexcept {
        if (prev)
            prev->next = next;
        else
            q->head_ = next;
        if (next)
            next->prev = prev;
        else
            q->tail_ = prev;
        prev = next = nullptr;
    }
    void interrupt(FiberRecord* f, Errc why) noexcept override {
        unlink();
        f->hub->make_ready(f, why);
    }
};

}  // namespace detail

WaitQueue::~WaitQueue() {
    // Waiters outliving their queue are a bug in the owner; wake them rather than hang them.
    while (head_) {
        detail::WaitNode* n = head_;
        n->unlink();
        n->fiber->hub->make_ready(n->fiber, Errc::closed);
    }
}

namespace {
// The primitive a wait reason belongs to, for a misuse's message.
const char* reason_owner(const char* reason) noexcept {
    const std::string_view r = reason ? reason : "";
    if (r == "lock") return "Mutex";
    if (r == "semaphore") return "Semaphore";
    if (r == "waitgroup") return "WaitGroup";
    if (r == "event") return "Event";
    if (r.starts_with("channel")) return "Channel";
    return "WaitQueue";
}
}  // namespace

Result<void> WaitQueue::wait(Deadline deadline, const char* reason) {
    detail::HubImpl* hub = detail::HubImpl::current();
    if (!hub || !hub->running())
        throw UsageError(std::string("weft::") + reason_owner(reason) +
                         " waited for outside a fiber (a thread of offload(), a plain thread, "
                         "Hub::post): it belongs to one hub's fibers; from threads use "
                         "SharedSemaphore, or post to the hub");
    if (auto r = hub->check_interrupt(deadline); !r) return r;
    detail::WaitNode n;
    n.q = this;
    n.fiber = hub->running();
    n.prev = tail_;
    if (tail_)
        tail_->next = &n;
    else
        head_ = &n;
    tail_ = &n;
    return hub->park(&n, deadline, reason);
}

bool WaitQueue::notify_one() noexcept {
    detail::WaitNode* n = head_;
    if (!n) return false;
    n->unlink();
    n->fiber->hub->make_ready(n->fiber, Errc::ok);
    return true;
}

std::size_t WaitQueue::notify_all() noexcept {
    std::size_t count = 0;
    while (notify_one())
        ++count;
    return count;
}

Result<void> Mutex::lock(Deadline deadline) {
    if (!locked_) {
        locked_ = true;
        return {};
    }
    return waiters_.wait(deadline, "lock");  // ok: unlock() handed us the lock
}

void Mutex::unlock() noexcept {
    WEFT_ASSERT(locked_, "unlock() of an unlocked Mutex");
    if (!waiters_.notify_one()) locked_ = false;
}

Result<void> Semaphore::acquire(Deadline deadline) {
    if (permits_ > 0 && waiters_.empty()) {
        --permits_;
        return {};
    }
    return waiters_.wait(deadline, "semaphore");  // ok: release() handed us a permit
}

void Semaphore::release(std::size_t n) noexcept {
    for (; n > 0; --n)
        if (!waiters_.notify_one()) ++permits_;
}

void WaitGroup::add(std::int64_t n) {
    if (count_ + n < 0)
        throw UsageError("WaitGroup counter would go negative (done() more often than add())");
    count_ += n;
    if (count_ == 0) waiters_.notify_all();
}

Result<void> WaitGroup::wait(Deadline deadline) {
    if (count_ == 0) return {};
    return waiters_.wait(deadline, "waitgroup");
}

}  // namespace weft
