// offload(): park the calling fiber while a pool thread runs the work.
#include "weft/core/offload.hpp"

#include "hub_impl.hpp"
#include "runtime_state.hpp"

namespace weft::detail {

namespace {
// The work cannot be abandoned (it may name the fiber's stack), so interruptions only mark the
// fiber; it wakes when the work is done.
struct OffloadWaiter final : Interruptible {
    void interrupt(FiberRecord*, Errc) noexcept override {}
};
}  // namespace

void offload_raw(UniqueFunction<void()> work) {
    HubImpl* hub = HubImpl::current();
    FiberRecord* me = hub ? hub->running() : nullptr;
    if (!me) {
        work();
        return;
    }
    hub->runtime_state().pool->submit([hub, me, w = std::move(work)]() mutable {
        w();
        hub->post_any([hub, me] { hub->make_ready(me, Errc::ok); });
    });
    OffloadWaiter waiter;
    (void)hub->park(&waiter, Deadline::never(), "offload");
}

}  // namespace weft::detail
