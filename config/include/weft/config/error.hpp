// ConfigError: one thing wrong with a configuration, said so that a user can fix it (which key,
// where it was set, what it was, what is allowed); Expected<T>, a value or the error instead.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

#include "weft/config/source.hpp"

namespace weft::config {

/// One configuration problem. Loading collects every problem, not just the first.
struct ConfigError {
    std::string key;      ///< "[server] max_body_bytes", "plugin 'demo' config key 'greeting'";
                          ///< empty when the problem is not about one key (a syntax error)
    Source source;        ///< where the offending value (or text) came from
    std::string value;    ///< the offending value as written ("\"12XB\"", "42"); empty if none
    std::string message;  ///< what is wrong and what is allowed

    /// "KEY: MESSAGE, got VALUE (SOURCE)", e.g.
    /// `[server] stack_size: must be between 16KiB and 8MiB, got 4096 (weft.toml:7)`.
    std::string to_string() const;
};

/// Thrown by Expected<T>::value() when it holds an error; what() is the error's to_string().
class BadConfigAccess : public std::runtime_error {
  public:
    explicit BadConfigAccess(ConfigError error)
        : std::runtime_error(error.to_string()), error_(std::move(error)) {}
    const ConfigError& error() const noexcept { return error_; }

  private:
    ConfigError error_;
};

/// A value of type T, or the ConfigError that says why there is none (std::expected's shape,
/// which C++20 lacks). value() on an error throws BadConfigAccess, like std::expected::value().
template <class T>
class Expected {
  public:
    Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}            // NOLINT
    Expected(ConfigError error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool ok() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    const T& value() const& {
        if (!ok()) throw BadConfigAccess(error());
        return std::get<0>(state_);
    }
    T& value() & {
        if (!ok()) throw BadConfigAccess(error());
        return std::get<0>(state_);
    }
    T&& value() && {
        if (!ok()) throw BadConfigAccess(error());
        return std::get<0>(std::move(state_));
    }
    const T& operator*() const& { return value(); }
    const T* operator->() const { return &value(); }

    /// The error; precondition: !ok().
    const ConfigError& error() const { return std::get<1>(state_); }

    T value_or(T fallback) const& { return ok() ? std::get<0>(state_) : std::move(fallback); }

  private:
    std::variant<T, ConfigError> state_;
};

}  // namespace weft::config
