// WaitQueue and the primitives built on it: Mutex, Semaphore, WaitGroup.
#include "weft/core/wait_queue.hpp"

#include <atomic>
#include <string>
#include <string_view>

#include "hub_impl.hpp"
#include "weft/core/check.hpp"
#include "weft/core/log.hpp"
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

// A fiber of another hub, or a thread that is no hub's, touched a primitive a hub's fibers use.
[[noreturn]] void wrong_hub(const char* what, unsigned owner_index, const detail::HubImpl* hub) {
    std::string msg = std::string("weft::") + what + " belongs to the fibers of hub " +
                      std::to_string(owner_index) + " (its first user), but ";
    if (hub)
        msg += "a fiber of hub " + std::to_string(hub->index_value()) +
               " used it: give each hub its own (hubs share nothing), or use SharedSemaphore "
               "or SharedPool across hubs";
    else
        msg +=
            "a thread that is no hub's (offload(), a plain thread) used it: post the work "
            "to its hub (Hub::post), or use SharedSemaphore across threads";
    throw UsageError(msg);
}

// A notify from a thread that is not the waiter's hub: its make_ready would race with that
// hub (it cannot be made safe from here). Said once, loudly.
void foreign_notify(const detail::HubImpl* waiter_hub) noexcept {
    static std::atomic<bool> said{false};
    if (said.exchange(true)) return;
    try {
        weft::logger()->error(
            "a weft::Mutex, Semaphore, Event, Channel or WaitGroup of hub {} was released, set "
            "or sent to from another thread (another hub's fiber, offload(), a plain thread): "
            "these primitives belong to one hub's fibers, and its waiter may not wake or the "
            "hub's state may be corrupted; wake a hub's fibers from elsewhere with Hub::post",
            waiter_hub->index_value());
    } catch (...) {
    }
}
}  // namespace

void WaitQueue::claim(const char* what, bool idle) {
    auto* hub = detail::HubImpl::current();
    void* owner = owner_.load(std::memory_order_relaxed);
    if (owner == hub) return;
    if (!hub) {
        if (!owner) return;  // no hub has used it yet (a plugin's init)
        wrong_hub(what, owner_index_.load(std::memory_order_relaxed), hub);
    }
    // The first hub to use it, or (idle) the next one, owns it.
    if ((owner == nullptr && owner_.compare_exchange_strong(owner, hub)) ||
        (idle && owner_.compare_exchange_strong(owner, hub))) {
        owner_index_.store(hub->index_value(), std::memory_order_relaxed);
        return;
    }
    wrong_hub(what, owner_index_.load(std::memory_order_relaxed), hub);
}

Result<void> WaitQueue::wait(Deadline deadline, const char* reason) {
    detail::HubImpl* hub = detail::HubImpl::current();
    if (!hub || !hub->running())
        throw UsageError(std::string("weft::") + reason_owner(reason) +
                         " waited for outside a fiber (a thread of offload(), a plain thread, "
                         "Hub::post): it belongs to one hub's fibers; from threads use "
                         "SharedSemaphore, or post to the hub");
    claim(reason_owner(reason), empty());
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
    if (n->fiber->hub != detail::HubImpl::current()) [[unlikely]]
        foreign_notify(n->fiber->hub);
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
    waiters_.claim("Mutex", !locked_ && waiters_.empty());
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
    // Never idle: permits taken by the owner's fibers come back on the owner's thread.
    waiters_.claim("Semaphore", false);
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
