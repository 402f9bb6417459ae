// Assertions for bugs (never for untrusted input, which gets an error value instead).
// WEFT_CHECK is always on: it logs the failed condition with its location and aborts; it is for
// the engine's own invariants. A caller's misuse of the API (a handler's bug: joining an empty
// handle, waiting outside a fiber) throws weft::UsageError instead, so that the request gets a
// 500 and the server lives on. WEFT_ASSERT is on in debug builds only.
#pragma once

#include <stdexcept>

namespace weft {
/// The API used in a way it does not allow (a bug in the calling code, not bad input): thrown
/// where the engine can go on, with what was wrong and what to do instead.
class UsageError : public std::logic_error {
  public:
    using std::logic_error::logic_error;
};
}  // namespace weft

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
