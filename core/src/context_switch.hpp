// Execution contexts and the one place Weft switches stacks. Every switch goes through
// context_switch()/context_exit(), which also tell ASan and TSan about it (Debian's Boost.Context
// is fcontext-only, so Boost's own sanitizer hooks are not available).
#pragma once

#include <cstddef>

namespace weft::detail {

struct Context {
    void* fctx = nullptr;                ///< saved fcontext_t while switched out
    const void* stack_bottom = nullptr;  ///< lowest address of the stack (for ASan)
    std::size_t stack_size = 0;
    void* asan_fake_stack = nullptr;  ///< ASan's fake-stack handle while switched out
    void* tsan_fiber = nullptr;       ///< TSan's fiber handle
};

/// Prepares `c` to run fiber_entry_point() on the stack [lo, lo + size).
void context_init_fiber(Context& c, void* lo, std::size_t size) noexcept;
/// Describes the calling thread's own stack (the hub's context).
void context_init_thread(Context& c) noexcept;
/// Releases sanitizer state of a fiber context that will never run again.
void context_destroy(Context& c) noexcept;
/// Saves the current context into `from` and resumes `to`. Returns when someone switches back.
void context_switch(Context& from, Context& to) noexcept;
/// The last switch of a dying fiber: never returns; its stack may be freed once `to` runs.
[[noreturn]] void context_exit(Context& from, Context& to) noexcept;

/// True while this thread is between two stacks (the watchdog's stack capture skips it).
bool in_context_switch() noexcept;

/// Defined by the fiber engine: the body of every fiber. Must never return.
[[noreturn]] void fiber_entry_point() noexcept;

}  // namespace weft::detail
