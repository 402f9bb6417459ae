// Patched name resolution: getaddrinfo, getnameinfo, gethostbyname and gethostbyname_r. On a
// fiber of a patching hub the lookup runs on the runtime's resolver threads (gevent's threaded
// resolver, but apart from the offload pool, whose work it never waits behind) and only the
// fiber waits; the answer, its error codes and h_errno are libc's own.
// Everywhere else (and on the pool's threads) they are libc's calls. A fiber cancelled, or
// past its own deadline, before its lookup ends gets EAI_SYSTEM with ECANCELED or ETIMEDOUT
// from getaddrinfo and getnameinfo (which let it go even while the lookup runs), NO_RECOVERY
// (and ECANCELED or ETIMEDOUT) from the gethostbyname calls (which write the caller's memory,
// so they let it go only while the lookup waits for a pool thread). Not TRY_AGAIN: a caller
// retries that at once, and a cancelled fiber would spin its hub.
#include <arpa/inet.h>
#include <netdb.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "patch/patch.hpp"
#include "weft/core/offload.hpp"

using namespace weft::detail;
using namespace weft::detail::patch;

namespace {

// errno for a lookup the fiber could not wait for (with EAI_SYSTEM): its cancel or its own
// deadline, in words no caller retries at once (EAI_AGAIN or EINTR would be, forever).
int lookup_errno(const weft::Error& e) noexcept {
    return e.code == weft::Errc::cancelled ? ECANCELED : ETIMEDOUT;
}

// Whether getaddrinfo(node, service) needs no resolver and no file: a numeric address or
// none, and a port number or none.
bool numeric_only(const char* node, const char* service) noexcept {
    if (node) {
        unsigned char addr[sizeof(in6_addr)];
        if (::inet_pton(AF_INET, node, addr) != 1 && ::inet_pton(AF_INET6, node, addr) != 1)
            return false;
    }
    if (service) {
        if (*service == '\0') return false;
        for (const char* p = service; *p; ++p)
            if (*p < '0' || *p > '9') return false;
    }
    return true;
}

// gethostbyname's answer for the fibers of one hub thread. libc's is one static buffer per
// process, which lookups running at once on pool threads (fibers of any hub) would overwrite
// while a fiber reads it; each hub thread has its own instead, which its next lookup replaces,
// as the static one is without patching.
struct HostAnswer {
    hostent he{};
    std::vector<char> buf;
};
thread_local HostAnswer t_host_answer;

}  // namespace

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
    HubImpl* h = active();
    if (!h) return real::calls().getaddrinfo(node, service, hints, res);
    count(*h, PatchedCall::getaddrinfo);
    // Nothing to look up (a database at 127.0.0.1:5432): answered here, without waiting for a
    // resolver thread.
    if (numeric_only(node, service)) return real::calls().getaddrinfo(node, service, hints, res);
    count_wait(*h, PatchedCall::getaddrinfo);
    // The lookup owns copies of what it reads and the list it makes, so that the fiber's
    // deadline or a cancel lets the fiber go even while the lookup runs (a dead resolver takes
    // 10-30 s): a list nobody took is freed with the copies.
    struct Lookup {
        std::string node, service;
        bool has_node = false, has_service = false, has_hints = false;
        addrinfo hints{};
        int rc = 0;
        int err = 0;
        addrinfo* list = nullptr;
        ~Lookup() {
            if (list) ::freeaddrinfo(list);
        }
    };
    std::shared_ptr<Lookup> l;
    try {
        l = std::make_shared<Lookup>();
        if ((l->has_node = node != nullptr)) l->node = node;
        if ((l->has_service = service != nullptr)) l->service = service;
        if ((l->has_hints = hints != nullptr)) {
            // getaddrinfo reads only the flags, family, type and protocol of its hints.
            l->hints = *hints;
            l->hints.ai_addr = nullptr;
            l->hints.ai_canonname = nullptr;
            l->hints.ai_next = nullptr;
        }
    } catch (...) {
        return EAI_MEMORY;
    }
    auto r = weft::detail::resolver_owned([l]() noexcept {
        l->rc = real::calls().getaddrinfo(l->has_node ? l->node.c_str() : nullptr,
                                          l->has_service ? l->service.c_str() : nullptr,
                                          l->has_hints ? &l->hints : nullptr, &l->list);
        l->err = errno;  // EAI_SYSTEM reads errno
    });
    if (!r) {
        errno = lookup_errno(r.error());
        return EAI_SYSTEM;
    }
    *res = std::exchange(l->list, nullptr);
    errno = l->err;
    return l->rc;
}

int getnameinfo(const sockaddr* addr, socklen_t addrlen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) {
    HubImpl* h = active();
    if (!h || !addr || addrlen > sizeof(sockaddr_storage))
        return real::calls().getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags);
    count(*h, PatchedCall::getnameinfo);
    count_wait(*h, PatchedCall::getnameinfo);
    // As getaddrinfo: copies in, answers out, so that the fiber may leave at its deadline.
    struct Lookup {
        sockaddr_storage addr{};
        std::string host, serv;
        int rc = 0;
        int err = 0;
    };
    std::shared_ptr<Lookup> l;
    try {
        l = std::make_shared<Lookup>();
        std::memcpy(&l->addr, addr, addrlen);
        l->host.resize(host ? hostlen : 0);
        l->serv.resize(serv ? servlen : 0);
    } catch (...) {
        return EAI_MEMORY;
    }
    auto r = weft::detail::resolver_owned([l, addrlen, flags]() noexcept {
        l->rc = real::calls().getnameinfo(reinterpret_cast<const sockaddr*>(&l->addr), addrlen,
                                          l->host.empty() ? nullptr : l->host.data(),
                                          static_cast<socklen_t>(l->host.size()),
                                          l->serv.empty() ? nullptr : l->serv.data(),
                                          static_cast<socklen_t>(l->serv.size()), flags);
        l->err = errno;
    });
    if (!r) {
        errno = lookup_errno(r.error());
        return EAI_SYSTEM;
    }
    if (l->rc == 0) {
        if (host && hostlen) std::memcpy(host, l->host.data(), hostlen);
        if (serv && servlen) std::memcpy(serv, l->serv.data(), servlen);
    }
    errno = l->err;
    return l->rc;
}

hostent* gethostbyname(const char* name) {
    HubImpl* h = active();
    if (!h) return real::calls().gethostbyname(name);
    count(*h, PatchedCall::gethostbyname);
    count_wait(*h, PatchedCall::gethostbyname);
    // The reentrant call into storage of this lookup's own (see HostAnswer).
    HostAnswer got;
    hostent* r = nullptr;
    int herr = 0;
    auto done = weft::detail::resolver_raw([&]() noexcept {
        try {
            got.buf.resize(1024);
            for (;;) {
                const int rc = real::calls().gethostbyname_r(name, &got.he, got.buf.data(),
                                                             got.buf.size(), &r, &herr);
                if (rc != ERANGE || got.buf.size() >= (1u << 20)) break;
                got.buf.resize(got.buf.size() * 2);
            }
        } catch (...) {
            r = nullptr;
            herr = NO_RECOVERY;
        }
    });
    if (!done) {
        h_errno = NO_RECOVERY;
        errno = lookup_errno(done.error());
        return nullptr;
    }
    h_errno = herr;
    if (!r) return nullptr;
    t_host_answer = std::move(got);  // the buffer moves as it is: the answer's pointers hold
    return &t_host_answer.he;
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result,
                    int* h_errnop) {
    HubImpl* h = active();
    if (!h) return real::calls().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    count(*h, PatchedCall::gethostbyname_r);
    count_wait(*h, PatchedCall::gethostbyname_r);
    int rc = 0;
    auto done = weft::detail::resolver_raw([&]() noexcept {
        rc = real::calls().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    });
    if (!done) {
        if (result) *result = nullptr;
        if (h_errnop) *h_errnop = NO_RECOVERY;
        return lookup_errno(done.error());
    }
    return rc;
}

}  // extern "C"
