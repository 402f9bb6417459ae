// The descriptor table of the patched calls: one 64-bit word per descriptor, in chunks made on
// first use. Word: bits 0-1 kind, bit 2 nonblocking, bits 3-32 receive timeout in ms, bits
// 33-62 send timeout in ms (each at most 2^30 ms, about 12 days), bit 63 shared.
#include "patch/fd_table.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <new>

#include "patch/real.hpp"

namespace weft::detail::patch {

namespace {

constexpr std::size_t kChunk = 4096;
constexpr std::size_t kChunks = 1024;
constexpr std::uint64_t kMaxMs = (1ull << 30) - 1;
std::atomic<std::atomic<std::uint64_t>*> g_chunks[kChunks];

std::atomic<std::uint64_t>* word(int fd, bool create = true) noexcept {
    if (fd < 0) return nullptr;
    const std::size_t c = static_cast<std::size_t>(fd) / kChunk;
    if (c >= kChunks) return nullptr;
    auto* chunk = g_chunks[c].load(std::memory_order_acquire);
    if (!chunk) {
        if (!create) return nullptr;
        auto* fresh = new (std::nothrow) std::atomic<std::uint64_t>[kChunk]();
        if (!fresh) return nullptr;
        if (g_chunks[c].compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel))
            chunk = fresh;
        else
            delete[] fresh;
    }
    return &chunk[static_cast<std::size_t>(fd) % kChunk];
}

std::uint64_t clamp_ms(std::chrono::milliseconds t) noexcept {
    if (t.count() <= 0) return 0;
    return static_cast<std::uint64_t>(t.count()) > kMaxMs ? kMaxMs
                                                          : static_cast<std::uint64_t>(t.count());
}

std::uint64_t pack(const FdInfo& i) noexcept {
    return static_cast<std::uint64_t>(i.kind) | (i.nonblocking ? 4u : 0u) |
           (clamp_ms(i.rcv_timeout) << 3) | (clamp_ms(i.snd_timeout) << 33) |
           (i.shared ? 1ull << 63 : 0);
}

FdInfo unpack(std::uint64_t w) noexcept {
    FdInfo i;
    i.kind = static_cast<FdKind>(w & 3);
    i.nonblocking = (w & 4) != 0;
    i.rcv_timeout = std::chrono::milliseconds((w >> 3) & kMaxMs);
    i.snd_timeout = std::chrono::milliseconds((w >> 33) & kMaxMs);
    i.shared = (w >> 63) != 0;
    return i;
}

std::chrono::milliseconds socket_timeout(int fd, int opt) noexcept {
    timeval tv{};
    socklen_t len = sizeof tv;
    if (::getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0) return std::chrono::milliseconds(0);
    // Rounded up, so that a short timeout is never 0 (none).
    return std::chrono::milliseconds(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
}

FdInfo look_at(int fd) noexcept {
    FdInfo i;
    struct stat st {};
    if (::fstat(fd, &st) < 0) return i;  // not open (kind unknown): libc's call says so
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
        i.kind = FdKind::other;  // always "ready": a read may take disk time, never forever
        return i;                // (O_NONBLOCK changes nothing for them: not asked)
    }
    const int fl = real::calls().fcntl(fd, F_GETFL);
    i.nonblocking = fl >= 0 && (fl & O_NONBLOCK);
    if (S_ISSOCK(st.st_mode)) {
        i.kind = FdKind::socket;
        i.rcv_timeout = socket_timeout(fd, SO_RCVTIMEO);
        i.snd_timeout = socket_timeout(fd, SO_SNDTIMEO);
    } else {
        i.kind = FdKind::pollable;  // pipes, FIFOs, terminals, eventfd and other anon inodes
    }
    return i;
}

template <class F>
void update(int fd, F&& change) noexcept {
    auto* w = word(fd);
    if (!w) return;
    std::uint64_t old = w->load(std::memory_order_relaxed);
    for (;;) {
        FdInfo i = (old & 3) ? unpack(old) : look_at(fd);
        if (i.kind == FdKind::unknown) return;
        change(i);
        if (w->compare_exchange_weak(old, pack(i), std::memory_order_relaxed)) return;
    }
}

}  // namespace

FdInfo fd_info(int fd) noexcept {
    auto* w = word(fd);
    if (!w) return look_at(fd);
    std::uint64_t v = w->load(std::memory_order_relaxed);
    // Only a socket's entry is taken as it is: a patched call on a number that stopped being a
    // socket fails with ENOTSOCK and looks again. Any other kind is looked at afresh on every
    // call (two system calls, beside a read or write of a pipe or a file): closed by a call the
    // wrappers do not see (fclose, libc's own closes, a raw system call), its number may come
    // back as a FIFO or a terminal opened blocking, which a stale "nonblocking" or "file" entry
    // would hand to libc's blocking call, holding the hub.
    if ((v & 3) == static_cast<std::uint64_t>(FdKind::socket)) return unpack(v);
    FdInfo i = look_at(fd);
    if (v & 3) i.shared = (v >> 63) != 0;  // dup'ed: kept (at worst, one fcntl too many)
    if (i.kind != FdKind::unknown && pack(i) != v) w->store(pack(i), std::memory_order_relaxed);
    return i;
}

void fd_created(int fd, FdKind kind, bool nonblocking) noexcept {
    if (auto* w = word(fd)) {
        FdInfo i;
        i.kind = kind;
        i.nonblocking = nonblocking;
        w->store(pack(i), std::memory_order_relaxed);
    }
}

void fd_set_nonblocking(int fd, bool on) noexcept {
    update(fd, [on](FdInfo& i) { i.nonblocking = on; });
}

void fd_set_timeout(int fd, bool receive, std::chrono::milliseconds t) noexcept {
    update(fd, [receive, t](FdInfo& i) { (receive ? i.rcv_timeout : i.snd_timeout) = t; });
}

void fd_forget(int fd) noexcept {
    // Without a chunk there is nothing to forget: no allocation (close() may be called from a
    // signal handler).
    if (auto* w = word(fd, false)) w->store(0, std::memory_order_relaxed);
}

void fd_forget_range(unsigned first, unsigned last) noexcept {
    for (std::size_t c = first / kChunk; c < kChunks && c <= last / kChunk; ++c) {
        auto* chunk = g_chunks[c].load(std::memory_order_acquire);
        if (!chunk) continue;
        for (std::size_t i = 0; i < kChunk; ++i) {
            const std::size_t fd = c * kChunk + i;
            if (fd >= first && fd <= last) chunk[i].store(0, std::memory_order_relaxed);
        }
    }
}

void fd_set_shared(int fd) noexcept {
    update(fd, [](FdInfo& i) { i.shared = true; });
}

bool fd_now_nonblocking(const FdInfo& info, int fd) noexcept {
    if (!info.shared) return false;
    const int fl = real::calls().fcntl(fd, F_GETFL);
    if (fl < 0 || !(fl & O_NONBLOCK)) return false;
    fd_set_nonblocking(fd, true);
    return true;
}

}  // namespace weft::detail::patch
