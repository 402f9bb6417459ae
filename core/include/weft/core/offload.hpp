// offload(fn): run blocking or CPU-heavy work on the runtime's thread pool while only the calling
// fiber waits (gevent's threadpool.apply). The hub keeps running its other fibers meanwhile.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/core/fiber.hpp"
#include "weft/core/unique_function.hpp"

namespace weft {

namespace detail {
/// Runs `work` on the pool and parks the calling fiber until it has run. Outside a fiber,
/// runs it inline. `work` must not throw.
void offload_raw(UniqueFunction<void()> work);
}  // namespace detail

/// Runs `fn` on a pool thread, parks the calling fiber until it returns, then returns its value
/// or rethrows its exception. The work cannot be interrupted: a cancel() that arrives meanwhile
/// takes effect at the fiber's next blocking call.
template <class F>
auto offload(F&& fn) -> std::invoke_result_t<std::decay_t<F>&> {
    using T = std::invoke_result_t<std::decay_t<F>&>;
    std::optional<detail::StoredValue<T>> value;
    std::exception_ptr error;
    detail::offload_raw([&]() noexcept {
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
    });
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) return std::move(*value);
}

}  // namespace weft
