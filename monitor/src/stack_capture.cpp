// The capture signal handler and its slot pool. Everything the handler runs is in this file and
// is async-signal-safe: atomics on lock-free ints, reads of the interrupted thread's own stack
// (bounds-checked against what core says the stack is), and a word copy.
#include "stack_capture.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string_view>

#include "weft/core/internal/introspect.hpp"

namespace weft::monitor::detail {

namespace {

constexpr int kPoolSize = 64;
// The x86-64 System V ABI's red zone: the 128 bytes below the stack pointer that a function
// may use without moving it, which signal delivery leaves alone.
constexpr std::uintptr_t kRedZone = 128;
CaptureSlot g_slots[kPoolSize];
std::atomic<bool> g_slot_used[kPoolSize];
std::atomic<int> g_signal{-1};
std::once_flag g_install_once;

// Reads one word of the interrupted stack. Not instrumented: under ASan the stack holds poisoned
// redzones that are fine to read here.
__attribute__((no_sanitize("address", "thread", "undefined"))) inline std::uintptr_t peek(
    std::uintptr_t addr) noexcept {
    return *reinterpret_cast<const volatile std::uintptr_t*>(addr);
}

// Copies `n` bytes with rep movsb: no libc call (which a sanitizer would intercept and check).
__attribute__((no_sanitize("address", "thread", "undefined"))) inline void raw_copy(
    char* dst, const char* src, std::size_t n) noexcept {
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

// Part of the handler: not instrumented either (see on_capture_signal).
__attribute__((no_sanitize("address", "thread", "undefined"))) inline void bounded_copy(
    char* dst, std::size_t cap, std::string_view src, std::uint16_t& len,
    bool* truncated) noexcept {
    std::size_t n = src.size() < cap ? src.size() : cap;
    if (n) raw_copy(dst, src.data(), n);
    len = static_cast<std::uint16_t>(n);
    if (truncated) *truncated = *truncated || n < src.size();
}

__attribute__((no_sanitize("address", "thread", "undefined"))) void on_capture_signal(int,
                                                                                      siginfo_t* si,
                                                                                      void* ucv) {
    int saved_errno = errno;
    // Only our own queued signals carry a slot pointer; anything else is ignored.
    if (si->si_code != SI_QUEUE || si->si_pid != ::getpid()) {
        errno = saved_errno;
        return;
    }
    auto* p = static_cast<char*>(si->si_value.sival_ptr);
    auto* base = reinterpret_cast<char*>(g_slots);
    if (p < base || p >= base + sizeof g_slots ||
        static_cast<std::size_t>(p - base) % sizeof(CaptureSlot) != 0) {
        errno = saved_errno;
        return;
    }
    auto* slot = reinterpret_cast<CaptureSlot*>(p);
    if (slot->target_tid.load(std::memory_order_acquire) !=
        static_cast<int>(::syscall(SYS_gettid))) {
        errno = saved_errno;
        return;
    }
    int expected = kRequested;
    if (!slot->state.compare_exchange_strong(expected, kWriting, std::memory_order_acquire)) {
        errno = saved_errno;  // the watchdog gave up on this request already
        return;
    }

    slot->fp_count = 0;
    slot->stack_len = 0;
    slot->label_count = 0;
    slot->fiber_id = 0;
    slot->fiber_name[0] = '\0';
    slot->from_handler = false;

    weft::introspect::CurrentFiberView v = weft::introspect::current_fiber_view();
    auto lo = reinterpret_cast<std::uintptr_t>(v.stack_lo);
    auto hi = reinterpret_cast<std::uintptr_t>(v.stack_hi);

    const auto* uc = static_cast<const ucontext_t*>(ucv);
    const greg_t* g = uc->uc_mcontext.gregs;
#if defined(__SANITIZE_THREAD__)
    // TSan defers an asynchronous signal that arrives outside a blocking call until the thread's
    // next interceptor, and then calls the handler on the thread's own stack with the context
    // saved at arrival: by now that stack has moved on and the saved stack pointer may point at
    // overwritten frames. The kernel delivers on the alternate stack, so a handler running on
    // the fiber's or hub's own stack was called late; it records its own registers instead,
    // and the stack shown is the thread's at delivery (a few frames later, inside TSan).
    ucontext_t own;
    auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    if (lo != 0 && here >= lo && here < hi && getcontext(&own) == 0) {
        g = own.uc_mcontext.gregs;
        slot->from_handler = true;
    }
#endif
    std::uint64_t* r = slot->regs;
    r[0] = static_cast<std::uint64_t>(g[REG_RAX]);
    r[1] = static_cast<std::uint64_t>(g[REG_RDX]);
    r[2] = static_cast<std::uint64_t>(g[REG_RCX]);
    r[3] = static_cast<std::uint64_t>(g[REG_RBX]);
    r[4] = static_cast<std::uint64_t>(g[REG_RSI]);
    r[5] = static_cast<std::uint64_t>(g[REG_RDI]);
    r[6] = static_cast<std::uint64_t>(g[REG_RBP]);
    r[7] = static_cast<std::uint64_t>(g[REG_RSP]);
    r[8] = static_cast<std::uint64_t>(g[REG_R8]);
    r[9] = static_cast<std::uint64_t>(g[REG_R9]);
    r[10] = static_cast<std::uint64_t>(g[REG_R10]);
    r[11] = static_cast<std::uint64_t>(g[REG_R11]);
    r[12] = static_cast<std::uint64_t>(g[REG_R12]);
    r[13] = static_cast<std::uint64_t>(g[REG_R13]);
    r[14] = static_cast<std::uint64_t>(g[REG_R14]);
    r[15] = static_cast<std::uint64_t>(g[REG_R15]);
    r[16] = static_cast<std::uint64_t>(g[REG_RIP]);

    slot->hub_index = v.hub_index;
    if (v.hub_index < 0) {
        slot->status = CaptureStatus::not_a_hub;
    } else if (v.in_switch) {
        slot->status = CaptureStatus::in_switch;
    } else {
        slot->fiber_id = v.id;
        if (v.name) {
            std::size_t i = 0;
            for (; i + 1 < sizeof slot->fiber_name && v.name[i]; ++i)
                slot->fiber_name[i] = v.name[i];
            slot->fiber_name[i] = '\0';
        }
        if (v.labels) {
            int n = v.labels->count < kMaxLabels ? v.labels->count : kMaxLabels;
            for (int i = 0; i < n; ++i) {
                CapturedLabel& l = slot->labels[i];
                l.truncated = false;
                const char* k = v.labels->keys[i] ? v.labels->keys[i] : "";
                std::size_t klen = 0;
                while (k[klen] && klen < kLabelKeyMax)
                    ++klen;
                bounded_copy(l.key, kLabelKeyMax, std::string_view(k, klen), l.key_len, nullptr);
                bounded_copy(l.value, kLabelValueMax, v.labels->values[i], l.value_len,
                             &l.truncated);
            }
            slot->label_count = n;
        }

        auto sp = static_cast<std::uintptr_t>(g[REG_RSP]);
        slot->stack_lo = lo;
        slot->stack_hi = hi;
        if (lo == 0 || hi <= lo || sp < lo || sp >= hi) {
            slot->status = CaptureStatus::no_stack;
        } else {
            slot->status = CaptureStatus::ok;
            // Frame-pointer chain: every frame pointer must lie on this stack above the stack
            // pointer (memory below it may be unmapped on a main thread), be aligned, and grow.
            slot->fp_frames[0] = static_cast<std::uintptr_t>(g[REG_RIP]);
            int n = 1;
            std::uintptr_t fp = static_cast<std::uintptr_t>(g[REG_RBP]);
            while (n < kMaxFpFrames) {
                if (fp < sp || fp > hi - 2 * sizeof(std::uintptr_t) || (fp & 7) != 0) break;
                std::uintptr_t next = peek(fp);
                std::uintptr_t ret = peek(fp + sizeof(std::uintptr_t));
                if (ret < 4096) break;
                slot->fp_frames[n++] = ret;
                if (next <= fp) break;
                fp = next;
            }
            slot->fp_count = n;
            // The raw stack, for the CFI unwinder, from the red zone below the stack pointer:
            // [max(lo, sp - 128), hi), at most cap bytes. A leaf function may keep saved
            // registers there, and a function interrupted at its `ret` has just popped its
            // caller's frame pointer from there (glibc's free, for one): its CFI still says
            // where it was saved, and without it the unwind stops one frame later. (On a main
            // thread the page below may not be mapped yet: the read grows the stack, as the
            // interrupted code's next push would.)
            const std::uintptr_t from = sp - lo >= kRedZone ? sp - kRedZone : lo;
            std::size_t len = hi - from;
            if (len > slot->stack_cap) len = slot->stack_cap;
            if (slot->stack_buf && len) {
                raw_copy(slot->stack_buf, reinterpret_cast<const char*>(from), len);
                slot->stack_addr = from;
                slot->stack_len = len;
            }
        }
    }
    slot->state.store(kReady, std::memory_order_release);
    errno = saved_errno;
}

void install_once() noexcept {
    for (int sig = SIGRTMIN + 3; sig <= SIGRTMAX; ++sig) {
        struct sigaction old;
        if (sigaction(sig, nullptr, &old) != 0) continue;
        bool taken =
            (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != nullptr : (old.sa_handler != SIG_DFL);
        if (taken) continue;
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = &on_capture_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigfillset(&sa.sa_mask);  // nothing else interrupts the copy, except a real fault
        sigdelset(&sa.sa_mask, SIGSEGV);
        sigdelset(&sa.sa_mask, SIGBUS);
        if (sigaction(sig, &sa, nullptr) == 0) {
            g_signal.store(sig, std::memory_order_release);
            return;
        }
    }
}

}  // namespace

int install_capture_handler() noexcept {
    std::call_once(g_install_once, install_once);
    return g_signal.load(std::memory_order_acquire);
}

int capture_signal() noexcept {
    return g_signal.load(std::memory_order_acquire);
}

RawStack copy_out(const CaptureSlot& slot) {
    RawStack r;
    for (int i = 0; i < kDwarfRegs; ++i)
        r.regs[i] = slot.regs[i];
    r.fp_frames.assign(slot.fp_frames, slot.fp_frames + slot.fp_count);
    r.stack_addr = slot.stack_addr;
    r.from_handler = slot.from_handler;
    if (slot.stack_buf && slot.stack_len)
        r.bytes.assign(slot.stack_buf, slot.stack_buf + slot.stack_len);
    return r;
}

CaptureSlot* acquire_slot() noexcept {
    for (int i = 0; i < kPoolSize; ++i) {
        bool expected = false;
        if (g_slot_used[i].compare_exchange_strong(expected, true)) {
            g_slots[i].state.store(kIdle, std::memory_order_relaxed);
            return &g_slots[i];
        }
    }
    return nullptr;
}

void release_slot(CaptureSlot* s) noexcept {
    if (!s) return;
    // A late handler may still be writing; it never blocks, so waiting is short.
    int expected = kRequested;
    s->state.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel);
    while (s->state.load(std::memory_order_acquire) == kWriting) {
        struct timespec ts {
            0, 100'000
        };
        nanosleep(&ts, nullptr);
    }
    s->stack_buf = nullptr;
    s->stack_cap = 0;
    g_slot_used[s - g_slots].store(false, std::memory_order_release);
}

CaptureResult capture(CaptureSlot& slot, int tid, std::chrono::nanoseconds timeout) noexcept {
    int sig = capture_signal();
    if (sig < 0 || tid <= 0) return CaptureResult::unavailable;
    slot.target_tid.store(tid, std::memory_order_relaxed);
    slot.state.store(kRequested, std::memory_order_release);
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    info.si_signo = sig;
    info.si_code = SI_QUEUE;
    info.si_pid = ::getpid();
    info.si_uid = ::getuid();
    info.si_value.sival_ptr = &slot;
    if (::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), tid, sig, &info) != 0) {
        slot.state.store(kIdle, std::memory_order_release);
        return CaptureResult::send_failed;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int s = slot.state.load(std::memory_order_acquire);
        if (s == kReady) return CaptureResult::ok;
        if (s == kRequested && std::chrono::steady_clock::now() >= deadline) {
            int expected = kRequested;
            if (slot.state.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel))
                return CaptureResult::timed_out;
            continue;  // the handler started just now; it finishes quickly
        }
        struct timespec ts {
            0, 100'000
        };
        nanosleep(&ts, nullptr);
    }
}

}  // namespace weft::monitor::detail
