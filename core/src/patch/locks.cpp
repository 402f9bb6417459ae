// Patched pthread_mutex_lock (hence std::mutex::lock and std::lock_guard): on a fiber of a
// patching hub, a mutex that another fiber of the same hub holds is waited for by parking the
// fiber, not its thread. That fiber holds the lock across a cooperative wait (a std::mutex
// around a shared connection's query, as thread-per-request code does): blocking the thread
// would keep the holder from ever running again, and the hub would hang for good (gevent
// patches threading.Lock for the same reason). pthread_mutex_unlock wakes the first fiber of
// its hub waiting for that mutex.
//
// A mutex held by another thread is waited for as libc waits (the thread lets go on its own).
// Glibc records the holder's thread id in every mutex that is not robust, priority-inheriting,
// priority-protected or process-shared: those kinds, error-checking mutexes (whose point is
// libc's EDEADLK for a lock the thread holds) and timed waits (pthread_mutex_timedlock,
// std::timed_mutex) stay libc's. A recursive mutex (std::recursive_mutex) held by a fiber is
// entered by the other fibers of its hub too, as by one thread: libc cannot tell them apart.
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
    bool linked = false;
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
    w.linked = true;
}

void unlink(LockWaitList& l, LockWait& w) noexcept {
    (w.prev ? w.prev->next : l.head) = w.next;
    (w.next ? w.next->prev : l.tail) = w.prev;
    w.prev = w.next = nullptr;
    w.linked = false;
}

// Unlinks the wait however the park ends (it may throw: arming the fiber's deadline).
struct Linked {
    LockWaitList& list;
    LockWait& w;
    Linked(LockWaitList& l, LockWait& wait, bool front) noexcept : list(l), w(wait) {
        link(list, w, front);
    }
    ~Linked() {
        if (w.linked) unlink(list, w);
    }
    Linked(const Linked&) = delete;
    Linked& operator=(const Linked&) = delete;
};

int lock_impl(pthread_mutex_t* m) {
    const auto& real = real::calls();
    HubImpl* h = active();
    if (!h) return real.pthread_mutex_lock(m);
    int r = real.pthread_mutex_trylock(m);
    if (r != EBUSY || !held_by_hub(*h, m)) return r == EBUSY ? real.pthread_mutex_lock(m) : r;
    count(*h, PatchedCall::pthread_mutex_lock);
    count_wait(*h, PatchedCall::pthread_mutex_lock);
    FiberRecord* f = h->running();
    LockWait w;
    w.mutex = m;
    w.fiber = f;
    // A lock taken inside another wait's bookkeeping (a destructor run as the fiber resumes)
    // must not change what that wait returns.
    const Errc outer_result = f->wake_result;
    bool again = false;
    for (;;) {
        if (f->park_hook) {
            // park() would run the hook after this fiber is in the list, and the hook may
            // itself wait (for another lock, too): run it first, then look again.
            internal::ParkHook* hook = f->park_hook;
            f->park_hook = nullptr;
            hook->on_park();
        } else {
            // One woken but beaten to the mutex waits first in line again.
            Linked in(h->lock_waits(), w, again);
            (void)h->park(&w, Deadline::never(), kReason);
            again = true;
        }
        r = real.pthread_mutex_trylock(m);
        if (r != EBUSY) break;
        if (!held_by_hub(*h, m)) {
            r = real.pthread_mutex_lock(m);
            break;
        }
    }
    f->wake_result = outer_result;
    return r;
}

int unlock_impl(pthread_mutex_t* m) {
    const int r = real::calls().pthread_mutex_unlock(m);
    HubImpl* h = HubImpl::current();
    if (__builtin_expect(h == nullptr, 1) || r != 0 || g_forked) return r;
    LockWaitList& list = h->lock_waits();
    for (LockWait* w = list.head; w; w = w->next) {
        if (w->mutex != m) continue;
        unlink(list, *w);
        h->make_ready(w->fiber, Errc::ok);
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
