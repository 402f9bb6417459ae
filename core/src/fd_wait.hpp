// The hub's side of waits on descriptors: which fibers wait on which descriptor (so that closing
// it wakes them, on this hub or another), and the multi-descriptor wait behind poll(2) and
// select(2) when they are patched.
#pragma once

#include <atomic>
#include <cstdint>

#include <poll.h>

#include <cstddef>
#include <vector>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"

namespace weft::detail {

class HubImpl;
struct FiberRecord;

/// A fiber's wait on one descriptor, on that fiber's stack.
struct FdWaitNode {
    int fd = -1;
    /// The descriptor number's close count when the wait began: a close posted to this hub
    /// from another wakes only waits older than itself, not one on a new descriptor that got
    /// the number meanwhile.
    std::uint32_t closes = 0;
    FiberRecord* fiber = nullptr;
    FdWaitNode* prev = nullptr;
    FdWaitNode* next = nullptr;
};

/// Per hub, hub thread only.
class FdWaitRegistry {
  public:
    void add(FdWaitNode& n) noexcept;
    void remove(FdWaitNode& n) noexcept;
    /// Whether fiber `f` of this hub waits on `fd`.
    bool waits(int fd, const FiberRecord* f) const noexcept;
    /// Wakes every fiber of this hub waiting on `fd` with Errc::closed that began waiting
    /// before the `closes`-th close of that number (0: every one).
    void close_fd(HubImpl& hub, int fd, std::uint32_t closes) noexcept;

  private:
    std::vector<FdWaitNode*> heads_;  // indexed by fd
};

/// A patched call's claim on one direction of a descriptor while its fiber parks there (see
/// patch::park): a second fiber parking in a read (write) of a connection that one already
/// waits in is a library connection shared between fibers, and its buffers are about to be
/// mixed up. Over all hubs; a close of the descriptor ends the claims on it (fd_closing).
class ExclusiveUse {
  public:
    ExclusiveUse(int fd, bool write, const FiberRecord* fiber) noexcept;
    ~ExclusiveUse();
    ExclusiveUse(const ExclusiveUse&) = delete;
    ExclusiveUse& operator=(const ExclusiveUse&) = delete;
    /// The fiber that waits there already (on this hub or another: compare, do not touch);
    /// nullptr when this one holds the claim.
    const FiberRecord* other() const noexcept { return other_; }

  private:
    std::atomic<std::uintptr_t>* slot_ = nullptr;
    std::uintptr_t self_;
    const FiberRecord* other_ = nullptr;
};

/// Waits on one descriptor from a fiber of `hub` (registered for close_fd).
Result<short> wait_one(HubImpl& hub, int fd, short events, Deadline deadline);
/// Waits until any of `fds` is ready, from a fiber of `hub`; revents are not filled in.
Result<void> wait_any(HubImpl& hub, pollfd* fds, std::size_t n, Deadline deadline);

/// `fd` is being closed: every fiber waiting on it, on any hub, wakes with Errc::closed (a
/// fiber of another hub wakes soon after, through a post). Any thread.
void fd_closing(int fd) noexcept;
/// fd_closing() for every descriptor in [first, last] that a fiber waits on (close_range).
void fd_closing_range(unsigned first, unsigned last) noexcept;

/// Every live hub, for fd_closing(). Hubs add themselves when their thread starts.
void register_hub(HubImpl* hub);
void unregister_hub(HubImpl* hub) noexcept;
/// Whether any hub of any runtime exists (lock-free: for a fork's child handler).
bool any_hub() noexcept;

}  // namespace weft::detail
