// Patched pthread_mutex_lock (hence std::mutex::lock and std::lock_guard): on a fiber of a
// patching hub, a mutex that another fiber of the same hub holds is waited for by parking the
// fiber, not its thread. That fiber holds the lock across a cooperative wait (a std::mutex
// around a shared connection's query, as thread-per-request code does): blocking the thread
// would keep the holder from ever running again, and the hub would hang for good (gevent
// patches threading.Lock for the same reason). pthread_mutex_unlock wakes the first fiber of
// its hub waiting for that mutex, which takes it before any other fiber of the hub may (the
// waiters take turns, oldest first).
//
// A mutex held by another thread is waited for as libc waits (the thread lets go on its own).
// Glibc records the holder's thread id in every mutex that is not robust, priority-inheriting,
// priority-protected or process-shared: those kinds, error-checking mutexes (whose point is
// libc's EDEADLK for a lock the thread holds) and timed waits (pthread_mutex_timedlock, hence
// std::timed_mutex's try_lock_for and try_lock_until) stay libc's. A recursive mutex
// (std::recursive_mutex) held by a fiber is entered by the other fibers of its hub too, as by
// one thread: libc cannot tell them apart.
// Nor can it tell another fiber from the caller: a fiber that locks a mutex it holds itself
// waits for ever, as a thread would, but the hub serves on (fiber dumps show the wait).
#include <pthread.h>

#include <cerrno>

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

}  // namespace weft::detail

namespace weft::detail::patch {

namespace {

constexpr const char* kReason = "waiting for a thread lock another fiber of this hub holds";
// __data.__kind: the type in the low bits, then the flags of the mutexes whose holder is not
// simply __data.__owner (a process-shared one's may be another process's thread).
constexpr int kTypeMask = 3, kRobust = 16, kPrioInherit = 32, kPrioProtect = 64, kShared = 128;

/// Whether `h`'s thread holds `m`: another fiber of the hub (or the caller itself).
bool held_by_hub(const HubImpl& h, const pthread_mutex_t* m) noexcept {
    const int kind = __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
    if ((kind & kTypeMask) == PTHREAD_MUTEX_ERRORCHECK_NP ||
        (kind & (kRobust | kPrioInherit | kPrioProtect | kShared)))
        return false;
    return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) ==
           h.probe_ref().tid.load(std::memory_order_relaxed);
}

void link(LockWaitList& l, LockWait& w, bool front) noexcept {
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

void unlink(LockWaitList& l, LockWait& w) noexcept {
    (w.prev ? w.prev->next : l.head) = w.next;
    (w.next ? w.next->prev : l.tail) = w.prev;
    w.prev = w.next = nullptr;
}

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

int lock_impl(pthread_mutex_t* m) {
    const auto& real = real::calls();
    HubImpl* h = active();
    if (!h) return real.pthread_mutex_lock(m);
    LockWaitList& list = h->lock_waits();
    // The fibers of the hub that wait for the mutex go first, in turn: a fiber that unlocks it
    // and locks it again at once would otherwise always win (the one it woke cannot run before
    // it parks), and a loop that does so would starve the others for good.
    if (!list.head || !waited_for(list, m)) {
        const int r = real.pthread_mutex_trylock(m);
        if (r != EBUSY) return r;
        if (!held_by_hub(*h, m)) return real.pthread_mutex_lock(m);
    }
    count(*h, PatchedCall::pthread_mutex_lock);
    count_wait(*h, PatchedCall::pthread_mutex_lock);
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
        // Woken by an unlock, first in line: the mutex is free, unless a thread took it (wait
        // for it as libc does) or a fiber's pthread_mutex_trylock did (first in line again).
        r = real.pthread_mutex_trylock(m);
        if (r == EBUSY && !held_by_hub(*h, m)) r = real.pthread_mutex_lock(m);
        front = true;
    }
    f->wake_result = outer_result;
    return r;
}

int unlock_impl(pthread_mutex_t* m) {
    const int r = real::calls().pthread_mutex_unlock(m);
    HubImpl* h = HubImpl::current();
    if (__builtin_expect(h == nullptr, 1) || r != 0 || g_forked) return r;
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

}  // namespace

}  // namespace weft::detail::patch

extern "C" int pthread_mutex_lock(pthread_mutex_t* m) {
    return weft::detail::patch::lock_impl(m);
}

extern "C" int pthread_mutex_unlock(pthread_mutex_t* m) {
    return weft::detail::patch::unlock_impl(m);
}
