// Introspection hooks for the monitor: what a hub thread is running, readable from a signal
// handler on that thread. Not for handler authors.
#pragma once

#include <cstdint>

#include "weft/core/fiber.hpp"

namespace weft::introspect {

struct CurrentFiberView {
    bool in_switch = false;          ///< between two stacks: nothing consistent to read
    FiberId id = 0;                  ///< 0: the hub runs its own loop
    const char* name = nullptr;      ///< the fiber's name (stable while it runs)
    const char* stack_lo = nullptr;  ///< usable stack of the running fiber (or the thread's)
    const char* stack_hi = nullptr;
    const FiberLabels* labels = nullptr;
    int hub_index = -1;  ///< -1: not a hub thread
};

/// What the calling hub thread runs right now. Async-signal-safe.
CurrentFiberView current_fiber_view() noexcept;

}  // namespace weft::introspect
