// Patched name resolution: getaddrinfo, getnameinfo, gethostbyname and gethostbyname_r. On a
// fiber of a patching hub the lookup runs on the runtime's offload pool (gevent's threaded
// resolver) and only the fiber waits; the answer, its error codes and h_errno are libc's own.
// Everywhere else (and on the pool's threads) they are libc's calls. A fiber cancelled while
// its lookup still waits for a pool thread gets a temporary failure (EAI_SYSTEM with EINTR,
// TRY_AGAIN) and the lookup never runs.
#include <netdb.h>

#include <cerrno>

#include "patch/patch.hpp"
#include "weft/core/offload.hpp"

using namespace weft::detail;
using namespace weft::detail::patch;

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
    HubImpl* h = active();
    if (!h) return real::calls().getaddrinfo(node, service, hints, res);
    count(*h, PatchedCall::getaddrinfo);
    count_wait(*h, PatchedCall::getaddrinfo);
    int rc = 0;
    int err = 0;
    auto r = weft::detail::offload_raw([&]() noexcept {
        rc = real::calls().getaddrinfo(node, service, hints, res);
        err = errno;  // EAI_SYSTEM reads errno
    });
    if (!r) {
        errno = EINTR;
        return EAI_SYSTEM;
    }
    errno = err;
    return rc;
}

int getnameinfo(const sockaddr* addr, socklen_t addrlen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) {
    HubImpl* h = active();
    if (!h) return real::calls().getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags);
    count(*h, PatchedCall::getnameinfo);
    count_wait(*h, PatchedCall::getnameinfo);
    int rc = 0;
    int err = 0;
    auto r = weft::detail::offload_raw([&]() noexcept {
        rc = real::calls().getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags);
        err = errno;
    });
    if (!r) {
        errno = EINTR;
        return EAI_SYSTEM;
    }
    errno = err;
    return rc;
}

hostent* gethostbyname(const char* name) {
    HubImpl* h = active();
    if (!h) return real::calls().gethostbyname(name);
    count(*h, PatchedCall::gethostbyname);
    count_wait(*h, PatchedCall::gethostbyname);
    hostent* r = nullptr;
    int herr = 0;
    // libc's answer lives in its static buffer, as it does without patching: the call was
    // never safe to make from two threads at once.
    auto done = weft::detail::offload_raw([&]() noexcept {
        r = real::calls().gethostbyname(name);
        herr = h_errno;
    });
    h_errno = done ? herr : TRY_AGAIN;
    return done ? r : nullptr;
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result,
                    int* h_errnop) {
    HubImpl* h = active();
    if (!h) return real::calls().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    count(*h, PatchedCall::gethostbyname_r);
    count_wait(*h, PatchedCall::gethostbyname_r);
    int rc = 0;
    auto done = weft::detail::offload_raw([&]() noexcept {
        rc = real::calls().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    });
    if (!done) {
        if (result) *result = nullptr;
        if (h_errnop) *h_errnop = TRY_AGAIN;
        return EAGAIN;
    }
    return rc;
}

}  // extern "C"
