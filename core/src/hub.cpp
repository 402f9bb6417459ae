// The hub loop: scheduling, parking and waking, timers, posted work, stop, and the fiber registry.
#include "hub_impl.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "log.hpp"
#include "patch/real.hpp"
#include "runtime_state.hpp"
#include "signals.hpp"
#include "weft/core/internal/clock.hpp"

namespace weft::detail {

constinit thread_local HubImpl* HubImpl::tls_hub_ = nullptr;
constinit thread_local FiberRecord* HubImpl::tls_fiber_ = nullptr;

namespace {
std::size_t default_stack_size() noexcept {
#ifdef WEFT_SANITIZER_BUILD
    return 256 * 1024;
#else
    return 64 * 1024;
#endif
}

void bump(std::atomic<std::uint64_t>& a, std::uint64_t d = 1) noexcept {
    a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}
}  // namespace

HubImpl::HubImpl(RuntimeState& rt, unsigned index, Backend backend)
    : rt_(rt),
      index_(index),
      backend_kind_(backend),
      stats_(rt.options.collect_stats),
      patching_(rt.options.patch_syscalls),
      budget_(rt.options.run_budget ? rt.options.run_budget : 64),
      stacks_(rt.options.stack_size ? rt.options.stack_size : default_stack_size(),
              rt.options.stack_cache) {
    lag_interval_ns_ = stats_ ? std::chrono::nanoseconds(rt.options.lag_probe_interval).count() : 0;
    spare_locals_.reserve(kSpareLocals);  // kept there: finish_fiber() never allocates
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::system_category(), "eventfd");
    register_hub(this);
}

HubImpl::~HubImpl() {
    { std::lock_guard<std::mutex> g(remote_mu_); }  // a post_any() from another thread is done
    unregister_hub(this);
    ::close(wake_fd_);
}

const char* HubImpl::backend_name_value() const noexcept {
    return backend_kind_ == Backend::epoll ? "epoll" : "io_uring";
}

void HubImpl::thread_init() {
    tls_hub_ = this;
    probe_.tid.store(static_cast<int>(::syscall(SYS_gettid)), std::memory_order_relaxed);
    std::string tname = rt_.options.name + "-hub-" + std::to_string(index_);
    if (tname.size() > 15) tname.resize(15);
    pthread_setname_np(pthread_self(), tname.c_str());
    install_thread_signal_stack();
    context_init_thread(hub_ctx_);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void* addr = nullptr;
        std::size_t size = 0;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            thread_stack_lo_ = static_cast<const char*>(addr);
            thread_stack_hi_ = thread_stack_lo_ + size;
        }
        pthread_attr_destroy(&attr);
    }
    io_ = backend_kind_ == Backend::epoll ? make_epoll_backend(*this, rt_.options)
                                          : make_io_uring_backend(*this, rt_.options);
    last_ns_ = clock_ns();
    if (lag_interval_ns_ > 0) {
        lag_timer_.fire = &HubImpl::lag_probe_fired;
        lag_timer_.when_ns = last_ns_ + lag_interval_ns_;
        timers_.add(&lag_timer_);
    }
}

void HubImpl::lag_probe_fired(TimerNode* n) noexcept {
    HubImpl* h = tls_hub_;
    std::int64_t now = clock_ns();
    h->probe_.lag.observe(now - n->when_ns);
    if (!h->stopping_) {
        n->when_ns = now + h->lag_interval_ns_;
        h->timers_.add(n);
    }
}

// ---------------------------------------------------------------------------------------------
// The loop.

namespace {

std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);  // a system call (no vDSO): ~0.2 us
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

// The idle time of the window since the last settlement, less what the thread spent on a CPU
// inside its polls, goes to idle_ns; that CPU time goes to busy_ns. It is the thread's CPU
// time over the window less the busy wall time (when the thread runs, it is on a CPU), so at
// most the window's idle time, and never negative: a window in which a fiber blocked the
// thread without using a CPU (a raw sleep) counts less of the kernel's work than there was.
// One clock read a millisecond at most, after a wait that could block.
void HubImpl::settle_idle(std::int64_t now) noexcept {
    const std::int64_t cpu = thread_cpu_ns();
    const auto busy_wall =
        static_cast<std::int64_t>(probe_.busy_ns.load(std::memory_order_relaxed) - window_busy_);
    std::int64_t in_polls = (cpu - window_cpu_) - busy_wall;
    if (in_polls < 0) in_polls = 0;
    if (in_polls > idle_pending_) in_polls = idle_pending_;
    bump(probe_.busy_ns, static_cast<std::uint64_t>(in_polls));
    bump(probe_.idle_ns, static_cast<std::uint64_t>(idle_pending_ - in_polls));
    idle_pending_ = 0;
    window_wall_ = now;
    window_cpu_ = cpu;
    window_busy_ = probe_.busy_ns.load(std::memory_order_relaxed);
}

// Adds `add` to busy_ns and moves busy_since_ns, as one change for readers (a seqlock: see
// internal::busy_ns_now).
void HubImpl::publish_busy(std::uint64_t add, std::int64_t since) noexcept {
    const std::uint32_t seq = probe_.busy_seq.load(std::memory_order_relaxed);
    probe_.busy_seq.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    if (add != 0) bump(probe_.busy_ns, add);
    probe_.busy_since_ns.store(since, std::memory_order_relaxed);
    probe_.busy_seq.store(seq + 2, std::memory_order_release);
}

void HubImpl::run_loop() {
    const int tid = probe_.tid.load(std::memory_order_relaxed);
    note_hub_thread(tid);
    probe_.activity.store(HubActivity::running, std::memory_order_relaxed);
    std::int64_t busy_from = last_ns_;
    if (stats_) {
        publish_busy(0, busy_from);
        window_wall_ = last_ns_;
        window_cpu_ = thread_cpu_ns();
        window_busy_ = probe_.busy_ns.load(std::memory_order_relaxed);
    }
    for (;;) {
        // Ready fibers, up to the budget: they switch among themselves and come back here
        // when the budget is spent or nothing is ready.
        if (ready_head_) {
            budget_left_ = budget_;
            switch_away(nullptr);
            probe_.running_fiber.store(0, std::memory_order_relaxed);
        }
        bump(probe_.epoch);
        if (stats_) probe_.slice_start_ns.store(last_ns_, std::memory_order_relaxed);

        bool ran_other = false;  // posted functions or the stop: work of unknown length
        if (remote_pending_.load(std::memory_order_acquire) || !local_.empty()) {
            run_posted();
            ran_other = true;
        }
        if (stop_requested_.load(std::memory_order_relaxed) && !stop_begun_) {
            begin_stop();
            ran_other = true;
        }
        // With statistics, the clock was read just now: by the switch that ended the last slice,
        // or as the last poll woke when no fiber ran since (or after its completions, when there
        // were many: see handled()), so timers fire microseconds late at most, never early.
        const bool clock_read = !timers_.empty();
        if (clock_read && (!stats_ || ran_other)) last_ns_ = clock_ns();
        if (clock_read && timers_.next_deadline() <= last_ns_) timers_.fire_due(last_ns_);

        if (stopping_ && live_ == 0 && local_.empty() && !ready_head_ && io_->pending_ops() == 0 &&
            !remote_pending_.load(std::memory_order_acquire))
            break;

        std::int64_t timeout = 0;
        if (!ready_head_ && local_.empty()) {
            std::int64_t next = timers_.next_deadline();
            if (next == INT64_MAX) {
                timeout = -1;
            } else {
                // There are timers, so last_ns_ is fresh (see above).
                timeout = next > last_ns_ ? next - last_ns_ : 0;
            }
        }
        if (timeout != 0) {
            sleeping_.store(true, std::memory_order_seq_cst);
            if (remote_pending_.load(std::memory_order_seq_cst)) timeout = 0;
        }
        if (timeout != 0) {
            const std::int64_t before = clock_read ? last_ns_ : clock_ns();
            if (stats_) {
                publish_busy(static_cast<std::uint64_t>(before - busy_from), 0);
            }
            probe_.activity.store(HubActivity::waiting, std::memory_order_relaxed);
            io_->poll(timeout);  // reads the clock into last_ns_ as it wakes (woke())
            probe_.activity.store(HubActivity::running, std::memory_order_relaxed);
            sleeping_.store(false, std::memory_order_relaxed);
            // Idle until the wake; the completions handled after it are busy time (even when
            // handled() read the clock again after them).
            busy_from = woke_ns_;
            if (stats_) {
                publish_busy(0, busy_from);
                idle_pending_ += woke_ns_ - before;
                if (woke_ns_ - window_wall_ >= kCpuWindowNs) settle_idle(woke_ns_);
            }
        } else {
            sleeping_.store(false, std::memory_order_relaxed);
            io_->poll(0);  // with statistics, reads the clock into last_ns_ (woke())
            // A hub with always more to do never waits: its busy time is added as it goes,
            // or busy_ns would stand still while the hub is saturated.
            if (stats_ && last_ns_ - busy_from >= kCpuWindowNs) {
                publish_busy(static_cast<std::uint64_t>(last_ns_ - busy_from), last_ns_);
                busy_from = last_ns_;
            }
        }
        bump(probe_.epoch);
    }
    if (stats_) {
        const std::int64_t end = clock_ns();
        publish_busy(static_cast<std::uint64_t>(end - busy_from), 0);
        settle_idle(end);
    }
    probe_.activity.store(HubActivity::stopped, std::memory_order_relaxed);
    forget_hub_thread(tid);
    io_.reset();
    remove_thread_signal_stack();
    tls_hub_ = nullptr;
}

// The scheduler. Control moves from a fiber (or the hub loop, from == nullptr) straight to the
// next ready fiber while the budget lasts, and to the hub loop otherwise, so a yield or a park
// costs one stack switch. Every switch advances the epoch the watchdog watches.
inline void HubImpl::start_slice(FiberRecord* next, std::int64_t now) noexcept {
    current_ = next;
    tls_fiber_ = next;
    set_state(next, FiberState::running);
    probe_.running_fiber.store(next->id, std::memory_order_relaxed);
    if (stats_) {
        slice_start_ns_ = now;
        probe_.slice_start_ns.store(now, std::memory_order_relaxed);
        probe_.schedule_delay.observe(now - next->ready_at_ns);
    }
}

inline FiberRecord* HubImpl::pick_next(FiberRecord* from, std::int64_t& now) noexcept {
    bump(probe_.epoch);
    if (stats_) {
        // The loop's switch to its first fiber uses the loop's reading, taken as the last poll
        // woke (the completions it handled since take microseconds).
        now = from ? clock_ns() : last_ns_;
        // Fibers woken (or spawned, or yielding) during the slice that ends here.
        for (FiberRecord* f = unstamped_; f; f = f->next_ready)
            f->ready_at_ns = now;
        unstamped_ = nullptr;
        if (from) probe_.run_duration.observe(now - slice_start_ns_);
        last_ns_ = now;
    }
    if (observer_) observer_->on_switch(stats_ ? now : clock_ns());
    if (budget_left_ == 0 || !ready_head_) return nullptr;
    --budget_left_;
    FiberRecord* next = ready_head_;
    ready_head_ = next->next_ready;
    if (!ready_head_) ready_tail_ = nullptr;
    next->next_ready = nullptr;
    return next;
}

inline void HubImpl::landed() noexcept {
    if (dead_) {
        FiberRecord* d = dead_;
        dead_ = nullptr;
        finish_fiber(d);
    }
}

inline void HubImpl::switch_away(FiberRecord* from) noexcept {
    std::int64_t now = 0;
    FiberRecord* next = pick_next(from, now);
    if (next == from && next) {  // a yield with nobody else ready: keep running
        start_slice(next, now);
        return;
    }
    Context& from_ctx = from ? from->ctx : hub_ctx_;
    if (next) {
        start_slice(next, now);
        context_switch(from_ctx, next->ctx);
    } else {
        if (!from) return;  // the loop itself: nothing to run
        current_ = nullptr;
        tls_fiber_ = nullptr;
        probe_.running_fiber.store(0, std::memory_order_relaxed);
        context_switch(from_ctx, hub_ctx_);
    }
    landed();
}

void HubImpl::set_state(FiberRecord* f, FiberState s) noexcept {
    f->state.store(s, std::memory_order_relaxed);  // counted by readers (fiber_counts())
}

void HubImpl::make_ready(FiberRecord* f, Errc result) noexcept {
    WEFT_ASSERT(f->hub == this, "make_ready on a foreign hub");
    WEFT_ASSERT(f->state.load(std::memory_order_relaxed) != FiberState::ready,
                "fiber made ready twice");
    f->wake_result = result;
    // Woken: whatever it was parked on must not wake it again (a timer falling due in the same
    // loop turn, a cancel) before it runs.
    f->parked_on = nullptr;
    if (stats_) stamp_ready(f);
    set_state(f, FiberState::ready);
    f->next_ready = nullptr;
    if (ready_tail_)
        ready_tail_->next_ready = f;
    else
        ready_head_ = f;
    ready_tail_ = f;
}

// ---------------------------------------------------------------------------------------------
// Parking.

namespace {
struct ParkTimer {
    TimerNode node;
    FiberRecord* fiber;
    static void fired(TimerNode* n) noexcept {
        auto* t = reinterpret_cast<ParkTimer*>(n);
        FiberRecord* f = t->fiber;
        // parked_on is cleared when the fiber is made ready: a fiber woken earlier in this loop
        // turn keeps its timer until it runs and must not be woken twice.
        if (f->parked_on) f->parked_on->interrupt(f, Errc::timed_out);
    }
};
static_assert(offsetof(ParkTimer, node) == 0);
}  // namespace

Result<void> HubImpl::check_interrupt(Deadline deadline) const noexcept {
    if (current_ && current_->cancel_requested) return Errc::cancelled;
    std::int64_t when = deadline_ns(deadline);
    if (current_ && current_->deadline_ns < when) when = current_->deadline_ns;
    if (when != INT64_MAX && due(when)) return Errc::timed_out;
    return {};
}

Result<void> HubImpl::park(Interruptible* on, Deadline deadline, const char* reason) {
    FiberRecord* f = current_;
    WEFT_CHECK(f != nullptr, "a blocking call needs a fiber (use weft::run or spawn)");
    if (f->park_hook) [[unlikely]]
        run_park_hook(f);
    // The fiber's own deadline (a request's) bounds every wait, its caller's or not.
    if (f->deadline_ns != INT64_MAX && f->deadline_ns < deadline_ns(deadline))
        deadline = Deadline(Clock::time_point(std::chrono::nanoseconds(f->deadline_ns)));
    f->parked_on = on;
    f->wait_reason.store(reason, std::memory_order_relaxed);
    set_state(f, FiberState::parked);
    ParkTimer timer{{}, f};
    if (f->cancel_requested) {
        on->interrupt(f, Errc::cancelled);
    } else if (!deadline.is_never()) {
        std::int64_t when = deadline_ns(deadline);
        if (due(when)) {
            on->interrupt(f, Errc::timed_out);
        } else {
            timer.node.when_ns = when;
            timer.node.fire = &ParkTimer::fired;
            timers_.add(&timer.node);
        }
    }
    switch_away(f);
    if (timer.node.armed()) timers_.remove(&timer.node);
    f->parked_on = nullptr;
    f->wait_reason.store(nullptr, std::memory_order_relaxed);
    if (f->wake_result != Errc::ok) return f->wake_result;
    return {};
}

inline void HubImpl::yield_running() {
    FiberRecord* f = current_;
    WEFT_CHECK(f != nullptr, "yield() needs a fiber");
    make_ready(f, Errc::ok);
    switch_away(f);
}

}  // namespace weft::detail

// Here rather than in fiber.cpp so that the whole yield inlines down to the stack switch.
void weft::this_fiber::yield() {
    weft::detail::HubImpl* hub = weft::detail::HubImpl::current();
    if (!hub || !hub->running()) {
        std::this_thread::yield();
        return;
    }
    hub->yield_running();
}

namespace weft::detail {

void HubImpl::exit_running() noexcept {
    FiberRecord* f = current_;
    set_state(f, FiberState::done);
    dead_ = f;  // whoever runs next frees it, off its stack
    std::int64_t now = 0;
    FiberRecord* next = pick_next(f, now);
    if (next) {
        start_slice(next, now);
        context_exit(f->ctx, next->ctx);
    }
    current_ = nullptr;
    tls_fiber_ = nullptr;
    probe_.running_fiber.store(0, std::memory_order_relaxed);
    context_exit(f->ctx, hub_ctx_);
}

void HubImpl::interrupt(FiberRecord* f, Errc why) noexcept {
    if (f->state.load(std::memory_order_relaxed) == FiberState::parked && f->parked_on)
        f->parked_on->interrupt(f, why);
}

void HubImpl::cancel_fiber(FiberRecord* f) noexcept {
    if (f->state.load(std::memory_order_relaxed) == FiberState::done) return;
    f->cancel_requested = true;
    if (f->state.load(std::memory_order_relaxed) == FiberState::parked && f->parked_on)
        f->parked_on->interrupt(f, Errc::cancelled);
}

// ---------------------------------------------------------------------------------------------
// Spawn and finish.

FiberRecord* HubImpl::spawn(const SpawnRequest& req) {
    Stack stack = stacks_.allocate();
    // Record and user state live at the top of the stack; the fiber runs below them. A callable
    // too large for that would land in the guard page or below the stack: refused instead.
    // (The smallest stack a configuration may ask for is 16 KiB: a few KiB must do there.)
    constexpr std::size_t kMinUsable = 4 * 1024;
    const std::size_t size =
        reinterpret_cast<std::uintptr_t>(stack.hi()) - reinterpret_cast<std::uintptr_t>(stack.lo());
    if (req.state_size + req.state_align + sizeof(FiberRecord) + 64 + kMinUsable > size) {
        stacks_.release(stack);
        throw std::length_error("spawn: the callable (" + std::to_string(req.state_size) +
                                " bytes) leaves less than 4 KiB of the " + std::to_string(size) +
                                "-byte fiber stack; capture large objects by pointer or in a "
                                "std::unique_ptr");
    }
    std::uintptr_t top = reinterpret_cast<std::uintptr_t>(stack.hi());
    std::uintptr_t state_at = (top - req.state_size) & ~(std::uintptr_t(req.state_align) - 1);
    std::uintptr_t rec_at = (state_at - sizeof(FiberRecord)) & ~std::uintptr_t(63);
    // Default-initialized: every member has its initializer. Value-initialization ("()")
    // zeroed the whole record first with `rep stos`, slow to start on AMD's cores (BM_SpawnJoin
    // 10 ns less without it).
    auto* f = new (reinterpret_cast<void*>(rec_at)) FiberRecord;
    f->hub = this;
    f->stack = stack;
    f->ops = req.ops;
    f->user_state = reinterpret_cast<void*>(state_at);
    try {
        req.construct(f->user_state, req.arg);
    } catch (...) {
        f->~FiberRecord();
        stacks_.release(stack);
        throw;
    }
    std::uint64_t n = probe_.fibers_spawned.load(std::memory_order_relaxed) + 1;
    probe_.fibers_spawned.store(n, std::memory_order_relaxed);
    f->id = (n - 1) * rt_.hubs.size() + index_ + 1;
    f->parent = current_ ? current_->id : 0;
    if (current_) {
        // The request's deadline and fiber-local context flow into the fibers it spawns.
        f->deadline_ns = current_->deadline_ns;
        f->locals = current_->locals;
        if (f->locals) ++current_->locals_shares;
        // So do the labels of what it serves (the watchdog's request, route and plugin): a
        // link the spawner updates as its labels change, cleared when it ends.
        if (current_->labels) {
            if (!current_->own_labels) {
                current_->own_labels = new (std::nothrow) LabelsLink{current_->labels, 1};
            }
            f->inherited_labels = current_->own_labels;
        } else {
            f->inherited_labels = current_->inherited_labels;
        }
        if (f->inherited_labels) ++f->inherited_labels->refs;
    }
    f->site = req.site;
    std::size_t len = req.name.size() < sizeof(f->name) - 1 ? req.name.size() : sizeof(f->name) - 1;
    std::memcpy(f->name, req.name.data(), len);
    f->name[len] = '\0';
    // The age shown in fiber dumps; within a slice, the slice's start is close enough.
    f->created_ns = stats_ ? (current_ ? slice_start_ns_ : last_ns_) : 0;
    f->cancel_requested = stopping_;
    std::size_t usable =
        (rec_at & ~std::uintptr_t(15)) - reinterpret_cast<std::uintptr_t>(stack.lo());
    context_init_fiber(f->ctx, stack.lo(), usable);
    {
        std::lock_guard<SpinLock> g(reg_lock_);
        f->reg_next = reg_head_;
        if (reg_head_) reg_head_->reg_prev = f;
        reg_head_ = f;
    }
    ++live_;
    if (stats_) stamp_ready(f);
    if (ready_tail_)
        ready_tail_->next_ready = f;
    else
        ready_head_ = f;
    ready_tail_ = f;
    return f;
}

void fiber_entry_point() noexcept {
    HubImpl* hub = HubImpl::current();
    hub->landed();  // the fiber that switched here may have just finished
    FiberRecord* f = hub->running();
    f->ops->run(f->user_state);
    // The callable is gone (returned or threw): labels it owned are too.
    f->labels = nullptr;
    if (f->own_labels) f->own_labels->labels = nullptr;
    // The fiber's values die here, as the fiber (a destructor may read its other locals, log
    // with the fiber's name, or wait), and before a joiner wakes.
    if (f->locals) hub->drop_locals(f);
    std::uintptr_t w = f->join_word.exchange(FiberRecord::kJoinDone, std::memory_order_seq_cst);
    // Nobody can observe an exception once the handle is gone: say so now (gevent's
    // handle_error). A handle dropped later without join() reports it in fiber_release().
    if (f->refs.load(std::memory_order_seq_cst) == 1) report_unobserved_error(f);
    if (w > FiberRecord::kJoinDone) {
        auto* joiner = reinterpret_cast<FiberRecord*>(w);
        if (joiner->hub == hub) {
            hub->make_ready(joiner, Errc::ok);
        } else {
            HubImpl* jh = joiner->hub;
            jh->post_any([jh, joiner] { jh->make_ready(joiner, Errc::ok); });
        }
    }
    hub->exit_running();
}

void report_unobserved_error(FiberRecord* f) noexcept {
    if (f->joined || f->error_reported.exchange(true, std::memory_order_relaxed)) return;
    if (std::exception_ptr e = f->ops->error(f->user_state)) log_fiber_exception(f->name, f->id, e);
}

void HubImpl::finish_fiber(FiberRecord* f) noexcept {
    {
        std::lock_guard<SpinLock> g(reg_lock_);
        if (f->reg_prev)
            f->reg_prev->reg_next = f->reg_next;
        else
            reg_head_ = f->reg_next;
        if (f->reg_next) f->reg_next->reg_prev = f->reg_prev;
    }
    context_destroy(f->ctx);
    if (f->locals) drop_locals(f);  // values set as the fiber ended (it dropped the rest)
    if (LabelsLink* l = f->own_labels) {
        l->labels = nullptr;  // what they pointed to may go with the fiber
        if (--l->refs == 0) delete l;
    }
    if (LabelsLink* l = f->inherited_labels; l && --l->refs == 0) delete l;
    --live_;
    release_record(f);
}

void HubImpl::drop_locals(FiberRecord* f) noexcept {
    if (f->locals && f->locals.use_count() == 1) {
        // The values die one by one, last made first, with the table still the fiber's: a
        // destructor may read the fiber's other locals (those made before its own). What a
        // destructor sets meanwhile dies at once (fiber_local_set), so the table stays.
        f->locals_ending = true;
        auto& slots = const_cast<LocalTable&>(*f->locals).slots;
        // A destructor that spawns a fiber shares the table with it: the values left then live
        // on with that fiber (which drops them as it ends), and only the reference goes here.
        for (std::size_t i = slots.size(); i-- > 0 && f->locals.use_count() == 1;) {
            std::shared_ptr<void> v = std::move(slots[i]);
            v.reset();
        }
        f->locals_ending = false;
    }
    // What the fiber's locals hold is freed when it ends, not with its handle. A table no
    // other fiber shares is kept, emptied, for the next fiber that sets a value.
    if (std::shared_ptr<const LocalTable> t = std::move(f->locals); t && t.use_count() == 1) {
        for (std::shared_ptr<void>& v : const_cast<LocalTable&>(*t).slots)
            v.reset();
        if (spare_locals_.size() < kSpareLocals) spare_locals_.push_back(std::move(t));
    }
}

void HubImpl::release_record(FiberRecord* f) noexcept {
    if (f->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // Last reference: the fiber has finished and its handle is gone.
    HubImpl* owner = f->hub;
    if (owner != tls_hub_) {
        owner->post_any([owner, f] {
            f->refs.store(1, std::memory_order_relaxed);
            owner->release_record(f);
        });
        return;
    }
    f->ops->destroy(f->user_state);
    Stack s = f->stack;
    f->~FiberRecord();
    stacks_.release(s);
}

// ---------------------------------------------------------------------------------------------
// Posting and stop.

void HubImpl::post_any(UniqueFunction<void()> fn) {
    if (tls_hub_ == this) {
        local_.push_back(std::move(fn));
        return;
    }
    // All this thread does to the hub is done under the lock: once it is let go, the hub may
    // run the function, stop, and be freed (its destructor takes the lock once, to wait for a
    // thread still in here).
    std::lock_guard<std::mutex> g(remote_mu_);
    remote_.push_back(std::move(fn));
    remote_pending_.store(true, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst)) wake();
}

void HubImpl::wake() noexcept {
    std::uint64_t one = 1;
    ssize_t r = real::calls().write(wake_fd_, &one, sizeof one);
    (void)r;  // EAGAIN: the counter is saturated, the hub is awake anyway
}

void HubImpl::run_posted() {
    if (remote_pending_.exchange(false, std::memory_order_acq_rel)) {
        std::lock_guard<std::mutex> g(remote_mu_);
        remote_run_.swap(remote_);
    }
    for (auto& fn : remote_run_)
        fn();
    remote_run_.clear();
    while (!local_.empty()) {
        local_run_.swap(local_);
        for (auto& fn : local_run_)
            fn();
        local_run_.clear();
    }
}

void HubImpl::request_stop() noexcept {
    stop_requested_.store(true, std::memory_order_seq_cst);
    remote_pending_.store(true, std::memory_order_seq_cst);
    wake();
}

void HubImpl::begin_stop() noexcept {
    stop_begun_ = true;
    stopping_ = true;
    if (lag_timer_.armed()) timers_.remove(&lag_timer_);
    std::vector<FiberRecord*> all;
    {
        std::lock_guard<SpinLock> g(reg_lock_);
        for (FiberRecord* f = reg_head_; f; f = f->reg_next)
            all.push_back(f);
    }
    for (FiberRecord* f : all)
        cancel_fiber(f);
    io_->cancel_all();
}

// ---------------------------------------------------------------------------------------------
// Snapshot for dumps (any thread).

std::array<std::size_t, kFiberStateCount> HubImpl::count_fibers() const {
    std::array<std::size_t, kFiberStateCount> n{};
    std::lock_guard<SpinLock> g(reg_lock_);
    for (FiberRecord* f = reg_head_; f; f = f->reg_next)
        ++n[static_cast<std::size_t>(f->state.load(std::memory_order_relaxed))];
    return n;
}

std::vector<FiberInfo> HubImpl::snapshot() const {
    // Copied under the registry's spin lock without allocating, turned into FiberInfo after it:
    // the hub never spins while a reader mallocs (which may stall behind the mmap lock).
    struct Raw {
        FiberId id, parent;
        FiberState state;
        const char* wait;
        std::source_location site;
        std::int64_t created_ns;
        char name[sizeof(FiberRecord::name)];
    };
    std::vector<Raw> raw;
    for (std::size_t want = 0;;) {
        raw.resize(want);
        std::size_t n = 0;
        {
            std::lock_guard<SpinLock> g(reg_lock_);
            for (FiberRecord* f = reg_head_; f; f = f->reg_next, ++n) {
                if (n >= raw.size()) continue;  // only counting now
                Raw& r = raw[n];
                r.id = f->id;
                r.parent = f->parent;
                r.state = f->state.load(std::memory_order_relaxed);
                r.wait = f->wait_reason.load(std::memory_order_relaxed);
                r.site = f->site;
                r.created_ns = f->created_ns;
                std::memcpy(r.name, f->name, sizeof r.name);
            }
        }
        if (n <= raw.size()) {
            raw.resize(n);
            break;
        }
        want = n + n / 4 + 8;  // fibers came meanwhile: room for a few more
    }
    const std::int64_t now = clock_ns();
    std::vector<FiberInfo> out;
    out.reserve(raw.size());
    for (const Raw& r : raw) {
        FiberInfo i;
        i.id = r.id;
        i.parent = r.parent;
        i.name.assign(r.name, strnlen(r.name, sizeof r.name));
        i.state = r.state;
        if (r.wait) i.wait_reason = r.wait;
        i.spawn_file = r.site.file_name();
        i.spawn_line = r.site.line();
        i.spawn_function = r.site.function_name();
        i.age_ns = r.created_ns ? now - r.created_ns : 0;
        out.push_back(std::move(i));
    }
    return out;
}

}  // namespace weft::detail

// ---------------------------------------------------------------------------------------------
// Public Hub face.

namespace weft {

using detail::HubImpl;

Hub* Hub::current() noexcept {
    return HubImpl::current();
}
unsigned Hub::index() const noexcept {
    return static_cast<const HubImpl*>(this)->index_value();
}
Runtime& Hub::runtime() const noexcept {
    return *static_cast<const HubImpl*>(this)->runtime_state().owner;
}
const char* Hub::backend_name() const noexcept {
    return static_cast<const HubImpl*>(this)->backend_name_value();
}
void Hub::post(UniqueFunction<void()> fn) {
    static_cast<HubImpl*>(this)->post_any(std::move(fn));
}
std::vector<FiberInfo> Hub::fibers() const {
    return static_cast<const HubImpl*>(this)->snapshot();
}
std::array<std::size_t, kFiberStateCount> Hub::fiber_counts() const {
    return static_cast<const HubImpl*>(this)->count_fibers();
}

namespace internal {
const HubProbe& probe(const Hub& hub) noexcept {
    return static_cast<const HubImpl&>(hub).probe_ref();
}
SwitchObserver* exchange_switch_observer(Hub& hub, SwitchObserver* o) noexcept {
    return static_cast<HubImpl&>(hub).exchange_observer(o);
}
Clock::duration coarse_tick() noexcept {
    static const Clock::duration tick = [] {
        timespec ts{};
        if (::clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0)
            return Clock::duration(std::chrono::milliseconds(10));
        return std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                           std::chrono::nanoseconds(ts.tv_nsec));
    }();
    return tick;
}
Clock::time_point slice_now() noexcept {
    const HubImpl* h = HubImpl::current();
    return Clock::time_point(std::chrono::nanoseconds(h ? h->slice_now_ns() : detail::clock_ns()));
}
std::uint64_t begin_allow_blocking(Hub& hub) noexcept {
    HubProbe& p = static_cast<HubImpl&>(hub).mutable_probe();
    const std::uint64_t previous = p.blocking_allowed_fiber.load(std::memory_order_relaxed);
    p.blocking_allowed_fiber.store(p.running_fiber.load(std::memory_order_relaxed),
                                   std::memory_order_relaxed);
    p.blocking_allowed.store(p.blocking_allowed.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
    return previous;
}
void end_allow_blocking(Hub& hub, std::uint64_t previous) noexcept {
    HubProbe& p = static_cast<HubImpl&>(hub).mutable_probe();
    p.blocking_allowed.store(p.blocking_allowed.load(std::memory_order_relaxed) - 1,
                             std::memory_order_relaxed);
    // The mark goes back to the fiber that had it, unless another fiber marked since. (Two
    // fibers inside scopes at once: the one that marked last counts as allowed, the other's
    // blocking is reported as if it were not: an extra report rather than a hidden one.)
    if (p.blocking_allowed_fiber.load(std::memory_order_relaxed) ==
        p.running_fiber.load(std::memory_order_relaxed))
        p.blocking_allowed_fiber.store(previous, std::memory_order_relaxed);
}
}  // namespace internal

const char* hub_activity_name(HubActivity a) noexcept {
    switch (a) {
        case HubActivity::starting:
            return "starting";
        case HubActivity::running:
            return "running";
        case HubActivity::waiting:
            return "idle";
        case HubActivity::stopped:
            return "stopped";
    }
    return "?";
}

const char* fiber_state_name(FiberState s) noexcept {
    switch (s) {
        case FiberState::ready:
            return "ready";
        case FiberState::running:
            return "running";
        case FiberState::parked:
            return "parked";
        case FiberState::done:
            return "done";
    }
    return "?";
}

}  // namespace weft
