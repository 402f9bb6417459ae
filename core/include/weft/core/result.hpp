// Result<T>: the value of an operation that can fail in an expected way (I/O, timeout,
// cancellation, bad input). Errors are small values (a code and an errno), cheap to return
// from the hot path; message() renders them for people.
#pragma once

#include <cstdint>
#include <new>
#include <string>
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

template <class T>
class Result {
  public:
    Result(const T& v) : ok_(true) { new (&value_) T(v); }             // NOLINT
    Result(T&& v) : ok_(true) { new (&value_) T(std::move(v)); }       // NOLINT
    Result(Error e) noexcept : ok_(false) { new (&error_) Error(e); }  // NOLINT
    Result(Errc c) noexcept : Result(Error(c)) {}                      // NOLINT
    Result(const Result& o) : ok_(o.ok_) {
        if (ok_)
            new (&value_) T(o.value_);
        else
            new (&error_) Error(o.error_);
    }
    Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(o.ok_) {
        if (ok_)
            new (&value_) T(std::move(o.value_));
        else
            new (&error_) Error(o.error_);
    }
    Result& operator=(Result o) noexcept(std::is_nothrow_move_constructible_v<T>) {
        destroy();
        ok_ = o.ok_;
        if (ok_)
            new (&value_) T(std::move(o.value_));
        else
            new (&error_) Error(o.error_);
        return *this;
    }
    ~Result() { destroy(); }

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }

    T& value() & {
        WEFT_CHECK(ok_, "Result::value() on an error");
        return value_;
    }
    const T& value() const& {
        WEFT_CHECK(ok_, "Result::value() on an error");
        return value_;
    }
    T&& value() && {
        WEFT_CHECK(ok_, "Result::value() on an error");
        return std::move(value_);
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    template <class U>
    T value_or(U&& fallback) const& {
        return ok_ ? value_ : static_cast<T>(std::forward<U>(fallback));
    }

    const Error& error() const noexcept {
        WEFT_ASSERT(!ok_, "Result::error() on a value");
        return error_;
    }

  private:
    void destroy() noexcept {
        if (ok_) value_.~T();
    }
    bool ok_;
    union {
        T value_;
        Error error_;
    };
};

template <>
class Result<void> {
  public:
    Result() noexcept = default;
    Result(Error e) noexcept : error_(e) {}  // NOLINT
    Result(Errc c) noexcept : error_(c) {}   // NOLINT
    bool ok() const noexcept { return error_.code == Errc::ok; }
    explicit operator bool() const noexcept { return ok(); }
    void value() const { WEFT_CHECK(ok(), "Result::value() on an error"); }
    const Error& error() const noexcept { return error_; }

  private:
    Error error_{Errc::ok};
};

}  // namespace weft
