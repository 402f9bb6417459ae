// offload(fn): run blocking or CPU-heavy work on the runtime's thread pool while only the calling
// fiber waits (gevent's threadpool.apply). The hub keeps running its other fibers meanwhile.
//
// Sizing: RuntimeOptions::offload_threads (0: max(4, hubs)) threads, started on demand. Each
// offload in flight holds one thread, so the pool bounds how many blocking calls run at once;
// what does not fit waits in the queue (weft_offload_queue_length, weft_offload_queue_wait_
// seconds). Size it to the blocking calls you expect at once (name lookups have threads of
// their own, RuntimeOptions::resolver_threads); give offload a deadline so a full pool answers with
// an error instead of an ever longer wait.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/core/deadline.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/result.hpp"
#include "weft/core/unique_function.hpp"

namespace weft {

namespace detail {
/// Runs `work` on the pool and parks the calling fiber until it has run. Errc::timed_out or
/// Errc::cancelled when the wait ended before a pool thread took the work (then it never runs).
/// Outside a fiber, runs it inline. `work` must not throw.
Result<void> offload_raw(UniqueFunction<void()> work, Deadline deadline = Deadline::never());
/// offload_raw() for work that owns everything it touches (nothing on the caller's stack): the
/// deadline, the fiber's own, or a cancel wakes the fiber at once even while a thread runs the
/// work, which then runs to its end unobserved (holding its thread until then).
Result<void> offload_owned(UniqueFunction<void()> work, Deadline deadline = Deadline::never());
/// offload_raw() and offload_owned() on the runtime's resolver threads
/// (RuntimeOptions::resolver_threads), kept for name lookups so that they never wait behind the
/// offload pool's work.
Result<void> resolver_raw(UniqueFunction<void()> work, Deadline deadline = Deadline::never());
Result<void> resolver_owned(UniqueFunction<void()> work, Deadline deadline = Deadline::never());

template <class F>
struct OffloadCall {
    using T = std::invoke_result_t<std::decay_t<F>&>;
    std::optional<StoredValue<T>> value;
    std::exception_ptr error;
    Result<void> run(F& fn, Deadline deadline) {
        return offload_raw(
            [&]() noexcept {
                try {
                    if constexpr (std::is_void_v<T>) {
                        fn();
                        value.emplace();
                    } else {
                        value.emplace(fn());
                    }
                } catch (...) {
                    error = std::current_exception();
                }
            },
            deadline);
    }
};

// The outcome of owned work: shared by the waiting fiber and the work, which may outlive it.
template <class Fn>
struct OwnedCall {
    using T = std::invoke_result_t<Fn&>;
    std::optional<StoredValue<T>> value;
    std::exception_ptr error;
};
}  // namespace detail

/// Runs `fn` on a pool thread, parks the calling fiber until it returns, then returns its value
/// or rethrows its exception. The work cannot be interrupted: a cancel() that arrives meanwhile
/// takes effect at the fiber's next blocking call. A fiber already cancelled, or whose own
/// deadline (ScopedDeadline, the request's) passes before a thread takes the work, gets
/// ResultError<Error> (Errc::cancelled, Errc::timed_out), and the work never runs.
template <class F>
auto offload(F&& fn) -> std::invoke_result_t<std::decay_t<F>&> {
    detail::OffloadCall<F> call;
    if (auto r = call.run(fn, Deadline::never()); !r) throw ResultError<Error>(r.error());
    if (call.error) std::rethrow_exception(call.error);
    if constexpr (!std::is_void_v<typename detail::OffloadCall<F>::T>)
        return std::move(*call.value);
}

/// offload() with a deadline on the wait for a pool thread: Errc::timed_out when the deadline
/// passes, Errc::cancelled when the fiber is cancelled, before a thread took the work (which
/// then never runs). Once a thread runs the work, the call waits for it to finish (work on
/// another thread cannot be abandoned safely: it may use the caller's stack) and returns its
/// value or rethrows its exception.
template <class F>
auto offload(Deadline deadline, F&& fn) -> Result<std::invoke_result_t<std::decay_t<F>&>> {
    detail::OffloadCall<F> call;
    if (auto r = call.run(fn, deadline); !r) return r.error();
    if (call.error) std::rethrow_exception(call.error);
    if constexpr (std::is_void_v<typename detail::OffloadCall<F>::T>)
        return {};
    else
        return std::move(*call.value);
}

/// offload() for work that owns everything it touches, so that the wait for it can end first:
/// `deadline`, the fiber's own (ScopedDeadline, the request's) or a cancel wakes the fiber at
/// once with Errc::timed_out or Errc::cancelled, even while a thread runs the work. The work
/// then runs to its end unobserved (its value or exception dropped), holding its pool thread
/// until then; the runtime's end waits for it. This is what lets a request's deadline answer
/// 504 on time while, say, a driver call without a deadline of its own runs on (as a Go
/// handler that stops waiting for a goroutine when its context ends).
///
/// `fn` is moved (or copied) into the work: capture by value or through a shared_ptr, never a
/// reference to the caller's stack or to anything the caller may free once it stopped waiting.
/// Otherwise as offload(deadline, fn): the value, or the work's exception rethrown.
template <class F>
auto offload_owned(Deadline deadline, F&& fn) -> Result<std::invoke_result_t<std::decay_t<F>&>> {
    using Fn = std::decay_t<F>;
    using Call = detail::OwnedCall<Fn>;
    auto call = std::make_shared<Call>();
    auto r = detail::offload_owned(
        [call, work = Fn(std::forward<F>(fn))]() mutable noexcept {
            try {
                if constexpr (std::is_void_v<typename Call::T>) {
                    work();
                    call->value.emplace();
                } else {
                    call->value.emplace(work());
                }
            } catch (...) {
                call->error = std::current_exception();
            }
        },
        deadline);
    if (!r) return r.error();
    if (call->error) std::rethrow_exception(call->error);
    if constexpr (std::is_void_v<typename Call::T>)
        return {};
    else
        return std::move(*call->value);
}

/// offload_owned() bounded only by the fiber's own deadline and cancellation; throws
/// ResultError<Error> (Errc::timed_out, Errc::cancelled) when the wait ends before the work.
template <class F>
auto offload_owned(F&& fn) -> std::invoke_result_t<std::decay_t<F>&> {
    auto r = offload_owned(Deadline::never(), std::forward<F>(fn));
    if (!r) throw ResultError<Error>(r.error());
    if constexpr (!std::is_void_v<std::invoke_result_t<std::decay_t<F>&>>) return std::move(*r);
}

}  // namespace weft
