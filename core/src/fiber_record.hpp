// FiberRecord: the engine's bookkeeping for one fiber. It lives at the top of the fiber's own
// stack (no separate allocation), next to the user's callable and outcome.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <source_location>
#include <vector>

#include "context_switch.hpp"
#include "stack_pool.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/internal/park_hook.hpp"

namespace weft::detail {

class HubImpl;
struct FiberRecord;

/// What a parked fiber waits on. interrupt() runs on the hub when the fiber's deadline passes
/// or it is cancelled; it must make the fiber ready, now or once an in-flight operation that
/// names the fiber's memory has completed (never earlier).
struct Interruptible {
    virtual void interrupt(FiberRecord* f, Errc why) noexcept = 0;

  protected:
    ~Interruptible() = default;
};

/// The values of the FiberLocal slots a fiber sees, by slot index. Immutable once shared: a
/// set() makes a new table (copy on write), so a spawned fiber inherits its parent's values by
/// sharing the table.
struct LocalTable {
    std::vector<std::shared_ptr<void>> slots;
};

/// The labels of a fiber that spawned others, as its children see them: what it has installed
/// now, nullptr once it removed them or ended. Shared by the fiber and its descendants on its
/// hub (hub thread only); the last of them frees it.
struct LabelsLink {
    const FiberLabels* labels = nullptr;
    int refs = 0;
};

/// Every member has its default initializer: spawn() default-initializes records.
struct FiberRecord {
    static constexpr std::uintptr_t kJoinDone = 1;

    // Scheduling (hub thread only).
    FiberRecord* next_ready = nullptr;
    HubImpl* hub = nullptr;
    Context ctx;
    Interruptible* parked_on = nullptr;
    std::int64_t ready_at_ns = 0;
    Errc wake_result = Errc::ok;
    bool cancel_requested = false;
    bool joined = false;  ///< someone observed the outcome through join()
    std::atomic<bool> error_reported{false};
    std::atomic<FiberState> state{FiberState::ready};
    std::atomic<const char*> wait_reason{nullptr};
    const FiberLabels* labels = nullptr;
    /// This fiber's labels as its children see them (made when a child is first spawned).
    LabelsLink* own_labels = nullptr;
    /// The labels of the nearest ancestor that had some when this fiber was spawned: shown for
    /// it while it has none of its own (a handler's FiberGroup child serves its request).
    LabelsLink* inherited_labels = nullptr;
    /// What the watchdog shows for this fiber: its own labels, else its ancestor's.
    const FiberLabels* shown_labels() const noexcept {
        if (labels) return labels;
        return inherited_labels ? inherited_labels->labels : nullptr;
    }
    /// The deadline every blocking call of this fiber keeps to (ns on the monotonic clock;
    /// INT64_MAX: none). Inherited at spawn. See ScopedDeadline.
    std::int64_t deadline_ns = INT64_MAX;
    /// FiberLocal values; inherited at spawn (shared), dropped when the fiber finishes.
    std::shared_ptr<const LocalTable> locals;
    /// Fibers spawned while `locals` was set (each took a share of the table).
    std::uint32_t locals_shares = 0;
    /// The fiber's values are dying (it ended): a value set now dies at once.
    bool locals_ending = false;
    /// A patched call already refused to park this fiber (cancelled, or past its deadline):
    /// the next refusal pauses first (see patch::refuse_park). Cleared as a request's handler
    /// starts and ends on the fiber (internal::enter_handler, leave_handler).
    bool park_refused = false;
    /// Run (and removed) at the fiber's next park; see internal::enter_handler(). Not inherited.
    internal::ParkHook* park_hook = nullptr;

    // Identity.
    FiberId id = 0;
    FiberId parent = 0;
    std::int64_t created_ns = 0;
    std::source_location site;
    char name[48] = {};

    // Registry (guarded by the hub's registry lock).
    FiberRecord* reg_prev = nullptr;
    FiberRecord* reg_next = nullptr;

    // Lifetime: one reference for the running fiber, one for the handle.
    Stack stack;
    void* user_state = nullptr;
    const SpawnOps* ops = nullptr;
    std::atomic<int> refs{2};
    /// 0: nobody waits; kJoinDone: finished; otherwise the FiberRecord* of the joiner.
    std::atomic<std::uintptr_t> join_word{0};
};

}  // namespace weft::detail
