// Assertions for bugs (never for untrusted input, which gets an error value instead).
// WEFT_CHECK is always on: it logs the failed condition with its location and aborts.
// WEFT_ASSERT is on in debug builds only.
#pragma once

namespace weft::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line,
                               const char* msg) noexcept;
}  // namespace weft::detail

#define WEFT_CHECK(cond, msg)                                               \
    do {                                                                    \
        if (__builtin_expect(!(cond), 0))                                   \
            ::weft::detail::check_failed(#cond, __FILE__, __LINE__, (msg)); \
    } while (0)

#ifdef NDEBUG
#define WEFT_ASSERT(cond, msg) \
    do {                       \
    } while (0)
#else
#define WEFT_ASSERT(cond, msg) WEFT_CHECK(cond, msg)
#endif
