// Patched pthread_join (hence std::thread::join): on a fiber of a patching hub, a join of a
// thread that is still running parks only the fiber while a helper thread waits for the end;
// the hub serves its other fibers meanwhile. A library that joins a worker thread when a
// transfer is abandoned (libcurl's threaded resolver, which waits out a DNS timeout of seconds)
// no longer holds the hub. The join cannot be abandoned (the thread's result goes to the caller,
// and a library frees what the thread uses once it returns), so the fiber waits for it
// whatever its deadline or a cancel; its wait reason says "joining a thread".
#include <pthread.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <thread>

#include "patch/patch.hpp"
#include "runtime_state.hpp"

namespace weft::detail::patch {

namespace {

// A wait that neither a cancel nor a deadline ends: only the helper's post does.
struct JoinWait final : Interruptible {
    void interrupt(FiberRecord*, Errc) noexcept override {}
};

int join_impl(pthread_t t, void** ret) {
    const auto& real = real::calls();
    HubImpl* h = active();
    if (!h) return real.pthread_join(t, ret);
    count(*h, PatchedCall::pthread_join);
    if (pthread_equal(t, pthread_self())) return EDEADLK;  // as libc's (its try says EBUSY)
    // Already ended (or an error: EDEADLK for itself, EINVAL): libc's answer at once. libc's
    // own try, not a sanitizer's: the one join the caller made is recorded once, by its
    // interceptor around this call.
    if (const int r = real.pthread_tryjoin_np(t, ret); r != EBUSY) return r;
    count_wait(*h, PatchedCall::pthread_join);
    // What the helper thread touches lives on the heap, never on the fiber's stack (which the
    // fiber reuses as soon as it returns). The runtime waits for the helper before its hubs
    // go: the helper still wakes the hub's loop after the fiber saw its post.
    struct Shared {
        int rc = 0;
        void* ret = nullptr;
    };
    auto shared = std::make_shared<Shared>();
    FiberRecord* me = h->running();
    RuntimeState& st = h->runtime_state();
    {
        std::lock_guard<std::mutex> g(st.helpers_mu);
        ++st.helpers;
    }
    try {
        std::thread([h, me, t, shared, &st] {
            shared->rc = real::calls().pthread_join(t, &shared->ret);
            h->post_any([h, me] { h->make_ready(me, Errc::ok); });
            // Notified under the lock: ~Runtime may end the state once it can take it.
            std::lock_guard<std::mutex> g(st.helpers_mu);
            --st.helpers;
            st.helpers_cv.notify_all();
        }).detach();
    } catch (...) {
        {
            std::lock_guard<std::mutex> g(st.helpers_mu);
            --st.helpers;
        }
        return real.pthread_join(t, ret);  // no thread to wait with: the hub waits
    }
    JoinWait wait;
    (void)h->park(&wait, Deadline::never(), "joining a thread");
    if (ret) *ret = shared->ret;
    return shared->rc;
}

}  // namespace

}  // namespace weft::detail::patch

extern "C" int pthread_join(pthread_t t, void** ret) {
    return weft::detail::patch::join_impl(t, ret);
}
