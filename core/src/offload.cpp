// offload(): park the calling fiber while a pool thread runs the work.
#include "weft/core/offload.hpp"

#include <atomic>
#include <memory>

#include "hub_impl.hpp"
#include "runtime_state.hpp"
#include "weft/core/internal/offload_stats.hpp"

namespace weft::detail {

namespace {
// Owned work's state, shared by the fiber's waiter and the work.
struct Owned {
    std::atomic<bool> done{false};  // the work has run (set on the pool thread)
    bool left = false;              // the fiber stopped waiting (hub thread only)
};

// A deadline or a cancel withdraws the work if no thread has taken it yet, and the fiber wakes
// at once; otherwise the work may name the fiber's stack, so the fiber wakes only when it is
// done, unless the work owns all it touches (`owned` is set): then the fiber leaves at once, and
// the work's end, on the hub thread like this, finds `left` and wakes nobody. Work that ran to
// its end before the deadline was seen (its wake still on the way to the hub) is a success:
// the caller must not take it for work that never finished.
struct OffloadWaiter final : Interruptible {
    HubImpl* hub = nullptr;
    std::shared_ptr<PoolTask> task;
    std::shared_ptr<Owned> owned;
    void interrupt(FiberRecord* f, Errc why) noexcept override {
        if (task->withdraw()) {
            hub->make_ready(f, why);
        } else if (owned) {
            owned->left = true;
            hub->make_ready(f, owned->done.load(std::memory_order_acquire) ? Errc::ok : why);
        }
    }
};

Result<void> offload_impl(UniqueFunction<void()> work, Deadline deadline, bool owned,
                          bool resolver = false) {
    HubImpl* hub = HubImpl::current();
    FiberRecord* me = hub ? hub->running() : nullptr;
    if (!me) {
        work();
        return {};
    }
    if (auto r = hub->check_interrupt(deadline); !r) return r;
    OffloadWaiter waiter;
    waiter.hub = hub;
    if (owned) waiter.owned = std::make_shared<Owned>();
    waiter.task =
        std::make_shared<PoolTask>([hub, me, o = waiter.owned, w = std::move(work)]() mutable {
            w();
            if (o) o->done.store(true, std::memory_order_release);
            hub->post_any([hub, me, o = std::move(o)] {
                if (!o || !o->left) hub->make_ready(me, Errc::ok);
            });
        });
    RuntimeState& st = hub->runtime_state();
    (resolver ? st.resolver : st.pool)->submit(waiter.task);
    return hub->park(&waiter, deadline, resolver ? "name lookup" : "offload");
}
}  // namespace

Result<void> offload_raw(UniqueFunction<void()> work, Deadline deadline) {
    return offload_impl(std::move(work), deadline, false);
}

Result<void> offload_owned(UniqueFunction<void()> work, Deadline deadline) {
    return offload_impl(std::move(work), deadline, true);
}

Result<void> resolver_raw(UniqueFunction<void()> work, Deadline deadline) {
    return offload_impl(std::move(work), deadline, false, true);
}

Result<void> resolver_owned(UniqueFunction<void()> work, Deadline deadline) {
    return offload_impl(std::move(work), deadline, true, true);
}

}  // namespace weft::detail

namespace weft::internal {

OffloadStats offload_stats(const Runtime& rt) {
    // Every hub shares the runtime's state; hub 0 always exists.
    const auto& hub = static_cast<const detail::HubImpl&>(rt.hub(0));
    const auto& pool = hub.runtime_state().pool;
    return pool ? pool->stats() : OffloadStats{};
}

OffloadStats resolver_stats(const Runtime& rt) {
    const auto& hub = static_cast<const detail::HubImpl&>(rt.hub(0));
    const auto& pool = hub.runtime_state().resolver;
    return pool ? pool->stats() : OffloadStats{};
}

}  // namespace weft::internal
