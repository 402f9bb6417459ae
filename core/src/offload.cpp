// offload(): park the calling fiber while a pool thread runs the work.
#include "weft/core/offload.hpp"

#include "hub_impl.hpp"
#include "runtime_state.hpp"
#include "weft/core/internal/offload_stats.hpp"

namespace weft::detail {

namespace {
// A deadline or a cancel withdraws the work if no thread has taken it yet, and the fiber wakes
// at once; otherwise the work may name the fiber's stack, so the fiber wakes only when it is
// done.
struct OffloadWaiter final : Interruptible {
    HubImpl* hub = nullptr;
    std::shared_ptr<PoolTask> task;
    void interrupt(FiberRecord* f, Errc why) noexcept override {
        if (task->withdraw()) hub->make_ready(f, why);
    }
};
}  // namespace

Result<void> offload_raw(UniqueFunction<void()> work, Deadline deadline) {
    HubImpl* hub = HubImpl::current();
    FiberRecord* me = hub ? hub->running() : nullptr;
    if (!me) {
        work();
        return {};
    }
    if (auto r = hub->check_interrupt(deadline); !r) return r;
    OffloadWaiter waiter;
    waiter.hub = hub;
    waiter.task = std::make_shared<PoolTask>([hub, me, w = std::move(work)]() mutable {
        w();
        hub->post_any([hub, me] { hub->make_ready(me, Errc::ok); });
    });
    hub->runtime_state().pool->submit(waiter.task);
    return hub->park(&waiter, deadline, "offload");
}

}  // namespace weft::detail

namespace weft::internal {

OffloadStats offload_stats(const Runtime& rt) {
    // Every hub shares the runtime's state; hub 0 always exists.
    const auto& hub = static_cast<const detail::HubImpl&>(rt.hub(0));
    const auto& pool = hub.runtime_state().pool;
    return pool ? pool->stats() : OffloadStats{};
}

}  // namespace weft::internal
