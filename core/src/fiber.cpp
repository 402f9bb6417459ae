// Spawning, joining and cancelling fibers; the this_fiber API.
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#include "hub_impl.hpp"
#include "log.hpp"
#include "weft/core/fiber_group.hpp"

namespace weft::detail {

FiberRecord* spawn_fiber(Hub* hub, const SpawnRequest& req) {
    HubImpl* h = HubImpl::current();
    if (h == nullptr)
        throw UsageError(
            "spawn() outside a hub thread (in offload(), a plain thread, a plugin's init on no "
            "hub): spawn from a fiber, or post to a hub (Hub::post)");
    if (hub != nullptr && hub != h)
        throw UsageError(
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
constexpr const char* kTwoWaiters =
    "two fibers wait for (or join) the same fiber at once: a Fiber has one waiter; for many, "
    "let its waiter set a weft::Event the others wait on";

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

Result<void> fiber_join_wait(FiberRecord* f) {
    // join() waits out the child whatever the caller's own deadline: the child inherited that
    // deadline, so its blocking calls end with it, and its value or exception is the answer.
    FiberRecord* me = HubImpl::current_fiber();
    struct Restore {  // also when fiber_wait() throws UsageError
        FiberRecord* me;
        std::int64_t saved;
        ~Restore() {
            if (me) me->deadline_ns = saved;
        }
    } restore{me, me ? me->deadline_ns : INT64_MAX};
    if (me) me->deadline_ns = INT64_MAX;
    auto r = fiber_wait(f, Deadline::never());
    // join() observes the outcome (its value, or its exception rethrown); wait() does not,
    // so that a failure nobody joins is still logged when the handle goes.
    if (r) f->joined = true;
    return r;
}

void fiber_wait_shielded(FiberRecord* f) noexcept {
    HubImpl* hub = HubImpl::current();
    FiberRecord* me = hub ? hub->running() : nullptr;
    if (fiber_done(f)) return;
    WEFT_CHECK(me || hub != f->hub,
               "a FiberGroup with running children ended on its hub's thread outside a fiber: "
               "waiting for them there would block that hub for ever");
    if (!me || hub != f->hub) {
        // A plain thread, or another hub's fiber (neither can be a FiberGroup's spawner): poll.
        while (!fiber_done(f))
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        return;
    }
    std::uintptr_t expected = 0;
    if (!f->join_word.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(me),
                                              std::memory_order_acq_rel)) {
        WEFT_CHECK(expected == FiberRecord::kJoinDone, "two fibers join the same fiber");
        return;
    }
    // Nothing but the target's end wakes this wait: a cancellation of the caller (now or
    // already requested) is left for its next blocking call, and no deadline applies.
    struct Shielded final : Interruptible {
        void interrupt(FiberRecord*, Errc) noexcept override {}
    } w;
    const std::int64_t saved = me->deadline_ns;
    me->deadline_ns = INT64_MAX;
    (void)hub->park(&w, Deadline::never(), "join");
    me->deadline_ns = saved;
}

Result<void> fiber_wait(FiberRecord* f, Deadline deadline) {
    if (f == nullptr)
        throw UsageError(
            "wait() on an empty Fiber handle (joined already, detached or moved from)");
    HubImpl* hub = HubImpl::current();
    FiberRecord* me = hub ? hub->running() : nullptr;
    if (fiber_done(f)) return {};
    // On a hub's thread but outside its fibers (a function given to Hub::post()): polling
    // here would hold the hub, and the fiber waited for could never run.
    if (!me && hub == f->hub)
        throw UsageError(
            "wait()/join() of an unfinished fiber on its hub's thread outside a fiber would "
            "block that hub for ever: wait from a fiber (spawn one)");
    if (!me) {
        // A plain thread waiting for a fiber: poll, there is no hub to park on.
        while (!fiber_done(f)) {
            if (deadline.passed()) return Errc::timed_out;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return {};
    }
    if (me == f) throw UsageError("a fiber cannot wait for or join itself");
    if (auto r = hub->check_interrupt(deadline); !r) return r;
    std::uintptr_t expected = 0;
    if (!f->join_word.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(me),
                                              std::memory_order_acq_rel)) {
        if (expected != FiberRecord::kJoinDone) throw UsageError(kTwoWaiters);
        return {};
    }
    JoinWaiter w;
    w.target = f;
    return hub->park(&w, deadline, "join");
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
    if (deadline.passed()) {
        // Nothing to wait for (sleep_for(0ms), a checkpoint, as gevent's sleep(0)): the other
        // ready fibers run first, always, and a cancel or a passed deadline is said.
        yield();
        return hub->check_interrupt(Deadline::never());
    }
    SleepWaiter w;
    auto r = hub->park(&w, deadline, "sleep");
    // Woken by its own time, before the fiber's deadline: done. Woken by the fiber's deadline
    // (earlier, or already past as a sleep_for(0ms) checkpoint is called): timed out.
    if (!r && r.error().code == Errc::timed_out && deadline.passed()) {
        const detail::FiberRecord* me = hub->running();
        if (me->deadline_ns == INT64_MAX || me->deadline_ns > detail::deadline_ns(deadline)) return {};
    }
    return r;
}

Result<void> sleep_for(Clock::duration d) {
    return sleep_until(Deadline(d));
}

void set_labels(const FiberLabels* labels) noexcept {
    if (auto* f = HubImpl::current_fiber()) {
        // Fibers spawned under the labels before served what they described: they keep
        // them no longer (a connection's next request installs its own).
        if (detail::LabelsLink* l = f->own_labels) [[unlikely]] {
            l->labels = nullptr;
            if (--l->refs == 0) delete l;
            f->own_labels = nullptr;
        }
        f->labels = labels;
    }
}

Deadline deadline() noexcept {
    auto* f = HubImpl::current_fiber();
    if (!f || f->deadline_ns == INT64_MAX) return Deadline::never();
    return Deadline(Clock::time_point(std::chrono::nanoseconds(f->deadline_ns)));
}

}  // namespace weft::this_fiber

namespace weft {

ScopedDeadline::ScopedDeadline(Deadline d, Mode mode) noexcept
    : previous_ns_(INT64_MAX), active_(false) {
    auto* f = detail::HubImpl::current_fiber();
    if (!f) return;
    active_ = true;
    previous_ns_ = f->deadline_ns;
    const std::int64_t want = detail::deadline_ns(d);
    f->deadline_ns = mode == Mode::replace ? want : std::min(previous_ns_, want);
}

ScopedDeadline::~ScopedDeadline() {
    if (!active_) return;
    if (auto* f = detail::HubImpl::current_fiber()) f->deadline_ns = previous_ns_;
}

namespace internal {

void enter_handler(HandlerScope& scope, Deadline deadline, ParkHook* hook) noexcept {
    auto* f = detail::HubImpl::current_fiber();
    scope.fiber = f;
    if (!f) return;
    scope.saved_deadline_ns = f->deadline_ns;
    scope.fiber_id = f->id;
    scope.locals_shares = f->locals_shares;
    f->deadline_ns = std::min(f->deadline_ns, detail::deadline_ns(deadline));
    f->park_hook = hook;
    f->park_refused = false;  // a connection fiber's earlier requests do not count
}

void leave_handler(const HandlerScope& scope) noexcept {
    if (!scope.fiber) return;
    auto* f = static_cast<detail::FiberRecord*>(scope.fiber);
    f->deadline_ns = scope.saved_deadline_ns;
    f->park_hook = nullptr;
    f->park_refused = false;
}

bool fiber_local_owned(std::size_t slot, const void* value) noexcept {
    auto* f = detail::HubImpl::current_fiber();
    return f && f->locals && f->locals.use_count() == 1 && slot < f->locals->slots.size() &&
           f->locals->slots[slot].get() == value;
}

void cancel_fiber(FiberRef f) noexcept {
    if (f) detail::fiber_cancel(static_cast<detail::FiberRecord*>(f));
}

}  // namespace internal

namespace detail {

std::size_t fiber_local_slot() noexcept {
    static std::atomic<std::size_t> next{0};
    return next.fetch_add(1, std::memory_order_relaxed);
}

void* fiber_local_get(std::size_t slot) noexcept {
    auto* f = HubImpl::current_fiber();
    if (!f || !f->locals || slot >= f->locals->slots.size()) return nullptr;
    return f->locals->slots[slot].get();
}

void fiber_local_set(std::size_t slot, std::shared_ptr<void> value) {
    auto* f = HubImpl::current_fiber();
    if (!f) throw std::logic_error("FiberLocal::set() outside a fiber");
    if (f->locals_ending) return;  // a value's destructor as the fiber ends: `value` dies here
    if (!f->locals) f->locals = f->hub->take_spare_locals();
    // A table only this fiber holds is changed in place: the HTTP server sets and clears the
    // request context around every handler, and that must not cost allocations.
    // A count of 1 is final: only a holder can make another reference, and there is none.
    if (f->locals && f->locals.use_count() == 1 && slot < f->locals->slots.size()) {
        auto& cell = const_cast<LocalTable&>(*f->locals).slots[slot];
        std::shared_ptr<void> old = std::move(cell);
        cell = std::move(value);
        return;  // `old` dies here, with the table consistent (its destructor may set values)
    }
    // Copy on write: fibers that share the table keep their values.
    auto t = f->locals ? std::make_shared<LocalTable>(*f->locals) : std::make_shared<LocalTable>();
    if (t->slots.size() <= slot) t->slots.resize(slot + 1);
    t->slots[slot] = std::move(value);
    f->locals = std::move(t);
}

}  // namespace detail
}  // namespace weft

namespace weft {

bool is_cancellation(const std::exception_ptr& e) noexcept {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const Cancelled&) {
        return true;
    } catch (const ResultError<Error>& r) {
        return r.error().code == Errc::cancelled || r.error().code == Errc::timed_out;
    } catch (...) {
    }
    return false;
}

FiberGroup::~FiberGroup() {
    cancel_and_wait();
}

void FiberGroup::cancel() noexcept {
    for (auto& f : children_)
        f.cancel();
}

// All are cancelled first, so that they end side by side. Then by index, and each record taken
// before the wait: a child may add children (the vector may grow while we wait), and those are
// cancelled and waited for too.
void FiberGroup::cancel_and_wait() noexcept {
    cancel();
    for (std::size_t i = 0; i < children_.size(); ++i) {
        detail::FiberRecord* rec = children_[i].rec_;
        if (!rec) continue;
        children_[i].cancel();
        detail::fiber_wait_shielded(rec);
        // How a cancelled child ended is no news; anything else is logged (with its name)
        // when the handle goes, as for any fiber nobody joined.
        if (is_cancellation(rec->ops->error(rec->user_state))) rec->joined = true;
        children_[i].detach();
    }
    children_.clear();
    failure_ = nullptr;
}

void FiberGroup::child_failed(std::exception_ptr e) noexcept {
    if (failure_) return;
    // Cancelled (by a failed sibling, or with the group), a child's exception is how its wait
    // ended, not a failure of its own.
    if (this_fiber::cancelled() && is_cancellation(e)) return;
    failure_ = std::move(e);
    cancel();
}

void FiberGroup::join() {
    std::exception_ptr first;
    for (std::size_t i = 0; i < children_.size(); ++i) {
        detail::FiberRecord* rec = children_[i].rec_;
        if (!rec) continue;
        if (!detail::fiber_join_wait(rec)) {
            // The caller was cancelled: so are the children, and they end before we go.
            cancel_and_wait();
            detail::throw_cancelled();
        }
        // The first failure is rethrown; later ones are logged when their handles go. With
        // cancel_the_rest, the one that cancelled the others is, and their cancellations are
        // no news.
        if (std::exception_ptr e = rec->ops->error(rec->user_state)) {
            if (failure_ && (e == failure_ || is_cancellation(e))) {
                // rethrown below, or a cancellation it caused
            } else if (!first && !failure_) {
                first = e;
            } else {
                rec->joined = false;
            }
        }
        children_[i].detach();
    }
    children_.clear();
    if (failure_) first = std::exchange(failure_, nullptr);
    if (first) std::rethrow_exception(first);
}

}  // namespace weft
