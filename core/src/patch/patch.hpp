// Shared by the patched libc calls: whether the caller is a fiber of a hub that patches, the
// per-hub counters, and how a failed wait reads as errno.
#pragma once

#include <cerrno>
#include <chrono>

#include "hub_impl.hpp"
#include "patch/fd_table.hpp"
#include "patch/real.hpp"
#include "weft/core/internal/patched_calls.hpp"

namespace weft::detail::patch {

using internal::PatchedCall;

/// Set in the child of a fork(): it has no hubs, so every call is libc's.
extern bool g_forked;

/// The hub whose fiber makes this call, when the call is to be patched; nullptr otherwise (the
/// common case off the hubs: one thread-local load and a branch).
[[gnu::always_inline]] inline HubImpl* active() noexcept {
    HubImpl* h = HubImpl::current();
    if (__builtin_expect(h == nullptr, 1)) return nullptr;
    if (!h->patching() || !h->running() || g_forked) return nullptr;
    return h;
}

inline void bump(std::atomic<std::uint64_t>& a) noexcept {
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
/// One patched call (hub thread).
inline void count(HubImpl& h, PatchedCall c) noexcept {
    bump(h.mutable_probe().patched_calls[static_cast<std::size_t>(c)]);
}
/// One park of a patched call.
inline void count_wait(HubImpl& h, PatchedCall c) noexcept {
    bump(h.mutable_probe().patched_waits[static_cast<std::size_t>(c)]);
}

/// errno for a wait that ended without the descriptor being ready: a timeout reads as
/// `timeout_errno` (EAGAIN for SO_RCVTIMEO, as libc), a cancel as EINTR (the fiber should
/// stop), a close of the descriptor as EBADF.
inline int wait_errno(const Error& e, int timeout_errno) noexcept {
    switch (e.code) {
        case Errc::timed_out:
            return timeout_errno;
        case Errc::cancelled:
            return EINTR;
        case Errc::closed:
            return EBADF;
        default:
            return e.sys_errno ? e.sys_errno : EIO;
    }
}

/// "No timeout" (0) or one from now.
inline Deadline after(std::chrono::milliseconds t) noexcept {
    return t.count() > 0 ? Deadline(t) : Deadline::never();
}

}  // namespace weft::detail::patch
