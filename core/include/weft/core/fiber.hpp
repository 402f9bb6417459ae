// Fibers: cheap cooperative threads scheduled by a hub (gevent's greenlets).
//
// spawn() starts a fiber on the calling fiber's hub and returns a Fiber<T> handle: join() waits
// for it and returns its value or rethrows its exception; cancel() wakes it from any blocking
// call with Errc::cancelled (and every blocking call it makes afterwards fails the same way);
// detach() lets it run on. A fiber never lets an exception escape: an exception nobody will
// observe (a detached fiber, or a handle dropped unjoined) is logged with the fiber's name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <source_location>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "weft/core/check.hpp"
#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"

namespace weft {

using FiberId = std::uint64_t;
class Hub;

/// Thrown by Fiber<T>::join() when the *joining* fiber is cancelled before the target finishes.
class Cancelled : public std::exception {
  public:
    const char* what() const noexcept override { return "fiber cancelled"; }
};

/// Whether `e` is how a cancelled or timed-out wait ended: weft::Cancelled, or a ResultError
/// carrying Errc::cancelled or Errc::timed_out (Result::value() of such a result). Code that
/// logs what a fiber threw can tell these from faults.
bool is_cancellation(const std::exception_ptr& e) noexcept;

/// Key/value pairs describing what a fiber is serving (e.g. the request of a connection
/// fiber). The watchdog copies them, with bounded lengths, when it reports a blocked fiber.
/// The pointed-to strings must stay valid while the labels are installed.
struct FiberLabels {
    static constexpr int kMax = 6;
    const char* keys[kMax] = {};
    std::string_view values[kMax] = {};
    int count = 0;
};

namespace detail {

struct FiberRecord;

struct SpawnOps {
    void (*run)(void* state) noexcept;                  ///< runs the callable, stores its outcome
    void (*destroy)(void* state) noexcept;              ///< destroys callable and outcome
    std::exception_ptr (*error)(void* state) noexcept;  ///< the stored exception, if any
};

struct SpawnRequest {
    std::string_view name;
    std::size_t state_size;
    std::size_t state_align;
    const SpawnOps* ops;
    void (*construct)(void* mem, void* arg);  ///< placement-constructs the state from arg
    void* arg;
    std::source_location site;
};

FiberRecord* spawn_fiber(Hub* hub, const SpawnRequest& req);
void* fiber_state(FiberRecord* f) noexcept;
void fiber_release(FiberRecord* f) noexcept;
Result<void> fiber_wait(FiberRecord* f, Deadline deadline);
Result<void> fiber_join_wait(FiberRecord* f);
/// Waits until `f` has ended, whatever happens to the caller meanwhile (its cancellation or
/// deadline): for FiberGroup, whose children must end before it goes.
void fiber_wait_shielded(FiberRecord* f) noexcept;
void fiber_cancel(FiberRecord* f) noexcept;
bool fiber_done(const FiberRecord* f) noexcept;
FiberId fiber_id(const FiberRecord* f) noexcept;
[[noreturn]] void throw_cancelled();

struct VoidValue {};
template <class T>
using StoredValue = std::conditional_t<std::is_void_v<T>, VoidValue, T>;

template <class F, class T>
struct SpawnedState {
    explicit SpawnedState(F&& f) : fn(std::move(f)) {}
    ~SpawnedState() {}
    // The callable is destroyed as soon as it returns (its captures may hold sockets, locks);
    // the outcome lives until the handle is released.
    union {
        F fn;
    };
    std::variant<std::monostate, StoredValue<T>, std::exception_ptr> outcome;

    static void run(void* p) noexcept {
        auto* s = static_cast<SpawnedState*>(p);
        try {
            if constexpr (std::is_void_v<T>) {
                s->fn();
                s->outcome.template emplace<1>();
            } else {
                s->outcome.template emplace<1>(s->fn());
            }
        } catch (...) {
            s->outcome.template emplace<2>(std::current_exception());
        }
        s->fn.~F();
    }
    static void destroy(void* p) noexcept { static_cast<SpawnedState*>(p)->~SpawnedState(); }
    static std::exception_ptr error(void* p) noexcept {
        auto* s = static_cast<SpawnedState*>(p);
        if (auto* e = std::get_if<2>(&s->outcome)) return *e;
        return nullptr;
    }
    static constexpr SpawnOps kOps{&run, &destroy, &error};
};

}  // namespace detail

/// Handle to a spawned fiber. Move-only; dropping it detaches the fiber.
class FiberGroup;

template <class T>
class [[nodiscard]] Fiber {
  public:
    Fiber() noexcept = default;
    Fiber(Fiber&& o) noexcept : rec_(std::exchange(o.rec_, nullptr)), outcome_of_(o.outcome_of_) {}
    Fiber& operator=(Fiber&& o) noexcept {
        if (this != &o) {
            detach();
            rec_ = std::exchange(o.rec_, nullptr);
            outcome_of_ = o.outcome_of_;
        }
        return *this;
    }
    ~Fiber() { detach(); }

    bool valid() const noexcept { return rec_ != nullptr; }
    FiberId id() const noexcept { return rec_ ? detail::fiber_id(rec_) : 0; }
    bool done() const noexcept { return rec_ && detail::fiber_done(rec_); }

    /// Waits (parks the caller) until the fiber finished; returns Errc::timed_out at the
    /// deadline or Errc::cancelled if the caller is cancelled. Does not consume the handle.
    Result<void> wait(Deadline deadline = {}) { return detail::fiber_wait(rec_, deadline); }

    /// Waits for the fiber and returns its value, or rethrows its exception.
    /// Throws weft::Cancelled if the calling fiber is cancelled while it waits. The calling
    /// fiber's own deadline (this_fiber::deadline()) does not end the wait: a fiber spawned
    /// under it inherited it, so its blocking calls end by then.
    T join() {
        if (rec_ == nullptr)
            throw UsageError(
                "join() on an empty Fiber handle (joined already, detached or moved "
                "from)");
        if (!detail::fiber_join_wait(rec_)) detail::throw_cancelled();
        auto* outcome = outcome_of_(rec_);
        struct Release {
            detail::FiberRecord*& r;
            ~Release() { detail::fiber_release(std::exchange(r, nullptr)); }
        } release{rec_};
        if (auto* e = std::get_if<2>(outcome)) std::rethrow_exception(*e);
        if constexpr (!std::is_void_v<T>) return std::move(std::get<1>(*outcome));
    }

    /// Asks the fiber to stop: if it is parked it wakes with Errc::cancelled.
    void cancel() noexcept {
        if (rec_) detail::fiber_cancel(rec_);
    }

    /// Lets the fiber run on without a handle.
    void detach() noexcept {
        if (rec_) detail::fiber_release(std::exchange(rec_, nullptr));
    }

  private:
    using Outcome = std::variant<std::monostate, detail::StoredValue<T>, std::exception_ptr>;
    explicit Fiber(detail::FiberRecord* r, Outcome* (*get)(detail::FiberRecord*)) noexcept
        : rec_(r), outcome_of_(get) {}

    template <class F>
    static Outcome* outcome_for(detail::FiberRecord* r) {
        return &static_cast<detail::SpawnedState<F, T>*>(detail::fiber_state(r))->outcome;
    }

    template <class F, class U>
    friend auto spawn_on(Hub* hub, std::string_view name, F&& fn, std::source_location site)
        -> Fiber<std::invoke_result_t<std::decay_t<F>&>>;
    friend class FiberGroup;

    detail::FiberRecord* rec_ = nullptr;
    Outcome* (*outcome_of_)(detail::FiberRecord*) = nullptr;
};

/// Starts `fn` as a fiber on `hub` (must be the calling thread's hub). Prefer spawn().
template <class F, class U = void>
auto spawn_on(Hub* hub, std::string_view name, F&& fn,
              std::source_location site = std::source_location::current())
    -> Fiber<std::invoke_result_t<std::decay_t<F>&>> {
    using Fn = std::decay_t<F>;
    using T = std::invoke_result_t<Fn&>;
    using State = detail::SpawnedState<Fn, T>;
    Fn local(std::forward<F>(fn));
    detail::SpawnRequest req{
        name,
        sizeof(State),
        alignof(State),
        &State::kOps,
        [](void* mem, void* arg) { new (mem) State(std::move(*static_cast<Fn*>(arg))); },
        &local,
        site};
    return Fiber<T>(detail::spawn_fiber(hub, req), &Fiber<T>::template outcome_for<Fn>);
}

/// Starts `fn` as a new fiber on the calling thread's hub. It first runs when the caller
/// next yields or parks. `name` is shown in logs, blocking reports and fiber dumps.
/// Must be called on a hub thread (from a fiber or a posted callback).
template <class F>
auto spawn(std::string_view name, F&& fn,
           std::source_location site = std::source_location::current()) {
    return spawn_on(nullptr, name, std::forward<F>(fn), site);
}

namespace this_fiber {

/// Id of the calling fiber; 0 outside a fiber.
FiberId id() noexcept;
/// Name of the calling fiber; empty outside a fiber.
std::string_view name() noexcept;
/// True once cancel() was called on the calling fiber.
bool cancelled() noexcept;
/// Lets every other ready fiber of the hub run, then continues. It does not look at a cancel
/// or a deadline: a long computation that should stop when its request is abandoned calls
/// sleep_for(0ms) instead, which yields too and returns Errc::cancelled or Errc::timed_out
/// (gevent's sleep(0) raises in a killed greenlet the same way).
void yield();
/// Parks the calling fiber until `deadline`. Returns Errc::cancelled early if cancelled, and
/// Errc::timed_out early if the fiber's own deadline (ScopedDeadline) comes first.
/// Outside a fiber it blocks the thread.
Result<void> sleep_until(Deadline deadline);
/// Parks the calling fiber for `d`.
Result<void> sleep_for(Clock::duration d);
/// Installs (or with nullptr removes) the labels the watchdog shows for this fiber. Fibers it
/// spawns (and theirs) show them too, as they are at the moment, while they have none of their
/// own: a handler's helper fibers serve its request.
void set_labels(const FiberLabels* labels) noexcept;

/// The calling fiber's own deadline: every blocking call it makes gives up with
/// Errc::timed_out at the earlier of this and the call's own deadline. Fibers spawned while it
/// is set inherit it; a request handler's fiber has the request's (server.request_timeout).
/// Deadline::never() when none, and outside a fiber.
Deadline deadline() noexcept;

}  // namespace this_fiber

/// Sets the calling fiber's deadline (this_fiber::deadline()) until the end of the scope, then
/// puts the previous one back. By default it can only tighten the deadline (the earlier of the
/// two stays); Mode::replace sets it as given, e.g. Deadline::never() for cleanup that must
/// run even after a request's deadline has passed. Fiber only; a no-op outside a fiber.
class ScopedDeadline {
  public:
    enum class Mode { tighten, replace };
    explicit ScopedDeadline(Deadline d, Mode mode = Mode::tighten) noexcept;
    ~ScopedDeadline();
    ScopedDeadline(const ScopedDeadline&) = delete;
    ScopedDeadline& operator=(const ScopedDeadline&) = delete;

  private:
    std::int64_t previous_ns_;
    bool active_;
};

using this_fiber::sleep_for;
using this_fiber::sleep_until;
using this_fiber::yield;

}  // namespace weft
