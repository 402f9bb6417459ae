// Stack-overflow detection for fibers: a SIGSEGV/SIGBUS handler on an alternate stack checks
// whether the faulting address is the running fiber's guard page, writes a report with the
// fiber's name and stack size (async-signal-safe: write(2) only), and aborts. Any other fatal
// fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL) gets one line first (the signal, the address, the
// thread, and on a hub the fiber and the request it served), then goes to the handler that was
// installed before (the default one: the process dies with its core dump, as it would have).
#include "signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

#include "hub_impl.hpp"
#include "patch/real.hpp"
#include "weft/core/internal/fault_context.hpp"

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
    void put(std::string_view s) noexcept {
        for (char c : s) {
            if (n >= sizeof buf) break;
            buf[n++] = (c >= 0x20 && c < 0x7f) ? c : '?';
        }
    }
    void hex(std::uintptr_t v) noexcept {
        put("0x");
        char tmp[20];
        int i = 0;
        do {
            tmp[i++] = "0123456789abcdef"[v & 0xf];
            v >>= 4;
        } while (v && i < 20);
        while (i > 0 && n < sizeof buf)
            buf[n++] = tmp[--i];
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
        if (n == sizeof buf) buf[n - 1] = '\n';  // cut short: still one whole line
        ssize_t w = real::calls().write(STDERR_FILENO, buf, n);
        (void)w;
    }
};

bool has_own_handler(const struct sigaction& prev) noexcept {
    if (prev.sa_flags & SA_SIGINFO) return prev.sa_sigaction != nullptr;
    return prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler;
}

void chain(int sig, siginfo_t* si, void* uc, const struct sigaction& prev) {
    if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
        prev.sa_sigaction(sig, si, uc);
        return;
    }
    if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
        prev.sa_handler(sig);
        return;
    }
    // Default action: reinstall it. A fault returns and its instruction runs again, and the
    // kernel kills the process with the usual core dump; a signal someone sent (kill -SEGV, to
    // get a core) would not come again: it is raised anew (SA_NODEFER: delivered at once).
    signal(sig, SIG_DFL);
    if (si->si_code <= 0) raise(sig);
}

// Set while this thread writes a report: a fault in the report itself (labels a fiber left
// pointing at a dead frame) goes straight on to the previous handler instead of recursing on
// the alternate stack, which has no guard page.
__attribute__((tls_model("initial-exec"))) thread_local volatile sig_atomic_t tls_reporting = 0;

// What this thread is doing (internal::set_thread_activity), for the report.
__attribute__((tls_model("initial-exec"))) thread_local const char* volatile tls_activity = nullptr;

struct sigaction g_prev_fpe;
struct sigaction g_prev_ill;

const struct sigaction& previous(int sig) noexcept {
    switch (sig) {
        case SIGBUS:
            return g_prev_bus;
        case SIGFPE:
            return g_prev_fpe;
        case SIGILL:
            return g_prev_ill;
        default:
            return g_prev_segv;
    }
}

// The line a fatal fault leaves behind: without it a crash in a handler ends the log at
// "ready" (Go prints the panic, nginx "worker process exited on signal 11").
void report_fatal(int sig, const siginfo_t* si, const FiberRecord* f) noexcept {
    // A handler installed before weft's (a sanitizer, a runtime a plugin embeds) may recover:
    // then this is no verdict.
    const bool fatal = !has_own_handler(previous(sig));
    Writer w;
    w.put(fatal ? "weft: fatal " : "weft: ");
    w.put(sig == SIGSEGV  ? "SIGSEGV (invalid memory access)"
          : sig == SIGBUS ? "SIGBUS (bus error)"
          : sig == SIGFPE ? "SIGFPE (arithmetic error, such as a division by zero)"
                          : "SIGILL (illegal instruction)");
    if (si->si_code > 0) {  // a fault: si_addr is where (for a sent signal it is not)
        w.put(" at address ");
        w.hex(reinterpret_cast<std::uintptr_t>(si->si_addr));
    } else {
        w.put(" sent by process ");
        w.put(static_cast<std::uint64_t>(si->si_pid));
    }
    char name[17] = {};
    if (::prctl(PR_GET_NAME, name) == 0) {
        w.put(" in thread '");
        w.put(std::string_view(name));
        w.put("'");
    }
    if (f) {
        w.put(", fiber '");
        w.put(std::string_view(f->name));
        w.put("' (id ");
        w.put(f->id);
        w.put(")");
        if (const FiberLabels* l = f->shown_labels();
            l && l->count > 0 && l->count <= FiberLabels::kMax) {
            w.put(", serving");
            for (int i = 0; i < l->count; ++i) {
                w.put(" ");
                w.put(l->keys[i] ? std::string_view(l->keys[i]) : std::string_view("?"));
                w.put("=");
                w.put(l->values[i].substr(0, 128));
            }
        }
    }
    if (const char* activity = tls_activity) {
        w.put(", while ");
        w.put(std::string_view(activity).substr(0, 512));
    }
    w.put(fatal ? "; the process ends (a core dump, if enabled, has its stack)\n"
                : "; passed to the handler installed before weft's\n");
    w.flush();
}

void on_fault(int sig, siginfo_t* si, void* uc) {
    FiberRecord* f = HubImpl::current_fiber();
    auto addr = reinterpret_cast<std::uintptr_t>(si->si_addr);
    if (f && (sig == SIGSEGV || sig == SIGBUS)) {
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
    if (!tls_reporting) {
        tls_reporting = 1;
        report_fatal(sig, si, f);
        tls_reporting = 0;
    }
    chain(sig, si, uc, previous(sig));
}

void install_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_prev_segv);
    sigaction(SIGBUS, &sa, &g_prev_bus);
    sigaction(SIGFPE, &sa, &g_prev_fpe);
    sigaction(SIGILL, &sa, &g_prev_ill);
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

namespace weft::internal {

void set_thread_activity(const char* activity) noexcept {
    detail::tls_activity = activity;
}

}  // namespace weft::internal
