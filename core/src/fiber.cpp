// Spawning, joining and cancelling fibers; the this_fiber API.
#include <thread>

#include "hub_impl.hpp"
#include "log.hpp"

namespace weft::detail {

FiberRecord* spawn_fiber(Hub* hub, const SpawnRequest& req) {
    HubImpl* h = HubImpl::current();
    WEFT_CHECK(h != nullptr, "spawn() must run on a hub thread (inside weft::run or a fiber)");
    WEFT_CHECK(hub == nullptr || hub == h,
               "spawn_on(): the hub must be the calling thread's; use hub.post() to reach another");
    return h->spawn(req);
}

void* fiber_state(FiberRecord* f) noexcept {
    return f->user_state;
}
FiberId fiber_id(const FiberRecord* f) noexcept {
    return f->id;
}
bool fiber_done(const FiberRecord* f) noexcept {
    return f->join_word.load(std::memory_order_acquire) == FiberRecord::kJoinDone;
}

void fiber_release(FiberRecord* f) noexcept {
    HubImpl* owner = f->hub;
    if (HubImpl::current() != owner) {
        owner->post_any([f] { fiber_release(f); });
        return;
    }
    // On the owner's thread nothing races: if it finished, its error is ours to report.
    if (fiber_done(f)) report_unobserved_error(f);
    owner->release_record(f);
}

namespace {
struct JoinWaiter final : Interruptible {
    FiberRecord* target;
    void interrupt(FiberRecord* me, Errc why) noexcept override {
        std::uintptr_t expected = reinterpret_cast<std::uintptr_t>(me);
        // If the target finished meanwhile, its wake-up is on the way: let that one wake us.
        if (target->join_word.compare_exchange_strong(expected, 0, std::memory_order_acq_rel))
            me->hub->make_ready(me, why);
    }
};
}  // namespace

Result<void> fiber_wait(FiberRecord* f, Deadline deadline) {
    WEFT_CHECK(f != nullptr, "wait() on an empty Fiber handle");
    HubImpl* hub = HubImpl::current();
    FiberRecord* me = hub ? hub->running() : nullptr;
    if (fiber_done(f)) {
        f->joined = true;
        return {};
    }
    if (!me) {
        // A plain thread waiting for a fiber: poll, there is no hub to park on.
        while (!fiber_done(f)) {
            if (deadline.passed()) return Errc::timed_out;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        f->joined = true;
        return {};
    }
    WEFT_CHECK(me != f, "a fiber cannot join itself");
    if (auto r = hub->check_interrupt(deadline); !r) return r;
    std::uintptr_t expected = 0;
    if (!f->join_word.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(me),
                                              std::memory_order_acq_rel)) {
        WEFT_CHECK(expected == FiberRecord::kJoinDone, "two fibers join the same fiber");
        f->joined = true;
        return {};
    }
    JoinWaiter w;
    w.target = f;
    auto r = hub->park(&w, deadline, "join");
    if (r) f->joined = true;
    return r;
}

void fiber_cancel(FiberRecord* f) noexcept {
    HubImpl* owner = f->hub;
    if (HubImpl::current() == owner) {
        owner->cancel_fiber(f);
        return;
    }
    f->refs.fetch_add(1, std::memory_order_relaxed);  // keep the record alive until we run
    owner->post_any([owner, f] {
        owner->cancel_fiber(f);
        owner->release_record(f);
    });
}

[[noreturn]] void throw_cancelled() {
    throw Cancelled();
}

}  // namespace weft::detail

namespace weft::this_fiber {

using detail::HubImpl;

FiberId id() noexcept {
    auto* f = HubImpl::current_fiber();
    return f ? f->id : 0;
}

std::string_view name() noexcept {
    auto* f = HubImpl::current_fiber();
    return f ? std::string_view(f->name) : std::string_view();
}

bool cancelled() noexcept {
    auto* f = HubImpl::current_fiber();
    return f && f->cancel_requested;
}

namespace {
struct SleepWaiter final : detail::Interruptible {
    void interrupt(detail::FiberRecord* f, Errc why) noexcept override {
        f->hub->make_ready(f, why);
    }
};
}  // namespace

Result<void> sleep_until(Deadline deadline) {
    HubImpl* hub = HubImpl::current();
    if (!hub || !hub->running()) {
        std::this_thread::sleep_until(deadline.time_point());
        return {};
    }
    if (deadline.is_never()) {
        SleepWaiter w;
        return hub->park(&w, deadline, "sleep");
    }
    SleepWaiter w;
    auto r = hub->park(&w, deadline, "sleep");
    if (!r && r.error().code == Errc::timed_out) return {};
    return r;
}

Result<void> sleep_for(Clock::duration d) {
    return sleep_until(Deadline(d));
}

void set_labels(const FiberLabels* labels) noexcept {
    if (auto* f = HubImpl::current_fiber()) f->labels = labels;
}

}  // namespace weft::this_fiber
