// Waits on descriptors that another library owns, and the bookkeeping that lets close(2) wake
// the fibers waiting on a descriptor, on any hub, instead of leaving them parked on a dead one.
#include "fd_wait.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "hub_impl.hpp"
#include "patch/patch.hpp"
#include "patch/real.hpp"
#include "weft/core/fd_wait.hpp"

namespace weft::detail {

namespace {

// Per descriptor number, over all hubs: how many fibers wait on it (close(2) looks here first,
// so a close that nobody waits on costs one load), and how many times it was closed while
// someone waited. Chunks are made on first use and never freed.
constexpr std::size_t kChunk = 4096;
constexpr std::size_t kChunks = 1024;  // descriptors below 4M
template <class T>
using Table = std::atomic<std::atomic<T>*>[kChunks];
using Counters = Table<std::uint32_t>;
Counters g_waits;
Counters g_closes;
// Per descriptor number and direction: the fiber parked in a patched read (write) on it (its
// record's address: unique among the fibers alive, over every runtime), 0 for none (see
// ExclusiveUse).
Table<std::uintptr_t> g_readers;
Table<std::uintptr_t> g_writers;

template <class T>
std::atomic<T>* counter(Table<T>& table, int fd, bool create) noexcept {
    if (fd < 0) return nullptr;
    const std::size_t c = static_cast<std::size_t>(fd) / kChunk;
    if (c >= kChunks) return nullptr;
    auto* chunk = table[c].load(std::memory_order_acquire);
    if (!chunk && create) {
        auto* fresh = new (std::nothrow) std::atomic<T>[kChunk]();
        if (!fresh) return nullptr;
        if (table[c].compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel))
            chunk = fresh;
        else
            delete[] fresh;
    }
    return chunk ? &chunk[static_cast<std::size_t>(fd) % kChunk] : nullptr;
}

std::atomic<std::uint32_t>* wait_count(int fd, bool create) noexcept {
    return counter(g_waits, fd, create);
}

std::mutex g_hubs_mu;
std::vector<HubImpl*> g_hubs;
std::atomic<std::size_t> g_hub_count{0};  // g_hubs.size(), read without the lock

// A fiber's waits on descriptors: registered for close(2) while it is parked.
class Registration {
  public:
    Registration(HubImpl& hub, const pollfd* fds, std::size_t n) : hub_(hub), n_(n) {
        nodes_ = n <= kInline ? inline_ : (heap_ = std::make_unique<FdWaitNode[]>(n)).get();
        for (std::size_t i = 0; i < n; ++i) {
            nodes_[i].fd = fds[i].fd;
            if (auto* c = counter(g_closes, fds[i].fd, true))
                nodes_[i].closes = c->load(std::memory_order_acquire);
            nodes_[i].fiber = hub.running();
            hub.fd_waits().add(nodes_[i]);
            if (auto* c = wait_count(fds[i].fd, true)) c->fetch_add(1, std::memory_order_relaxed);
        }
    }
    ~Registration() {
        for (std::size_t i = 0; i < n_; ++i) {
            hub_.fd_waits().remove(nodes_[i]);
            if (auto* c = wait_count(nodes_[i].fd, false))
                c->fetch_sub(1, std::memory_order_relaxed);
        }
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

  private:
    static constexpr std::size_t kInline = 4;
    HubImpl& hub_;
    std::size_t n_;
    FdWaitNode inline_[kInline];
    std::unique_ptr<FdWaitNode[]> heap_;
    FdWaitNode* nodes_;
};

// Off a fiber: poll(2) on the calling thread, in slices so the deadline is kept exactly.
Result<short> poll_thread(int fd, short events, Deadline deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int timeout = -1;
        if (!deadline.is_never()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline.remaining() + std::chrono::microseconds(999));
            timeout = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
        }
        int r = real::calls().poll(&p, 1, timeout);
        if (r > 0) return p.revents;
        if (r < 0 && errno != EINTR) return Error::from_errno(errno);
        if (r == 0 && deadline.passed()) return Errc::timed_out;
    }
}

}  // namespace

void FdWaitRegistry::add(FdWaitNode& n) noexcept {
    if (n.fd < 0) return;
    const auto i = static_cast<std::size_t>(n.fd);
    if (i >= heads_.size()) {
        try {
            heads_.resize(i + 256, nullptr);
        } catch (...) {
            n.prev = n.next = &n;  // not listed: a close will not find it
            return;
        }
    }
    n.prev = nullptr;
    n.next = heads_[i];
    if (n.next) n.next->prev = &n;
    heads_[i] = &n;
}

void FdWaitRegistry::remove(FdWaitNode& n) noexcept {
    if (n.fd < 0 || n.next == &n) return;
    if (n.prev)
        n.prev->next = n.next;
    else
        heads_[static_cast<std::size_t>(n.fd)] = n.next;
    if (n.next) n.next->prev = n.prev;
    n.prev = n.next = nullptr;
}

bool FdWaitRegistry::waits(int fd, const FiberRecord* f) const noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= heads_.size()) return false;
    for (const FdWaitNode* n = heads_[static_cast<std::size_t>(fd)]; n; n = n->next)
        if (n->fiber == f) return true;
    return false;
}

void FdWaitRegistry::close_fd(HubImpl& hub, int fd, std::uint32_t closes) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= heads_.size()) return;
    for (FdWaitNode* n = heads_[static_cast<std::size_t>(fd)]; n; n = n->next)
        if (closes == 0 || static_cast<std::int32_t>(closes - n->closes) > 0)
            hub.interrupt(n->fiber, Errc::closed);
}

Result<short> wait_one(HubImpl& hub, int fd, short events, Deadline deadline) {
    const pollfd p{fd, events, 0};
    Registration reg(hub, &p, 1);
    return hub.io().wait_fd(fd, events, deadline);
}

Result<void> wait_any(HubImpl& hub, pollfd* fds, std::size_t n, Deadline deadline) {
    Registration reg(hub, fds, n);
    return hub.io().wait_fds(fds, n, deadline);
}

ExclusiveUse::ExclusiveUse(int fd, bool write, const FiberRecord* fiber) noexcept
    : self_(reinterpret_cast<std::uintptr_t>(fiber)) {
    auto* slot = counter(write ? g_writers : g_readers, fd, true);
    if (!slot) return;  // out of memory, or a descriptor past 4M: not watched
    std::uintptr_t held = 0;
    if (slot->compare_exchange_strong(held, self_, std::memory_order_acq_rel)) {
        slot_ = slot;
        return;
    }
    // Nobody waits on the number (a close that bypassed the wrappers left the claim): the
    // claim is stale, and this wait takes it over.
    const auto* waits = wait_count(fd, false);
    if ((!waits || waits->load(std::memory_order_relaxed) == 0) &&
        slot->compare_exchange_strong(held, self_, std::memory_order_acq_rel)) {
        slot_ = slot;
        return;
    }
    other_ = reinterpret_cast<const FiberRecord*>(held);
}

ExclusiveUse::~ExclusiveUse() {
    std::uintptr_t mine = self_;
    // A close ended the claim already (and another fiber may hold a new one): left alone.
    if (slot_) slot_->compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
}

void fd_closing(int fd) noexcept {
    // The child of a fork() has copies of the hubs, not hubs: interrupting a copied waiter
    // would write a cancel into the ring it shares with the parent, and the hub list's lock or
    // another hub's queue lock may have been held by a thread that the child does not have.
    if (patch::g_forked) return;
    auto* c = wait_count(fd, false);
    if (!c || c->load(std::memory_order_relaxed) == 0) return;
    // The fibers parked on it are woken, but may not run before the number is used again.
    for (auto* table : {&g_readers, &g_writers})
        if (auto* claim = counter(*table, fd, false)) claim->store(0, std::memory_order_release);
    auto* closes_of = counter(g_closes, fd, false);  // made by the waits' registration
    const std::uint32_t closes =
        closes_of ? closes_of->fetch_add(1, std::memory_order_acq_rel) + 1 : 0;
    HubImpl* self = HubImpl::current();
    if (self) self->fd_waits().close_fd(*self, fd, closes);
    std::lock_guard lock(g_hubs_mu);
    for (HubImpl* h : g_hubs) {
        if (h == self) continue;
        try {
            h->post_any([h, fd, closes] { h->fd_waits().close_fd(*h, fd, closes); });
        } catch (...) {
        }
    }
}

void fd_closing_range(unsigned first, unsigned last) noexcept {
    // Only the chunks that exist hold waits: a range up to ~0U costs a walk of those.
    for (std::size_t c = first / kChunk; c < kChunks && c <= last / kChunk; ++c) {
        auto* chunk = g_waits[c].load(std::memory_order_acquire);
        if (!chunk) continue;
        for (std::size_t i = 0; i < kChunk; ++i) {
            const std::size_t fd = c * kChunk + i;
            if (fd < first || fd > last) continue;
            if (chunk[i].load(std::memory_order_relaxed) != 0) fd_closing(static_cast<int>(fd));
        }
    }
}

void register_hub(HubImpl* hub) {
    std::lock_guard lock(g_hubs_mu);
    g_hubs.push_back(hub);
    g_hub_count.store(g_hubs.size(), std::memory_order_relaxed);
}

void unregister_hub(HubImpl* hub) noexcept {
    std::lock_guard lock(g_hubs_mu);
    std::erase(g_hubs, hub);
    g_hub_count.store(g_hubs.size(), std::memory_order_relaxed);
}

bool any_hub() noexcept {
    return g_hub_count.load(std::memory_order_relaxed) != 0;
}

}  // namespace weft::detail

namespace weft {

Result<short> wait_fd(int fd, short events, Deadline deadline) {
    detail::HubImpl* hub = detail::HubImpl::current();
    auto r = (!hub || !hub->running()) ? detail::poll_thread(fd, events, deadline)
                                       : detail::wait_one(*hub, fd, events, deadline);
    if (r && (*r & POLLNVAL)) return Error::from_errno(EBADF);
    return r;
}

Result<int> poll_fds(std::span<pollfd> fds, Deadline deadline) {
    detail::HubImpl* hub = detail::HubImpl::current();
    const bool fiber = hub && hub->running();
    std::vector<pollfd> live;
    for (;;) {
        int timeout = 0;
        if (!fiber) {
            timeout = -1;
            if (!deadline.is_never()) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline.remaining() + std::chrono::microseconds(999));
                timeout = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
            }
        }
        const int n = detail::real::calls().poll(fds.data(), fds.size(), timeout);
        if (n > 0) return n;
        if (n < 0 && errno != EINTR) return Error::from_errno(errno);
        if (n == 0 && deadline.passed()) return 0;
        if (!fiber) continue;
        live.clear();
        for (const pollfd& p : fds)
            if (p.fd >= 0) live.push_back(p);
        auto r = live.empty() ? this_fiber::sleep_until(deadline)
                              : detail::wait_any(*hub, live.data(), live.size(), deadline);
        // The fiber's own deadline (earlier than the call's) ends the call: looking again would
        // find it passed at once, and again, without parking.
        if (!r && r.error().code == Errc::timed_out && !deadline.passed()) return r.error();
        if (!r && r.error().code != Errc::timed_out && r.error().code != Errc::closed)
            return r.error();
    }
}

Result<void> wait_readable(int fd, Deadline deadline) {
    auto r = wait_fd(fd, POLLIN, deadline);
    if (!r) return r.error();
    return {};
}

Result<void> wait_writable(int fd, Deadline deadline) {
    auto r = wait_fd(fd, POLLOUT, deadline);
    if (!r) return r.error();
    return {};
}

}  // namespace weft
