// UniqueFunction<R(Args...)>: a move-only std::function (C++23's move_only_function for C++20),
// so posted work and callbacks may own move-only state such as sockets and promises.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace weft {

template <class Sig>
class UniqueFunction;

template <class R, class... Args>
class UniqueFunction<R(Args...)> {
    struct Base {
        virtual ~Base() = default;
        virtual R call(Args&&... args) = 0;
    };
    template <class F>
    struct Impl final : Base {
        explicit Impl(F&& f) : fn(std::move(f)) {}
        R call(Args&&... args) override { return fn(std::forward<Args>(args)...); }
        F fn;
    };

  public:
    UniqueFunction() noexcept = default;
    UniqueFunction(std::nullptr_t) noexcept {}  // NOLINT
    template <class F,
              class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, UniqueFunction> &&
                                       std::is_invocable_r_v<R, std::decay_t<F>&, Args...>>>
    UniqueFunction(F&& f)  // NOLINT
        : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::decay_t<F>(std::forward<F>(f)))) {}

    UniqueFunction(UniqueFunction&&) noexcept = default;
    UniqueFunction& operator=(UniqueFunction&&) noexcept = default;

    explicit operator bool() const noexcept { return impl_ != nullptr; }
    R operator()(Args... args) const { return impl_->call(std::forward<Args>(args)...); }

  private:
    std::unique_ptr<Base> impl_;
};

}  // namespace weft
