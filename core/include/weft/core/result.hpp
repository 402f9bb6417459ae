// Result<T, E>: the value of an operation that can fail in an expected way (I/O, timeout,
// cancellation, bad input, a bad configuration value). It is Weft's one result type: the runtime
// returns Result<T> (E = Error, a code and an errno, cheap on the hot path); the configuration
// returns Result<T, ConfigError>. Ignoring one is a compiler warning ([[nodiscard]]), and reading
// the value of an error throws BadResultAccess carrying the error, as std::expected does, so a
// handler's mistake becomes a 500 answer, never an abort of the server.
#pragma once

#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "weft/core/check.hpp"

namespace weft {

enum class Errc : std::uint8_t {
    ok = 0,
    timed_out,         ///< the deadline passed first
    cancelled,         ///< the fiber was cancelled while (or before) it waited
    closed,            ///< the object (channel, listener, stream) was closed
    eof,               ///< the peer closed its sending side
    connection_reset,  ///< ECONNRESET / EPIPE
    connection_refused,
    address_in_use,
    too_many_files,  ///< EMFILE / ENFILE
    would_block,
    invalid_argument,
    not_found,
    unavailable,  ///< a facility is missing (io_uring refused, no hub on this thread)
    system,       ///< another errno; see Error::sys_errno
};

/// Name of an error code, e.g. "timed_out".
const char* errc_name(Errc code) noexcept;

struct Error {
    Errc code = Errc::system;
    int sys_errno = 0;  ///< the errno behind the error, 0 if none

    Error() = default;
    constexpr Error(Errc c, int e = 0) noexcept : code(c), sys_errno(e) {}  // NOLINT
    /// Maps an errno to the closest code (ETIMEDOUT -> timed_out, ECONNRESET ->
    /// connection_reset...).
    static Error from_errno(int e) noexcept;

    /// "timed out", "connection reset by peer (ECONNRESET)", ...
    std::string message() const;
    bool operator==(Errc c) const noexcept { return code == c; }
};

/// Thrown when the value of a Result that holds an error is read. what() says what the error
/// was; ResultError<E> (below) also carries the error itself.
class BadResultAccess : public std::exception {
  public:
    explicit BadResultAccess(std::string what) : what_(std::move(what)) {}
    const char* what() const noexcept override { return what_.c_str(); }

  private:
    std::string what_;
};

namespace detail {
/// How an error reads in an exception's what(): its message() or to_string(), or the text itself.
template <class E>
std::string describe_error(const E& e) {
    if constexpr (requires { std::string(e.message()); }) {
        return std::string(e.message());
    } else if constexpr (requires { std::string(e.to_string()); }) {
        return std::string(e.to_string());
    } else if constexpr (std::is_convertible_v<const E&, std::string_view>) {
        return std::string(std::string_view(e));
    } else {
        return "an error";
    }
}
}  // namespace detail

/// The exception Result<T, E>::value() throws on an error: catch BadResultAccess for any
/// Result, ResultError<E> to get the error back.
template <class E>
class ResultError : public BadResultAccess {
  public:
    explicit ResultError(E error)
        : BadResultAccess(detail::describe_error(error)), error_(std::move(error)) {}
    const E& error() const noexcept { return error_; }

  private:
    E error_;
};

template <class T, class E = Error>
class [[nodiscard]] Result {
    static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

  public:
    Result(const T& v) : ok_(true) { new (&value_) T(v); }        // NOLINT
    Result(T&& v) : ok_(true) { new (&value_) T(std::move(v)); }  // NOLINT
    /// Any value T can be made from (a string literal for Result<std::string>, ...).
    template <class U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, Result> &&
             !std::is_same_v<std::remove_cvref_t<U>, T> && !std::is_constructible_v<E, U&&>)
        Result(U&& v)
        : ok_(true) {  // NOLINT
        new (&value_) T(std::forward<U>(v));
    }
    Result(const E& e) : ok_(false) { new (&error_) E(e); }        // NOLINT
    Result(E&& e) : ok_(false) { new (&error_) E(std::move(e)); }  // NOLINT
    Result(Errc c) noexcept                                        // NOLINT
        requires std::is_same_v<E, Error> : Result(Error(c)) {}
    Result(const Result& o) : ok_(o.ok_) {
        if (ok_)
            new (&value_) T(o.value_);
        else
            new (&error_) E(o.error_);
    }
    Result(Result&& o) noexcept(
        std::is_nothrow_move_constructible_v<T>&& std::is_nothrow_move_constructible_v<E>)
        : ok_(o.ok_) {
        if (ok_)
            new (&value_) T(std::move(o.value_));
        else
            new (&error_) E(std::move(o.error_));
    }
    Result& operator=(Result o) noexcept(
        std::is_nothrow_move_constructible_v<T>&& std::is_nothrow_move_constructible_v<E>) {
        destroy();
        ok_ = o.ok_;
        if (ok_)
            new (&value_) T(std::move(o.value_));
        else
            new (&error_) E(std::move(o.error_));
        return *this;
    }
    ~Result() { destroy(); }

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }

    /// The value; on an error throws ResultError<E> (a BadResultAccess) carrying the error.
    T& value() & {
        if (__builtin_expect(!ok_, 0)) throw_error();
        return value_;
    }
    const T& value() const& {
        if (__builtin_expect(!ok_, 0)) throw_error();
        return value_;
    }
    T&& value() && {
        if (__builtin_expect(!ok_, 0)) throw_error();
        return std::move(value_);
    }
    /// The same checked access as value(): never undefined behaviour, never an abort.
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    template <class U>
    T value_or(U&& fallback) const& {
        return ok_ ? value_ : static_cast<T>(std::forward<U>(fallback));
    }
    template <class U>
    T value_or(U&& fallback) && {
        return ok_ ? std::move(value_) : static_cast<T>(std::forward<U>(fallback));
    }

    /// The error; precondition: !ok() (checked in debug builds).
    const E& error() const& noexcept {
        WEFT_ASSERT(!ok_, "Result::error() on a value");
        return error_;
    }
    E&& error() && noexcept {
        WEFT_ASSERT(!ok_, "Result::error() on a value");
        return std::move(error_);
    }

  private:
    [[noreturn, gnu::cold, gnu::noinline]] void throw_error() const {
        throw ResultError<E>(error_);
    }
    void destroy() noexcept {
        if (ok_)
            value_.~T();
        else
            error_.~E();
    }
    bool ok_;
    union {
        T value_;
        E error_;
    };
};

/// Success without a value, or the error.
template <class E>
class [[nodiscard]] Result<void, E> {
  public:
    Result() noexcept {}
    Result(const E& e) : ok_(false) { new (&error_) E(e); }        // NOLINT
    Result(E&& e) : ok_(false) { new (&error_) E(std::move(e)); }  // NOLINT
    Result(const Result& o) : ok_(o.ok_) {
        if (!ok_) new (&error_) E(o.error_);
    }
    Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<E>) : ok_(o.ok_) {
        if (!ok_) new (&error_) E(std::move(o.error_));
    }
    Result& operator=(Result o) noexcept(std::is_nothrow_move_constructible_v<E>) {
        destroy();
        ok_ = o.ok_;
        if (!ok_) new (&error_) E(std::move(o.error_));
        return *this;
    }
    ~Result() { destroy(); }

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    /// Throws ResultError<E> on an error.
    void value() const {
        if (__builtin_expect(!ok_, 0)) throw ResultError<E>(error_);
    }
    /// The error; precondition: !ok() (checked in debug builds).
    const E& error() const& noexcept {
        WEFT_ASSERT(!ok_, "Result::error() on success");
        return error_;
    }

  private:
    void destroy() noexcept {
        if (!ok_) error_.~E();
    }
    bool ok_ = true;
    union {
        E error_;
    };
};

/// The runtime's Result<void>: an Error whose code is Errc::ok on success, so it stays one
/// register wide on the hot path and error() is readable either way.
template <>
class [[nodiscard]] Result<void, Error> {
  public:
    Result() noexcept = default;
    Result(Error e) noexcept : error_(e) {}  // NOLINT
    Result(Errc c) noexcept : error_(c) {}   // NOLINT
    bool ok() const noexcept { return error_.code == Errc::ok; }
    explicit operator bool() const noexcept { return ok(); }
    /// Throws ResultError<Error> on an error.
    void value() const {
        if (__builtin_expect(!ok(), 0)) throw ResultError<Error>(error_);
    }
    /// The error (Errc::ok on success).
    const Error& error() const noexcept { return error_; }

  private:
    Error error_{Errc::ok};
};

}  // namespace weft
