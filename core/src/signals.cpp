// Stack-overflow detection for fibers: a SIGSEGV/SIGBUS handler on an alternate stack checks
// whether the faulting address is the running fiber's guard page, writes a report with the
// fiber's name and stack size (async-signal-safe: write(2) only), and aborts. Faults that are
// not ours go to the handler that was installed before.
#include "signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "hub_impl.hpp"
#include "patch/real.hpp"

namespace weft::detail {

namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;
// Frames bigger than the guard page can jump past it; treat faults this far below it as ours.
constexpr std::uintptr_t kBelowGuardSlack = 256 * 1024;

struct sigaction g_prev_segv;
struct sigaction g_prev_bus;
std::once_flag g_install_once;
__attribute__((tls_model("initial-exec"))) thread_local void* tls_altstack = nullptr;

struct Writer {
    char buf[512];
    std::size_t n = 0;
    void put(const char* s) noexcept {
        while (*s && n < sizeof buf)
            buf[n++] = *s++;
    }
    void put(std::uint64_t v) noexcept {
        char tmp[24];
        int i = 0;
        do {
            tmp[i++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v && i < 24);
        while (i > 0 && n < sizeof buf)
            buf[n++] = tmp[--i];
    }
    void flush() noexcept {
        ssize_t w = real::calls().write(STDERR_FILENO, buf, n);
        (void)w;
    }
};

void chain(int sig, siginfo_t* si, void* uc, const struct sigaction& prev) {
    if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
        prev.sa_sigaction(sig, si, uc);
        return;
    }
    if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
        prev.sa_handler(sig);
        return;
    }
    // Default action: reinstall it and return; the faulting instruction runs again and the
    // kernel kills the process with the usual core dump.
    signal(sig, SIG_DFL);
}

void on_fault(int sig, siginfo_t* si, void* uc) {
    FiberRecord* f = HubImpl::current_fiber();
    auto addr = reinterpret_cast<std::uintptr_t>(si->si_addr);
    if (f) {
        auto guard_lo = reinterpret_cast<std::uintptr_t>(f->stack.base);
        auto guard_hi = reinterpret_cast<std::uintptr_t>(f->stack.lo());
        if (addr < guard_hi && addr + kBelowGuardSlack >= guard_lo) {
            Writer w;
            w.put("weft: stack overflow in fiber '");
            w.put(f->name);
            w.put("' (id ");
            w.put(f->id);
            w.put(", hub ");
            w.put(f->hub->index_value());
            w.put("): its ");
            w.put(f->stack.usable());
            w.put(
                "-byte stack is exhausted (guard page hit). Raise the fiber stack size "
                "(RuntimeOptions::stack_size, [runtime] stack_size).\n");
            w.flush();
            signal(SIGABRT, SIG_DFL);
            std::abort();
        }
    }
    chain(sig, si, uc, sig == SIGBUS ? g_prev_bus : g_prev_segv);
}

void install_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_prev_segv);
    sigaction(SIGBUS, &sa, &g_prev_bus);
    // A peer that resets a connection must not kill the process (nginx ignores it too).
    signal(SIGPIPE, SIG_IGN);
}

}  // namespace

void install_thread_signal_stack() {
    std::call_once(g_install_once, install_handlers);
    if (tls_altstack) return;
    stack_t cur;
    if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
        cur.ss_size >= kAltStackSize)
        return;  // someone (a sanitizer runtime) already gave this thread one
    void* mem = ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) return;
    stack_t ss{};
    ss.ss_sp = mem;
    ss.ss_size = kAltStackSize;
    if (sigaltstack(&ss, nullptr) != 0) {
        ::munmap(mem, kAltStackSize);
        return;
    }
    tls_altstack = mem;
}

void remove_thread_signal_stack() noexcept {
    if (!tls_altstack) return;
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    ::munmap(tls_altstack, kAltStackSize);
    tls_altstack = nullptr;
}

}  // namespace weft::detail
