// HubImpl: the event loop of one hub thread. Runs ready fibers FIFO (with a budget), fires timers,
// runs work posted from other threads, and polls the I/O backend, sleeping until the next timer
// when nothing is ready. Every return of control to the loop advances the epoch the watchdog
// watches.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "context_switch.hpp"
#include "fd_wait.hpp"
#include "fiber_record.hpp"
#include "io_backend.hpp"
#include "stack_pool.hpp"
#include "timer_heap.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/clock.hpp"
#include "weft/core/runtime.hpp"

namespace weft::detail {

struct RuntimeState;

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC, same origin as steady_clock).
inline std::int64_t clock_ns() noexcept {
    return now_ns();
}
/// CLOCK_MONOTONIC_COARSE in nanoseconds: never ahead of clock_ns(), behind it by a tick at most.
inline std::int64_t coarse_clock_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               internal::coarse_now().time_since_epoch())
        .count();
}
/// Whether `when` (clock_ns() time) has come. The coarse clock answers when it can, which is
/// nearly always: a deadline behind it has passed, and one more than a generous margin ahead of
/// it has not (were the coarse clock ever later than that margin, the caller's timer would fire
/// on the next loop turn instead: late, never early). Only a deadline within the margin costs
/// an exact read.
inline bool due(std::int64_t when) noexcept {
    constexpr std::int64_t kMarginNs = 50'000'000;
    const std::int64_t rough = coarse_clock_ns();
    if (when <= rough) return true;
    if (when - rough > kMarginNs) return false;
    return when <= clock_ns();
}
inline std::int64_t deadline_ns(Deadline d) noexcept {
    if (d.is_never()) return INT64_MAX;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_point().time_since_epoch())
        .count();
}

/// Tiny test-and-set lock for the fiber registry (held for a few instructions).
class SpinLock {
  public:
    void lock() noexcept {
        while (flag_.exchange(true, std::memory_order_acquire)) {
            while (flag_.load(std::memory_order_relaxed))
                __builtin_ia32_pause();
        }
    }
    void unlock() noexcept { flag_.store(false, std::memory_order_release); }

  private:
    std::atomic<bool> flag_{false};
};

/// Logs a fiber's exception if nobody joined it and nobody logged it yet.
void report_unobserved_error(FiberRecord* f) noexcept;

/// A fiber parked in a patched pthread_mutex_lock, waiting for another fiber of its hub to let
/// go of the mutex (patch/locks.cpp); it lives on that fiber's stack.
struct LockWait;
/// A hub's LockWaits, oldest first.
struct LockWaitList {
    LockWait* head = nullptr;
    LockWait* tail = nullptr;
};

/// While a hub runs, its thread is noted: a mutex a fiber of another hub holds is then waited
/// for by parking (patch/locks.cpp).
void note_hub_thread(int tid) noexcept;
void forget_hub_thread(int tid) noexcept;

class HubImpl final : public Hub {
  public:
    HubImpl(RuntimeState& rt, unsigned index, Backend backend);
    ~HubImpl();

    /// Prepares the calling thread to be this hub's (backend, signal stack). May throw.
    void thread_init();
    /// The loop; returns once the hub is stopped and its fibers are gone. On the hub thread,
    /// after thread_init().
    void run_loop();
    /// Thread-safe stop request (cancels the fibers, then the loop exits).
    void request_stop() noexcept;

    static HubImpl* current() noexcept { return tls_hub_; }
    static FiberRecord* current_fiber() noexcept { return tls_fiber_; }
    FiberRecord* running() const noexcept { return current_; }
    bool on_hub_thread() const noexcept { return tls_hub_ == this; }

    // Fiber side.
    /// Parks the running fiber on `on` until made ready; arms the deadline; returns the wake
    /// result (ok, timed_out or cancelled).
    Result<void> park(Interruptible* on, Deadline deadline, const char* reason);
    /// Runs `f`'s park hook (internal::ParkHook) as a wait of `f` begins, removing it first.
    static void run_park_hook(FiberRecord* f) noexcept {
        internal::ParkHook* hook = f->park_hook;
        f->park_hook = nullptr;
        hook->on_park();
    }
    /// Returns Errc::cancelled / Errc::timed_out if the running fiber must not start waiting.
    Result<void> check_interrupt(Deadline deadline) const noexcept;
    [[gnu::always_inline]] inline void yield_running();
    /// Final switch of a finished fiber.
    [[noreturn]] void exit_running() noexcept;

    // Either side (hub thread).
    void make_ready(FiberRecord* f, Errc result) noexcept;
    void add_timer(TimerNode* n) { timers_.add(n); }
    void remove_timer(TimerNode* n) noexcept { timers_.remove(n); }
    /// Runs `fn` on this hub's loop, soon (hub thread only; no lock).
    void defer(UniqueFunction<void()> fn) { local_.push_back(std::move(fn)); }
    void cancel_fiber(FiberRecord* f) noexcept;
    /// Wakes `f` from its wait with `why` (a closed descriptor, ...) unless it is not parked.
    void interrupt(FiberRecord* f, Errc why) noexcept;
    FdWaitRegistry& fd_waits() noexcept { return fd_waits_; }
    LockWaitList& lock_waits() noexcept { return lock_waits_; }
    /// Blocking libc calls made by this hub's fibers park them (RuntimeOptions::patch_syscalls).
    bool patching() const noexcept { return patching_; }
    /// The eventfd other threads write to wake this hub; the backend keeps a read on it.
    int wake_fd() const noexcept { return wake_fd_; }
    /// The backend's poll() is past its wait (`waited`: it could block): the loop's clock
    /// reading, which stamps the fibers woken now and times the idle period, is taken here.
    void woke(bool waited) noexcept {
        if (waited || stats_) last_ns_ = woke_ns_ = clock_ns();
    }
    /// The same poll() is done with the completions it handled; `long_pass`: they took long
    /// enough (many of them, or a system call each) that the reading is read again, so that the
    /// next slice's start and the timer check are not dated back by them. The fibers they woke
    /// keep the wake's reading as their ready time.
    void handled(bool long_pass) noexcept {
        if (long_pass && stats_) last_ns_ = clock_ns();
    }
    void wake() noexcept;

    FiberRecord* spawn(const SpawnRequest& req);
    void release_record(FiberRecord* f) noexcept;

    IoBackend& io() noexcept { return *io_; }
    StackPool& stacks() noexcept { return stacks_; }
    RuntimeState& runtime_state() const noexcept { return rt_; }
    HubProbe& mutable_probe() noexcept { return probe_; }
    SwitchObserver* exchange_observer(SwitchObserver* o) noexcept {
        SwitchObserver* prev = observer_;
        observer_ = o;
        return prev;
    }
    bool stats_enabled() const noexcept { return stats_; }
    /// When the running fiber got the CPU (clock_ns() time), read at the switch; the clock
    /// itself outside a fiber or without statistics.
    std::int64_t slice_now_ns() const noexcept {
        return stats_ && current_ ? slice_start_ns_ : clock_ns();
    }
    bool stopping() const noexcept { return stopping_; }
    std::size_t live_fibers() const noexcept { return live_; }
    /// An emptied table of FiberLocal values a finished fiber left (nullptr when none is
    /// kept): a connection fiber sets the request context in each of its busy periods, and
    /// this saves the table's two allocations and frees each time.
    std::shared_ptr<const LocalTable> take_spare_locals() noexcept {
        if (spare_locals_.empty()) return nullptr;
        std::shared_ptr<const LocalTable> t = std::move(spare_locals_.back());
        spare_locals_.pop_back();
        return t;
    }

    // Public Hub face.
    unsigned index_value() const noexcept { return index_; }
    void post_any(UniqueFunction<void()> fn);
    const HubProbe& probe_ref() const noexcept { return probe_; }
    std::vector<FiberInfo> snapshot() const;
    std::array<std::size_t, kFiberStateCount> count_fibers() const;
    const char* backend_name_value() const noexcept;

    const char* thread_stack_lo() const noexcept { return thread_stack_lo_; }
    const char* thread_stack_hi() const noexcept { return thread_stack_hi_; }

  private:
    /// Leaves the running fiber (or, with nullptr, the loop) for the next ready fiber or the
    /// loop; returns when `from` runs again. Always inlined: every call level between a fiber's
    /// code and the stack switch costs a mispredicted return after it (Boost's jump_fcontext
    /// returns with pop+jmp, which leaves the return-stack predictor one entry off).
    [[gnu::always_inline]] inline void switch_away(FiberRecord* from) noexcept;
    FiberRecord* pick_next(FiberRecord* from, std::int64_t& now) noexcept;
    void start_slice(FiberRecord* next, std::int64_t now) noexcept;

  public:
    /// Right after a switch lands (in a fiber or the loop): frees a fiber that just died.
    void landed() noexcept;
    /// Drops `f`'s reference to its locals (their values die with the last one). Called by
    /// the fiber itself as it ends, so that the values' destructors run as that fiber.
    void drop_locals(FiberRecord* f) noexcept;

  private:
    void finish_fiber(FiberRecord* f) noexcept;
    void set_state(FiberRecord* f, FiberState s) noexcept;
    void run_posted();
    void begin_stop() noexcept;
    /// With stats on, stamps a fiber just queued as ready: from the loop, with the loop's last
    /// clock read; from a fiber's slice, at the end of that slice (see unstamped_).
    void stamp_ready(FiberRecord* f) noexcept {
        if (!current_)
            f->ready_at_ns = last_ns_;
        else if (!unstamped_)
            unstamped_ = f;
    }
    static void lag_probe_fired(TimerNode* n) noexcept;

    RuntimeState& rt_;
    unsigned index_;
    Backend backend_kind_;
    bool stats_;
    bool patching_;
    unsigned budget_;
    std::unique_ptr<IoBackend> io_;
    StackPool stacks_;
    TimerHeap timers_;
    Context hub_ctx_;
    FiberRecord* current_ = nullptr;
    FiberRecord* dead_ = nullptr;  ///< finished fiber to free once off its stack
    unsigned budget_left_ = 0;
    FiberRecord* ready_head_ = nullptr;
    FiberRecord* ready_tail_ = nullptr;
    /// The first fiber queued during the running slice; it and every fiber after it in the ready
    /// queue are stamped ready by the clock read that ends the slice, so a wakeup costs no clock
    /// read of its own (one read per slice). Only pick_next pops the queue, after stamping.
    FiberRecord* unstamped_ = nullptr;
    std::int64_t last_ns_ = 0;
    std::int64_t woke_ns_ = 0;  ///< the last poll's wake: the idle period's end (see handled())
    // The kernel's work inside blocking polls (io_uring sends, receives and completes I/O in
    // the call that waits), moved from idle to busy time once a window of kCpuWindowNs or more
    // has passed: see settle_idle().
    static constexpr std::int64_t kCpuWindowNs = 1'000'000;
    std::int64_t idle_pending_ = 0;  // idle wall time of the window, not published yet
    std::int64_t window_wall_ = 0;   // the window's start (a poll's wake)
    std::int64_t window_cpu_ = 0;    // the thread's CPU time then
    std::uint64_t window_busy_ = 0;  // probe_.busy_ns then
    void settle_idle(std::int64_t now) noexcept;
    void publish_busy(std::uint64_t add, std::int64_t since) noexcept;
    std::int64_t slice_start_ns_ = 0;
    std::size_t live_ = 0;
    static constexpr std::size_t kSpareLocals = 64;
    std::vector<std::shared_ptr<const LocalTable>> spare_locals_;  // capacity kSpareLocals
    bool stopping_ = false;
    bool stop_begun_ = false;

    std::vector<UniqueFunction<void()>> local_;
    std::vector<UniqueFunction<void()>> local_run_;

    // Cross-thread posting.
    std::mutex remote_mu_;
    std::vector<UniqueFunction<void()>> remote_;
    std::vector<UniqueFunction<void()>> remote_run_;
    std::atomic<bool> remote_pending_{false};
    std::atomic<bool> sleeping_{false};
    std::atomic<bool> stop_requested_{false};
    int wake_fd_ = -1;

    // Registry of live fibers.
    mutable SpinLock reg_lock_;
    FiberRecord* reg_head_ = nullptr;

    TimerNode lag_timer_;
    std::int64_t lag_interval_ns_ = 0;

    HubProbe probe_;
    FdWaitRegistry fd_waits_;
    LockWaitList lock_waits_;
    SwitchObserver* observer_ = nullptr;
    const char* thread_stack_lo_ = nullptr;
    const char* thread_stack_hi_ = nullptr;

    // constinit: no dynamic initialization, so every access is a plain %fs-relative load
    // (without it each access outside hub.cpp calls a TLS wrapper).
    static constinit thread_local HubImpl* tls_hub_ __attribute__((tls_model("initial-exec")));
    static constinit thread_local FiberRecord* tls_fiber_
        __attribute__((tls_model("initial-exec")));
};

}  // namespace weft::detail
