// Patched sleeps: sleep, usleep, nanosleep and clock_nanosleep (relative and absolute). On a
// fiber of a patching hub they park only that fiber until the time has passed (a zero sleep
// yields to the hub's other fibers, as gevent's sleep(0)); a cancelled fiber wakes early and the
// call reports an interruption the way libc reports a signal (EINTR and the time left), once;
// after that, or past the fiber's deadline, a sleep lasts at most 10 ms (see park_for).
// Everywhere else they are libc's own.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>

#include "patch/patch.hpp"

namespace weft::detail::patch {

namespace {

using std::chrono::nanoseconds;

// Saturated: a timespec of more than ~292 years (LONG_MAX seconds, "forever") would overflow.
nanoseconds to_ns(const timespec& ts) noexcept {
    constexpr std::int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
    if (ts.tv_sec >= kMaxSeconds) return nanoseconds::max();
    if (ts.tv_sec <= -kMaxSeconds) return nanoseconds::min();
    return std::chrono::seconds(ts.tv_sec) + nanoseconds(ts.tv_nsec);
}

timespec to_timespec(nanoseconds d) noexcept {
    if (d.count() < 0) d = nanoseconds::zero();
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(d.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(d.count() % 1'000'000'000);
    return ts;
}

bool valid(const timespec* ts) noexcept {
    return ts->tv_nsec >= 0 && ts->tv_nsec < 1'000'000'000 && ts->tv_sec >= 0;
}

// Parks for `d` (a yield when d <= 0). Returns the time left: zero unless the fiber was
// cancelled or reached its own deadline while it slept. A fiber that cannot park any more
// (cancelled, or past its deadline, before the call) sleeps at most kPauseWhenOver and the
// call returns as if it had slept: the time left and EINTR would have a caller that sleeps on
// after an interruption (std::this_thread::sleep_for, a sleep() loop) call again at once,
// for the whole time, with the hub spinning.
nanoseconds park_for(HubImpl& h, PatchedCall c, nanoseconds d) {
    count(h, c);
    if (cannot_park(h) != 0) {
        if (d.count() > 0)
            pause_when_over(h, d);
        else
            this_fiber::yield();  // a zero sleep in a loop must not hold the hub either
        return nanoseconds::zero();
    }
    if (d.count() <= 0) {
        this_fiber::yield();
        return nanoseconds::zero();
    }
    count_wait(h, c);
    const Deadline dl(d);
    if (auto r = this_fiber::sleep_until(dl); !r) {
        const auto left = dl.remaining();
        return left.count() > 0 ? std::chrono::duration_cast<nanoseconds>(left) : nanoseconds(1);
    }
    return nanoseconds::zero();
}

// How long until `abs` on `clock` (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME...).
nanoseconds until(clockid_t clock, const timespec& abs) noexcept {
    timespec now{};
    if (::clock_gettime(clock, &now) != 0) return nanoseconds::zero();
    return to_ns(abs) - to_ns(now);
}

bool clock_we_can_wait_on(clockid_t clock) noexcept {
    return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ||
           clock == CLOCK_TAI;
}

}  // namespace

void pause_when_over(HubImpl& h, nanoseconds d) {
    struct Pause final : Interruptible {
        void interrupt(FiberRecord* f, Errc why) noexcept override {
            if (why != Errc::cancelled) f->hub->make_ready(f, why);
        }
    } w;
    InterruptsAside aside(h.running());
    (void)h.park(&w, Deadline(d < kPauseWhenOver ? d : kPauseWhenOver), "sleep");
}

}  // namespace weft::detail::patch

using namespace weft::detail;
using namespace weft::detail::patch;

extern "C" {

int nanosleep(const timespec* req, timespec* rem) {
    HubImpl* h = active();
    if (!h || !req || !valid(req)) return real::calls().nanosleep(req, rem);
    const auto left = park_for(*h, PatchedCall::nanosleep, to_ns(*req));
    if (left.count() == 0) return 0;
    if (rem) *rem = to_timespec(left);
    errno = EINTR;
    return -1;
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
    HubImpl* h = active();
    if (!h || !req || !valid(req) || !clock_we_can_wait_on(clock))
        return real::calls().clock_nanosleep(clock, flags, req, rem);
    if (flags & TIMER_ABSTIME) {
        // The wall clock may be set meanwhile: sleep in slices until the clock says so.
        for (;;) {
            const auto d = until(clock, *req);
            // A fiber that cannot park (cancelled, or past its deadline) sleeps no longer, as
            // in park_for(): looping on would spin the hub until the time came.
            if (d.count() <= 0 || cannot_park(*h) != 0) {
                count(*h, PatchedCall::clock_nanosleep);
                if (d.count() > 0) pause_when_over(*h, d);
                return 0;
            }
            if (park_for(*h, PatchedCall::clock_nanosleep, d).count() != 0) return EINTR;
        }
    }
    const auto left = park_for(*h, PatchedCall::clock_nanosleep, to_ns(*req));
    if (left.count() == 0) return 0;
    if (rem) *rem = to_timespec(left);
    return EINTR;  // clock_nanosleep returns the error instead of setting errno
}

int usleep(useconds_t usec) {
    HubImpl* h = active();
    if (!h) return real::calls().usleep(usec);
    if (park_for(*h, PatchedCall::usleep, std::chrono::microseconds(usec)).count() == 0) return 0;
    errno = EINTR;
    return -1;
}

unsigned int sleep(unsigned int seconds) {
    HubImpl* h = active();
    if (!h) return real::calls().sleep(seconds);
    const auto left = park_for(*h, PatchedCall::sleep, std::chrono::seconds(seconds));
    // libc rounds the time left up to whole seconds.
    return static_cast<unsigned>((left.count() + 999'999'999) / 1'000'000'000);
}

}  // extern "C"
