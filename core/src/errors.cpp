// Error values and the always-on check.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "patch/real.hpp"
#include "weft/core/check.hpp"
#include "weft/core/result.hpp"

namespace weft {

const char* errc_name(Errc code) noexcept {
    switch (code) {
        case Errc::ok:
            return "ok";
        case Errc::timed_out:
            return "timed_out";
        case Errc::cancelled:
            return "cancelled";
        case Errc::closed:
            return "closed";
        case Errc::eof:
            return "eof";
        case Errc::connection_reset:
            return "connection_reset";
        case Errc::connection_refused:
            return "connection_refused";
        case Errc::address_in_use:
            return "address_in_use";
        case Errc::too_many_files:
            return "too_many_files";
        case Errc::would_block:
            return "would_block";
        case Errc::invalid_argument:
            return "invalid_argument";
        case Errc::not_found:
            return "not_found";
        case Errc::unavailable:
            return "unavailable";
        case Errc::system:
            return "system";
    }
    return "unknown";
}

Error Error::from_errno(int e) noexcept {
    switch (e) {
        case 0:
            return Error(Errc::ok);
        case ETIMEDOUT:
        case ETIME:
            return Error(Errc::timed_out, e);
        case ECANCELED:
            return Error(Errc::cancelled, e);
        case ECONNRESET:
        case EPIPE:
        case ECONNABORTED:
            return Error(Errc::connection_reset, e);
        case ECONNREFUSED:
            return Error(Errc::connection_refused, e);
        case EADDRINUSE:
            return Error(Errc::address_in_use, e);
        case EMFILE:
        case ENFILE:
            return Error(Errc::too_many_files, e);
        case EAGAIN:
            return Error(Errc::would_block, e);
        case EINVAL:
            return Error(Errc::invalid_argument, e);
        case EBADF:
            return Error(Errc::closed, e);
        default:
            return Error(Errc::system, e);
    }
}

std::string Error::message() const {
    std::string m;
    switch (code) {
        case Errc::ok:
            return "success";
        case Errc::timed_out:
            m = "timed out";
            break;
        case Errc::cancelled:
            m = "cancelled";
            break;
        case Errc::closed:
            m = "closed";
            break;
        case Errc::eof:
            m = "end of stream";
            break;
        case Errc::connection_reset:
            m = "connection reset by peer";
            break;
        case Errc::connection_refused:
            m = "connection refused";
            break;
        case Errc::address_in_use:
            m = "address already in use";
            break;
        case Errc::too_many_files:
            m = "too many open files";
            break;
        case Errc::would_block:
            m = "would block";
            break;
        case Errc::invalid_argument:
            m = "invalid argument";
            break;
        case Errc::not_found:
            m = "not found";
            break;
        case Errc::unavailable:
            m = "unavailable";
            break;
        case Errc::system:
            m = sys_errno ? std::strerror(sys_errno) : "system error";
            return m;
    }
    if (sys_errno && code != Errc::system) {
        m += " (";
        m += strerrorname_np(sys_errno) ? strerrorname_np(sys_errno) : "errno";
        m += ")";
    }
    return m;
}

namespace detail {
void check_failed(const char* expr, const char* file, int line, const char* msg) noexcept {
    char buf[1024];
    int n = std::snprintf(buf, sizeof buf, "weft: check failed at %s:%d: %s (%s)\n", file, line,
                          msg ? msg : "", expr);
    if (n > 0) {
        ssize_t w = real::calls().write(
            STDERR_FILENO, buf, static_cast<std::size_t>(n) < sizeof buf ? n : sizeof buf - 1);
        (void)w;
    }
    std::abort();
}
}  // namespace detail

}  // namespace weft
