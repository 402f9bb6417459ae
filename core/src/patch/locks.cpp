// Patched pthread_mutex_lock (hence std::mutex::lock and std::lock_guard): on a fiber of a
// patching hub, a mutex that another fiber of the same hub holds is waited for by parking the
// fiber, not its thread. That fiber holds the lock across a cooperative wait (a std::mutex
// around a shared connection's query, as thread-per-request code does): blocking the thread
// would keep the holder from ever running again, and the hub would hang for good (gevent
// patches threading.Lock for the same reason). pthread_mutex_unlock wakes the first fiber of
// its hub waiting for that mutex, which takes it before any other fiber of the hub may (the
// waiters take turns, oldest first).
//
// A mutex held by a thread that runs no hub is waited for as libc waits (the thread lets go on
// its own). One that another hub's fiber holds (it may keep it across its own waits) is waited
// for by parking too, woken by the unlock from whatever thread (see lock_held_elsewhere).
// Glibc records the holder's thread id in every mutex that is not robust, priority-inheriting,
// priority-protected or process-shared: those kinds, error-checking mutexes (whose point is
// libc's EDEADLK for a lock the thread holds) and timed waits (pthread_mutex_timedlock, hence
// std::timed_mutex's try_lock_for and try_lock_until) stay libc's. A recursive mutex
// (std::recursive_mutex) held by a fiber is entered by the other fibers of its hub too, as by
// one thread: libc cannot tell them apart.
// Nor can it tell another fiber from the caller: a fiber that locks a mutex it holds itself
// waits for ever, as a thread would, but the hub serves on (fiber dumps show the wait).
//
// Patched pthread_rwlock_rdlock and pthread_rwlock_wrlock (hence std::shared_mutex's
// lock_shared and lock): glibc refused a fiber a lock another fiber of its hub held for
// writing (EDEADLK, as if the thread asked twice), and a lock held for reading by a fiber of
// the hub and wanted for writing held the hub for good. A fiber that cannot take a lock that
// fibers of its own hub hold (for writing, as glibc records; for reading, as the hub notes: glibc
// does not record readers) parks, listed by the lock's address, and pthread_rwlock_unlock wakes
// every fiber listed for it; each tries again (and looks again every few milliseconds). A lock
// another thread holds, another hub's included, is waited for as libc does. A fiber that wants
// a lock it holds itself waits for ever, as for a mutex. Timed waits stay libc's.
//
// Patched pthread_cond_wait, pthread_cond_timedwait and pthread_cond_clockwait (hence
// std::condition_variable's wait, wait_for and wait_until): on a fiber of a patching hub the
// wait parks the fiber. A pool of connections behind a mutex and a condition variable, as
// thread-per-request code writes it, otherwise hangs its hub as soon as it runs dry: the fiber
// waiting for a connection holds the thread that the fiber returning one needs. The waiting
// fibers of every hub are listed in one registry (bucketed by the condition variable's
// address); pthread_cond_signal and
// pthread_cond_broadcast, from any thread, wake the first (or every) fiber listed for that
// condition variable, on its own hub, and call libc's as well for the threads that wait there
// (POSIX lets a signal wake more than one waiter). Like a lock, the wait ignores cancels and the
// fiber's own deadline (a condition wait cannot fail that way, and a caller's loop would spin on
// the error); a timed wait ends at its time. Process-shared condition variables stay libc's,
// and so do all of them in a TSan build: TSan's own wrappers find libc's by version (dlvsym),
// past these unversioned ones.
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>

#include "patch/patch.hpp"

namespace weft::detail {

struct LockWait final : Interruptible {
    pthread_mutex_t* mutex = nullptr;
    FiberRecord* fiber = nullptr;
    LockWait* prev = nullptr;
    LockWait* next = nullptr;
    bool woken = false;  // made ready by an unlock, still first in line until it runs
    // Neither a cancel nor a deadline ends the wait: pthread_mutex_lock cannot fail that way
    // (a caller that ignored an error would run its critical section without the lock). Only
    // the holder's unlock wakes it.
    void interrupt(FiberRecord*, Errc) noexcept override {}
};

/// A fiber listed by an address (a condition variable's, or a mutex's that another hub's
/// fiber holds) in a registry that any thread's signal or unlock looks through.
struct ListedWait : Interruptible {
    const void* key = nullptr;
    HubImpl* hub = nullptr;
    FiberRecord* fiber = nullptr;
    ListedWait* prev = nullptr;  // in the registry, under its bucket's lock
    ListedWait* next = nullptr;
    bool signalled = false;     // under the bucket's lock: taken out of it by a signal or unlock
    bool wake_arrived = false;  // hub thread only: that wake has come

  protected:
    ~ListedWait() = default;
};

struct CondWait final : ListedWait {
    bool timed = false;  // a timed wait, and its time has not come yet
    void interrupt(FiberRecord* f, Errc why) noexcept override {
        // Only the wait's own time ends it (the fiber's deadline is set aside during it).
        if (why == Errc::timed_out && timed) hub->make_ready(f, why);
    }
};

/// A wait for a lock that an unlock ends (a mutex another hub's fiber holds, a read-write lock),
/// or the time to look again.
struct UnlockWait final : ListedWait {
    void interrupt(FiberRecord* f, Errc why) noexcept override {
        if (why == Errc::timed_out) hub->make_ready(f, why);
    }
};

}  // namespace weft::detail

namespace weft::detail::patch {

namespace {

constexpr const char* kReason = "waiting for a thread lock another fiber of this hub holds";
// __data.__kind: the type in the low bits, then the flags of the mutexes whose holder is not
// simply __data.__owner (a process-shared one's may be another process's thread).
constexpr int kTypeMask = 3, kRobust = 16, kPrioInherit = 32, kPrioProtect = 64, kShared = 128;

/// Whether `m` is of a kind that stays libc's: error-checking, or one whose holder glibc does
/// not record as a plain thread id.
bool libcs_kind(const pthread_mutex_t* m) noexcept {
    const int kind = __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
    return (kind & kTypeMask) == PTHREAD_MUTEX_ERRORCHECK_NP ||
           (kind & (kRobust | kPrioInherit | kPrioProtect | kShared));
}

/// The thread id of `m`'s holder as glibc records it: 0 for none, or a kind libc keeps. (glibc
/// records it just after taking the lock and clears it just before letting go: a lock can be
/// held with 0 here for a few instructions.)
int holder_of(const pthread_mutex_t* m) noexcept {
    return libcs_kind(m) ? 0 : __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
}

int tid_of(const HubImpl& h) noexcept {
    return h.probe_ref().tid.load(std::memory_order_relaxed);
}

/// Whether `h`'s thread holds `m`: another fiber of the hub (or the caller itself).
bool held_by_hub(const HubImpl& h, const pthread_mutex_t* m) noexcept {
    const int holder = holder_of(m);
    return holder != 0 && holder == tid_of(h);
}

/// The threads that run hubs now (any runtime's), by thread id: a mutex's holder among them
/// is a fiber that may keep it across its own waits. Slots past the high mark were never used.
constexpr std::size_t kHubThreads = 1024;
std::atomic<int> g_hub_threads[kHubThreads];
std::atomic<std::size_t> g_hub_threads_high{0};

bool is_hub_thread(int tid) noexcept {
    const std::size_t n = g_hub_threads_high.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i)
        if (g_hub_threads[i].load(std::memory_order_relaxed) == tid) return true;
    return false;
}

// The intrusive lists of waiters here (a hub's lock waiters, every hub's condition waiters):
// a head and a tail, nodes with prev and next.
template <class List, class Node>
void link(List& l, Node& w, bool front) noexcept {
    if (front) {
        w.prev = nullptr;
        w.next = l.head;
        (l.head ? l.head->prev : l.tail) = &w;
        l.head = &w;
    } else {
        w.next = nullptr;
        w.prev = l.tail;
        (l.tail ? l.tail->next : l.head) = &w;
        l.tail = &w;
    }
}

template <class List, class Node>
void unlink(List& l, Node& w) noexcept {
    (w.prev ? w.prev->next : l.head) = w.next;
    (w.next ? w.next->prev : l.tail) = w.prev;
    w.prev = w.next = nullptr;
}

// ---------------------------------------------------------------------------------------------
// The registries of fibers waiting by address, every hub's: in buckets by the address (as the
// kernel hashes futexes), oldest first in each. A signal or an unlock looks only through its own
// bucket, and takes no lock when nobody waits there. (One list for all made every signal, from
// any thread, scan every waiting fiber under one lock.)

struct alignas(64) WaitBucket {
    SpinLock lock;
    ListedWait* head = nullptr;
    ListedWait* tail = nullptr;
    std::atomic<std::size_t> waiting{0};  // how many are listed: wakers skip the lock at 0
};
constexpr unsigned kBucketBits = 8;
struct WaitRegistry {
    WaitBucket buckets[1u << kBucketBits];
    // How many are listed in all: one line every waker reads first, hot in its cache, where a
    // bucket's (one of 256) may not be (every unlock in the process looks: see unlock_impl).
    alignas(64) std::atomic<std::size_t> waiting{0};
};
WaitRegistry g_cond_waits;   // fibers waiting on condition variables
WaitRegistry g_cross_locks;  // fibers waiting for mutexes that other hubs' fibers hold
WaitRegistry g_rwlocks;      // fibers waiting for read-write locks

WaitBucket& bucket_of(WaitRegistry& r, const void* key) noexcept {
    // Fibonacci hashing: the multiply spreads the address's middle bits into the top ones.
    const auto a = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key));
    return r.buckets[(a * 0x9E3779B97F4A7C15ull) >> (64 - kBucketBits)];
}

// Under the bucket's lock.
void list_in(WaitRegistry& r, WaitBucket& b, ListedWait& w) noexcept {
    link(b, w, false);
    b.waiting.fetch_add(1, std::memory_order_relaxed);
    r.waiting.fetch_add(1, std::memory_order_relaxed);
}

void unlist(WaitRegistry& r, WaitBucket& b, ListedWait& w) noexcept {
    unlink(b, w);
    b.waiting.fetch_sub(1, std::memory_order_relaxed);
    r.waiting.fetch_sub(1, std::memory_order_relaxed);
}

/// On `w`'s hub thread: the signal that took `w` out of the registry wakes its fiber (which
/// may already be ready: its time came meanwhile, and it then waits for this).
void deliver(ListedWait* w) noexcept {
    w->wake_arrived = true;
    if (w->fiber->parked_on == w) w->hub->make_ready(w->fiber, Errc::ok);
}

/// Set while this thread hands wakes out (wake_listed): a lock taken there (a hub's queue of
/// posted work) is waited for as libc does, never by parking. A fiber parked inside a wake
/// would miss the wake of the wait it was itself about to start (cond_wait_impl).
thread_local bool t_waking = false;

/// wake_listed() once some fiber is listed.
[[gnu::noinline]] void wake_listed_slow(WaitRegistry& r, const void* key, bool all) noexcept {
    if (g_forked) return;
    WaitBucket& b = bucket_of(r, key);
    if (b.waiting.load(std::memory_order_acquire) == 0) return;
    ListedWait* taken = nullptr;  // chained through `next`, once out of the registry
    ListedWait** last = &taken;
    {
        std::lock_guard<SpinLock> g(b.lock);
        for (ListedWait* w = b.head; w;) {
            ListedWait* next = w->next;
            if (w->key == key) {
                unlist(r, b, *w);
                w->signalled = true;
                *last = w;
                last = &w->next;
                if (!all) break;
            }
            w = next;
        }
    }
    // A taken fiber cannot leave its wait before deliver() ran: `w` and its hub outlive this.
    HubImpl* here = HubImpl::current();
    const bool was_waking = t_waking;
    t_waking = true;
    for (ListedWait* w = taken; w;) {
        ListedWait* next = w->next;
        if (w->hub == here) {
            deliver(w);
        } else {
            try {
                w->hub->post_any([w] { deliver(w); });
            } catch (...) {
                // No memory for the posted wake: the fiber would wait for ever. Nothing to do
                // but say so and stop, as libc would for a corrupted condition variable.
                std::terminate();
            }
        }
        w = next;
    }
    t_waking = was_waking;
}

/// Wakes the fibers listed for `key` in `r` (the first one, or all): at once on this hub's
/// thread, through the hub's queue of posted work from another thread.
[[gnu::always_inline]] inline void wake_listed(WaitRegistry& r, const void* key,
                                               bool all) noexcept {
    if (r.waiting.load(std::memory_order_acquire) != 0) [[unlikely]]
        wake_listed_slow(r, key, all);
}

/// `w` in its registry from its construction until its wait is over, however that ends.
struct Listed {
    ListedWait& w;
    WaitRegistry& registry;
    WaitBucket& bucket;
    const char* reason;  // while it waits for a wake on its way
    Listed(WaitRegistry& r, ListedWait& wait, const char* why) noexcept
        : w(wait), registry(r), bucket(bucket_of(r, wait.key)), reason(why) {
        std::lock_guard<SpinLock> g(bucket.lock);
        list_in(registry, bucket, w);
    }
    /// Whether a signal has taken `w` out of the registry.
    bool taken() noexcept {
        std::lock_guard<SpinLock> g(bucket.lock);
        return w.signalled;
    }
    /// Leaves the registry; returns whether a signal took `w` out first. Then, if it did, waits
    /// for that signal's wake (posted from another thread, it may not have come yet).
    bool leave() {
        bool signalled;  // once out of the registry, `w.signalled` changes no more
        {
            std::lock_guard<SpinLock> g(bucket.lock);
            signalled = w.signalled;
            if (!signalled) unlist(registry, bucket, w);
        }
        while (signalled && !w.wake_arrived)
            (void)w.hub->park(&w, Deadline::never(), reason);
        left = true;
        return signalled;
    }
    ~Listed() {
        if (left) return;
        // Unwinding out of a park (arming a timer failed): still listed, or about to be woken.
        std::lock_guard<SpinLock> g(bucket.lock);
        if (w.signalled && !w.wake_arrived) std::terminate();  // a wake would find no fiber
        if (!w.signalled) unlist(registry, bucket, w);
    }
    Listed(const Listed&) = delete;
    Listed& operator=(const Listed&) = delete;

  private:
    bool left = false;
};

// ---------------------------------------------------------------------------------------------
// Mutexes.

// In line while parked: unlinked however the park ends (it may throw: arming the fiber's
// deadline). Only the waiter itself leaves the line; an unlock only wakes it.
struct Linked {
    LockWaitList& list;
    LockWait& w;
    Linked(LockWaitList& l, LockWait& wait, bool front) noexcept : list(l), w(wait) {
        link(list, w, front);
    }
    ~Linked() { unlink(list, w); }
    Linked(const Linked&) = delete;
    Linked& operator=(const Linked&) = delete;
};

/// Whether fibers of `l`'s hub wait for `m`.
bool waited_for(const LockWaitList& l, const pthread_mutex_t* m) noexcept {
    for (const LockWait* w = l.head; w; w = w->next)
        if (w->mutex == m) return true;
    return false;
}

constexpr const char* kCrossReason = "waiting for a thread lock a fiber of another hub holds";
constexpr std::chrono::nanoseconds kLookAgainFirst = std::chrono::milliseconds(1);
constexpr std::chrono::nanoseconds kLookAgainMost = std::chrono::milliseconds(10);
// How long libc waits for a mutex another hub's thread holds before the fiber parks, and in
// slices of how long (the holder is looked at again between them).
constexpr std::chrono::nanoseconds kLibcWaitFirst = std::chrono::milliseconds(1);
constexpr std::chrono::nanoseconds kLibcSlice = std::chrono::microseconds(250);

/// One wait of the running fiber for a lock an unlock of `key` lets go: listed in `r` first (an
/// unlock from then on finds it), it tries `try_take`, parks unless that got it or `park_now`
/// says not to, until the unlock's wake or `again` passed, and tries again. Returns
/// `try_take`'s last answer.
template <class TryTake, class ParkNow>
int listed_attempt(HubImpl& h, WaitRegistry& r, const void* key, std::chrono::nanoseconds again,
                   const char* reason, TryTake try_take, ParkNow park_now) {
    UnlockWait w;
    w.key = key;
    w.hub = &h;
    w.fiber = h.running();
    Listed listed(r, w, reason);
    int rc = try_take();
    if (rc == EBUSY && park_now()) (void)h.park(&w, Deadline(again), reason);
    (void)listed.leave();
    if (rc == EBUSY) rc = try_take();
    return rc;
}

/// libc's wait for `m` for at most `ns`: 0 once taken, ETIMEDOUT, or an error.
int libc_wait(pthread_mutex_t* m, std::chrono::nanoseconds ns) noexcept {
    timespec until{};
    ::clock_gettime(CLOCK_MONOTONIC, &until);
    const std::int64_t at = until.tv_nsec + ns.count();
    until.tv_sec += static_cast<time_t>(at / 1'000'000'000);
    until.tv_nsec = static_cast<long>(at % 1'000'000'000);
    return real::calls().pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &until);
}

/// Takes `m`, held by a thread other than this hub's. `counted`: whether this call's wait was
/// counted (lock_impl's own line counts it otherwise).
///
/// A thread that runs no hub lets go on its own: wait for it as libc does. So for a short hold
/// by another hub's thread (its queue of posted work, a counter): libc waits for the first
/// millisecond, a slice at a time. A hold longer than that is most likely a fiber's that keeps
/// it across its waits (a query, a sleep), for as long as they last: libc's wait would hold
/// this hub that long, and for good if that fiber waits for this hub (a channel, a join). The
/// fiber parks instead, listed by the mutex's address, until an unlock from any thread wakes
/// the first one listed for it; it also looks again every few milliseconds, for an unlock libc
/// makes inside itself (its own condition wait, on a hub that does not patch them). As a lock
/// wait, neither a cancel nor a deadline ends it. EBUSY: a fiber of this hub holds it now (the
/// caller's line waits for it).
int lock_held_elsewhere(HubImpl& h, pthread_mutex_t* m, bool& counted) {
    const auto& real = real::calls();
    if (libcs_kind(m)) return real.pthread_mutex_lock(m);  // (lock_impl saw to t_waking)
    FiberRecord* f = h.running();
    const Errc outer_result = f->wake_result;  // as in lock_impl
    std::optional<InterruptsAside> aside;
    std::chrono::nanoseconds libc_left = kLibcWaitFirst;
    std::chrono::nanoseconds again = kLookAgainFirst;
    const auto try_take = [&] { return real.pthread_mutex_trylock(m); };
    int r = EBUSY;
    for (;;) {
        const int holder = holder_of(m);
        if (holder != 0 && holder == tid_of(h)) break;
        if (holder != 0 && !is_hub_thread(holder)) {
            r = real.pthread_mutex_lock(m);
            break;
        }
        if (libc_left.count() > 0 || holder == 0) {
            // A short hold, or one whose holder is not recorded yet (or no more).
            const auto slice = std::min(kLibcSlice, std::max(libc_left, kLibcSlice / 8));
            if (r = libc_wait(m, slice); r != ETIMEDOUT) break;
            r = EBUSY;
            libc_left -= slice;
            continue;
        }
        if (!aside) {
            if (!counted) {
                count(h, PatchedCall::pthread_mutex_lock);
                count_wait(h, PatchedCall::pthread_mutex_lock);
                counted = true;
            }
            if (f->park_hook) HubImpl::run_park_hook(f);  // before its interrupts are set aside
            aside.emplace(f);
        }
        r = listed_attempt(h, g_cross_locks, m, again, kCrossReason, try_take,
                           [&] { return holder_of(m) == holder; });
        if (r != EBUSY) break;
        again = std::min(again * 2, kLookAgainMost);
    }
    aside.reset();
    f->wake_result = outer_result;
    return r;
}

int lock_impl(pthread_mutex_t* m) {
    const auto& real = real::calls();
    HubImpl* h = active();
    if (!h || t_waking) return real.pthread_mutex_lock(m);
    LockWaitList& list = h->lock_waits();
    // The fibers of the hub that wait for the mutex go first, in turn: a fiber that unlocks it
    // and locks it again at once would otherwise always win (the one it woke cannot run before
    // it parks), and a loop that does so would starve the others for good.
    bool counted = false;
    if (!list.head || !waited_for(list, m)) {
        int r = real.pthread_mutex_trylock(m);
        if (r == EBUSY && !held_by_hub(*h, m)) r = lock_held_elsewhere(*h, m, counted);
        if (r != EBUSY) return r;
    }
    if (!counted) {
        count(*h, PatchedCall::pthread_mutex_lock);
        count_wait(*h, PatchedCall::pthread_mutex_lock);
        counted = true;
    }
    FiberRecord* f = h->running();
    LockWait w;
    w.mutex = m;
    w.fiber = f;
    // A lock taken inside another wait's bookkeeping (a destructor run as the fiber resumes)
    // must not change what that wait returns.
    const Errc outer_result = f->wake_result;
    // park() would run a hook after this fiber is in line: run it first.
    if (f->park_hook) HubImpl::run_park_hook(f);
    bool front = false;
    int r = EBUSY;
    while (r == EBUSY) {
        {
            Linked in(list, w, front);
            w.woken = false;
            (void)h->park(&w, Deadline::never(), kReason);
        }
        // Woken by an unlock, first in line: the mutex is free, unless another thread took it
        // (see lock_held_elsewhere) or a fiber's pthread_mutex_trylock did (first in line
        // again).
        r = real.pthread_mutex_trylock(m);
        if (r == EBUSY && !held_by_hub(*h, m)) r = lock_held_elsewhere(*h, m, counted);
        front = true;
    }
    f->wake_result = outer_result;
    return r;
}

int unlock_impl(pthread_mutex_t* m) {
    const int r = real::calls().pthread_mutex_unlock(m);
    if (r != 0) return r;
    // A fiber of another hub may wait for it (lock_held_elsewhere), whatever thread this is.
    // (glibc's unlock is an atomic exchange, which x86-64 orders before this look at the
    // waiters; elsewhere a wake lost to reordering is made up by the waiter's look again.)
    wake_listed(g_cross_locks, m, false);
    HubImpl* h = HubImpl::current();
    if (__builtin_expect(h == nullptr, 1) || g_forked) return r;
    // The first fiber in line for it runs next; it stays in line (so that no other fiber of the
    // hub takes the mutex first) until it does. One woken already is enough.
    for (LockWait* w = h->lock_waits().head; w; w = w->next) {
        if (w->mutex != m) continue;
        if (!w->woken) {
            w->woken = true;
            h->make_ready(w->fiber, Errc::ok);
        }
        break;
    }
    return r;
}

// ---------------------------------------------------------------------------------------------
// Condition variables.

constexpr const char* kCondReason = "waiting on a condition variable";
// __data.__wrefs: bit 0 process-shared, bit 1 CLOCK_MONOTONIC (pthread_condattr_setclock).
constexpr unsigned kCondShared = 1, kCondMonotonic = 2;

/// The deadline of a wait until `abstime` on `clock`: due already when that time has passed,
/// never when it is too far to count in nanoseconds (a `tv_sec` of LONG_MAX means forever).
Deadline deadline_at(clockid_t clock, const timespec& abstime) noexcept {
    timespec now{};
    ::clock_gettime(clock, &now);
    if (abstime.tv_sec < now.tv_sec) return Deadline(std::chrono::nanoseconds(0));
    const std::int64_t sec = abstime.tv_sec - now.tv_sec;  // >= 0: no overflow
    if (sec == 0 && abstime.tv_nsec <= now.tv_nsec) return Deadline(std::chrono::nanoseconds(0));
    return after(sec, abstime.tv_nsec - now.tv_nsec);
}

/// The fiber's condition wait; `abstime` on `clock`, or nullptr for none.
int cond_wait_impl(HubImpl& h, pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                   const timespec* abstime) {
    if (abstime && (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1'000'000'000L)) return EINVAL;
    count(h, PatchedCall::pthread_cond_wait);
    FiberRecord* f = h.running();
    // park() would run the fiber's park hook inside the wait, its interrupts set aside (a
    // request's hang-up watcher must see the request's deadline): run it first.
    if (f->park_hook) HubImpl::run_park_hook(f);
    CondWait w;
    w.key = c;
    w.hub = &h;
    w.fiber = f;
    w.timed = abstime != nullptr;
    Deadline deadline = abstime ? deadline_at(clock, *abstime) : Deadline::never();
    // A wait inside another wait's bookkeeping (a destructor run as the fiber resumes) must not
    // change what that wait returns.
    const Errc outer_result = f->wake_result;
    InterruptsAside aside(f);
    // Listed before the mutex is let go: a signal sent under the mutex after the caller's
    // check of its condition finds this fiber.
    Listed listed(g_cond_waits, w, kCondReason);
    if (const int r = unlock_impl(m); r != 0) {
        // Not the holder of an error-checking mutex: EPERM, as libc's. A signal that took
        // this fiber meanwhile goes on to the next.
        w.timed = false;
        if (listed.leave()) wake_listed(g_cond_waits, c, false);
        f->wake_result = outer_result;
        return r;
    }
    count_wait(h, PatchedCall::pthread_cond_wait);
    // (A signal that came as the mutex was let go has delivered its wake already: no park.)
    Result<void> woke = w.wake_arrived ? Result<void>() : h.park(&w, deadline, kCondReason);
    // The wall clock may have been set back meanwhile: a CLOCK_REALTIME wait ends when that
    // clock says so.
    while (!woke && clock == CLOCK_REALTIME && abstime) {
        deadline = deadline_at(clock, *abstime);
        if (deadline.passed() || listed.taken()) break;
        woke = h.park(&w, deadline, kCondReason);
    }
    // Taken by a signal as its time came: that signal counts (it must not be lost).
    w.timed = false;
    const bool signalled = listed.leave();
    f->wake_result = outer_result;
    if (const int r = lock_impl(m); r != 0) return r;
    return signalled || !abstime ? 0 : ETIMEDOUT;
}

// ---------------------------------------------------------------------------------------------
// Read-write locks.

constexpr const char* kRwlockReason =
    "waiting for a read-write lock another fiber of this hub holds";

/// The thread that holds `l` for writing (0: none).
int writer_of(const pthread_rwlock_t* l) noexcept {
    return __atomic_load_n(&l->__data.__cur_writer, __ATOMIC_RELAXED);
}

/// The read holds taken on this thread while it runs a hub (glibc does not record readers):
/// every read lock taken there, whichever call took it (rdlock, tryrdlock, timed), counted
/// in, every read unlock there counted out. Up to 16 locks by address; holds past that are
/// only counted, and while there are any, every lock reads as held here (a fiber then parks
/// and looks again, where an undercount would have it wait in libc for a fiber of its own
/// hub, for good).
struct ReadHold {
    const pthread_rwlock_t* lock = nullptr;
    unsigned count = 0;
};
constexpr std::size_t kReadHolds = 16;
thread_local ReadHold t_read_holds[kReadHolds];
thread_local unsigned t_read_holds_untracked = 0;

void note_read_hold(const pthread_rwlock_t* l) noexcept {
    ReadHold* free = nullptr;
    for (ReadHold& h : t_read_holds) {
        if (h.count != 0 && h.lock == l) {
            ++h.count;
            return;
        }
        if (h.count == 0 && !free) free = &h;
    }
    if (free)
        *free = {l, 1};
    else
        ++t_read_holds_untracked;
}

void drop_read_hold(const pthread_rwlock_t* l) noexcept {
    for (ReadHold& h : t_read_holds) {
        if (h.count != 0 && h.lock == l) {
            --h.count;
            return;
        }
    }
    if (t_read_holds_untracked != 0) --t_read_holds_untracked;
}

bool read_held_here(const pthread_rwlock_t* l) noexcept {
    if (t_read_holds_untracked != 0) return true;
    for (const ReadHold& h : t_read_holds)
        if (h.count != 0 && h.lock == l) return true;
    return false;
}

/// `r` (a read lock's result) once noted, when this thread runs a hub.
int noted_read(const pthread_rwlock_t* l, int r) noexcept {
    if (r == 0 && HubImpl::current()) note_read_hold(l);
    return r;
}

/// A fiber's pthread_rwlock_rdlock or pthread_rwlock_wrlock: `try_take` the matching try,
/// `libc_take` libc's wait, `held_here` whether fibers of this hub hold `l` the way that keeps
/// this call out (then they are parked: the caller runs).
template <class TryTake, class LibcTake, class HeldHere>
int rwlock_impl(HubImpl& h, PatchedCall call, pthread_rwlock_t* l, TryTake try_take,
                LibcTake libc_take, HeldHere held_here) {
    int r = try_take();
    if (r != EBUSY) return r;
    if (t_waking || !held_here()) return libc_take();
    count(h, call);
    count_wait(h, call);
    FiberRecord* f = h.running();
    const Errc outer_result = f->wake_result;     // as in lock_impl
    if (f->park_hook) HubImpl::run_park_hook(f);  // before its interrupts are set aside
    {
        // Neither a cancel nor a deadline ends it: the call cannot fail that way (a caller that
        // ignored the error would read or write without the lock).
        InterruptsAside aside(f);
        for (auto again = kLookAgainFirst; r == EBUSY;
             again = std::min(again * 2, kLookAgainMost)) {
            if (!held_here()) {
                r = libc_take();  // taken by another thread meanwhile
                break;
            }
            r = listed_attempt(h, g_rwlocks, l, again, kRwlockReason, try_take, held_here);
        }
    }
    f->wake_result = outer_result;
    return r;
}

/// The hub whose fiber may park in a condition wait on `c`, or nullptr.
HubImpl* cond_hub(const pthread_cond_t* c) noexcept {
    HubImpl* h = active();
    if (!h) return nullptr;
    return (__atomic_load_n(&c->__data.__wrefs, __ATOMIC_RELAXED) & kCondShared) ? nullptr : h;
}

clockid_t cond_clock(const pthread_cond_t* c) noexcept {
    return (__atomic_load_n(&c->__data.__wrefs, __ATOMIC_RELAXED) & kCondMonotonic)
               ? CLOCK_MONOTONIC
               : CLOCK_REALTIME;
}

}  // namespace

}  // namespace weft::detail::patch

namespace weft::detail {

void note_hub_thread(int tid) noexcept {
    using namespace patch;
    for (std::size_t i = 0; i < kHubThreads; ++i) {
        int free = 0;
        if (g_hub_threads[i].compare_exchange_strong(free, tid, std::memory_order_relaxed)) {
            std::size_t high = g_hub_threads_high.load(std::memory_order_relaxed);
            while (high < i + 1 && !g_hub_threads_high.compare_exchange_weak(
                                       high, i + 1, std::memory_order_release)) {
            }
            return;
        }
    }
    // More hubs than slots: a mutex one of the others holds is waited for as libc does.
}

void forget_hub_thread(int tid) noexcept {
    using namespace patch;
    const std::size_t n = g_hub_threads_high.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        int mine = tid;
        if (g_hub_threads[i].compare_exchange_strong(mine, 0, std::memory_order_relaxed)) return;
    }
}

}  // namespace weft::detail

extern "C" int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
    using namespace weft::detail::patch;
    if (weft::detail::HubImpl* h = cond_hub(c))
        return cond_wait_impl(*h, c, m, CLOCK_REALTIME, nullptr);
    return weft::detail::real::calls().pthread_cond_wait(c, m);
}

extern "C" int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m,
                                      const timespec* abstime) {
    using namespace weft::detail::patch;
    if (weft::detail::HubImpl* h = cond_hub(c))
        return cond_wait_impl(*h, c, m, cond_clock(c), abstime);
    return weft::detail::real::calls().pthread_cond_timedwait(c, m, abstime);
}

extern "C" int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                      const timespec* abstime) {
    using namespace weft::detail::patch;
    if (clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC)
        if (weft::detail::HubImpl* h = cond_hub(c)) return cond_wait_impl(*h, c, m, clock, abstime);
    return weft::detail::real::calls().pthread_cond_clockwait(c, m, clock, abstime);
}

extern "C" int pthread_cond_signal(pthread_cond_t* c) {
    weft::detail::patch::wake_listed(weft::detail::patch::g_cond_waits, c, false);
    return weft::detail::real::calls().pthread_cond_signal(c);
}

extern "C" int pthread_cond_broadcast(pthread_cond_t* c) {
    weft::detail::patch::wake_listed(weft::detail::patch::g_cond_waits, c, true);
    return weft::detail::real::calls().pthread_cond_broadcast(c);
}

extern "C" int pthread_mutex_lock(pthread_mutex_t* m) {
    return weft::detail::patch::lock_impl(m);
}

extern "C" int pthread_mutex_unlock(pthread_mutex_t* m) {
    return weft::detail::patch::unlock_impl(m);
}

extern "C" int pthread_rwlock_rdlock(pthread_rwlock_t* l) {
    using namespace weft::detail::patch;
    const auto& real = weft::detail::real::calls();
    weft::detail::HubImpl* h = active();
    if (!h) return noted_read(l, real.pthread_rwlock_rdlock(l));
    const int tid = tid_of(*h);
    return rwlock_impl(
        *h, PatchedCall::pthread_rwlock_rdlock, l,
        [&] { return noted_read(l, real.pthread_rwlock_tryrdlock(l)); },
        [&] { return noted_read(l, real.pthread_rwlock_rdlock(l)); },
        [&] { return writer_of(l) == tid; });
}

// The other ways to take a read lock are libc's, only noted (see ReadHold).
extern "C" int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) {
    using namespace weft::detail::patch;
    return noted_read(l, weft::detail::real::calls().pthread_rwlock_tryrdlock(l));
}

extern "C" int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const timespec* abstime) {
    using namespace weft::detail::patch;
    return noted_read(l, weft::detail::real::calls().pthread_rwlock_timedrdlock(l, abstime));
}

extern "C" int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock,
                                          const timespec* abstime) {
    using namespace weft::detail::patch;
    return noted_read(l, weft::detail::real::calls().pthread_rwlock_clockrdlock(l, clock, abstime));
}

extern "C" int pthread_rwlock_wrlock(pthread_rwlock_t* l) {
    using namespace weft::detail::patch;
    const auto& real = weft::detail::real::calls();
    weft::detail::HubImpl* h = active();
    if (!h) return real.pthread_rwlock_wrlock(l);
    const int tid = tid_of(*h);
    return rwlock_impl(
        *h, PatchedCall::pthread_rwlock_wrlock, l, [&] { return real.pthread_rwlock_trywrlock(l); },
        [&] { return real.pthread_rwlock_wrlock(l); },
        [&] { return writer_of(l) == tid || read_held_here(l); });
}

extern "C" int pthread_rwlock_unlock(pthread_rwlock_t* l) {
    using namespace weft::detail::patch;
    // A hub's thread that does not hold it for writing lets go of a read hold (perhaps one a
    // fiber took through the patched rdlock).
    weft::detail::HubImpl* h = weft::detail::HubImpl::current();
    const bool reader = h && writer_of(l) != tid_of(*h);
    const int r = weft::detail::real::calls().pthread_rwlock_unlock(l);
    if (r != 0) return r;
    if (reader) drop_read_hold(l);
    // Readers may all go in now, or a writer: every fiber waiting tries again (as for a mutex,
    // x86-64 orders the unlock's atomic update before this look).
    wake_listed(g_rwlocks, l, true);
    return r;
}
