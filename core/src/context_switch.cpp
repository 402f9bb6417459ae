// The only file that includes Boost.Context and the only code that switches stacks, with the
// ASan/TSan annotations for every switch (Seastar's thread.cc does the same).
#include "context_switch.hpp"

#include <boost/context/detail/fcontext.hpp>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define WEFT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define WEFT_TSAN 1
#endif

namespace weft::detail {

namespace bc = boost::context::detail;

namespace {
__attribute__((tls_model("initial-exec"))) thread_local volatile bool tls_in_switch = false;

inline void before_jump(Context* from, Context& to) noexcept {
    tls_in_switch = true;
#ifdef WEFT_ASAN
    __sanitizer_start_switch_fiber(from ? &from->asan_fake_stack : nullptr, to.stack_bottom,
                                   to.stack_size);
#else
    (void)from;
#endif
#ifdef WEFT_TSAN
    __tsan_switch_to_fiber(to.tsan_fiber, 0);
#else
    (void)to;
#endif
}

// Runs on the destination stack right after a jump: records where the previous context
// stopped, and finishes the sanitizer switch.
inline void after_jump(void* fake_stack, bc::transfer_t t) noexcept {
    auto* prev = static_cast<Context*>(t.data);
    prev->fctx = t.fctx;
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, &prev->stack_bottom, &prev->stack_size);
#else
    (void)fake_stack;
#endif
    tls_in_switch = false;
}

void trampoline(bc::transfer_t t) noexcept {
    after_jump(nullptr, t);
    fiber_entry_point();
}
}  // namespace

bool in_context_switch() noexcept {
    return tls_in_switch;
}

void context_init_fiber(Context& c, void* lo, std::size_t size) noexcept {
    c.stack_bottom = lo;
    c.stack_size = size;
    c.asan_fake_stack = nullptr;
    c.fctx = bc::make_fcontext(static_cast<char*>(lo) + size, size, &trampoline);
#ifdef WEFT_TSAN
    c.tsan_fiber = __tsan_create_fiber(0);
#endif
}

void context_init_thread(Context& c) noexcept {
    c = Context{};
#ifdef WEFT_TSAN
    c.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void context_destroy(Context& c) noexcept {
#ifdef WEFT_TSAN
    if (c.tsan_fiber) __tsan_destroy_fiber(c.tsan_fiber);
#endif
    c = Context{};
}

void context_switch(Context& from, Context& to) noexcept {
    before_jump(&from, to);
    bc::transfer_t t = bc::jump_fcontext(to.fctx, &from);
    after_jump(from.asan_fake_stack, t);
}

void context_exit(Context& from, Context& to) noexcept {
    before_jump(nullptr, to);  // null save slot: ASan frees this fiber's fake stack
    bc::jump_fcontext(to.fctx, &from);
    __builtin_unreachable();
}

}  // namespace weft::detail
