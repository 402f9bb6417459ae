// IoBackend: what a hub needs from the kernel, behind one interface with two implementations:
// io_uring (default) and epoll (fallback). Fiber-side calls park the calling fiber; loop-side
// calls are made by the hub loop only.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "weft/core/deadline.hpp"
#include "weft/core/internal/recv_watch.hpp"
#include "weft/core/result.hpp"
#include "weft/core/tcp.hpp"

namespace weft {
struct RuntimeOptions;
}

namespace weft::detail {

class HubImpl;
struct FiberRecord;

/// A fiber parked in accept() (io_uring): in its listener's list, oldest first, until woken.
struct AcceptWait {
    FiberRecord* fiber = nullptr;
    AcceptWait* prev = nullptr;
    AcceptWait* next = nullptr;
};

/// A listening socket and what its backend keeps for it (io_uring: accepted fds queued by the
/// multishot accept). Freed by the backend once no operation names it.
struct ListenState {
    int fd = -1;
    HubImpl* hub = nullptr;
    std::deque<int> accepted;       ///< connections accepted but not yet handed out
    Error pending_error{Errc::ok};  ///< an accept error to report once the queue is drained
    /// Fibers parked in accept() (several may accept on one listener, as in Go).
    AcceptWait* waiters = nullptr;
    bool armed = false;  ///< multishot accept in flight
    bool cancel_sent = false;
    bool closing = false;
    int users = 0;  ///< fibers inside accept(): the state outlives them
    void* backend_op = nullptr;
};

/// Counts a fiber inside accept() so a concurrent close() defers freeing the state.
class ListenUse {
  public:
    ListenUse(ListenState& ls, void (*release)(ListenState*) noexcept) noexcept
        : ls_(ls), release_(release) {
        ++ls_.users;
    }
    ~ListenUse() {
        if (--ls_.users == 0 && ls_.closing) release_(&ls_);
    }
    ListenUse(const ListenUse&) = delete;
    ListenUse& operator=(const ListenUse&) = delete;

  private:
    ListenState& ls_;
    void (*release_)(ListenState*) noexcept;
};

class IoBackend {
  public:
    virtual ~IoBackend() = default;
    virtual const char* name() const noexcept = 0;

    // Loop side (hub thread).
    /// Submits queued work and handles completions, waiting at most `timeout_ns`
    /// (-1: until something happens; 0: not at all). Calls HubImpl::woke() once the wait (or
    /// the look) is over and before any completion is handled, so that the fibers it wakes
    /// are stamped ready at the time they were.
    virtual void poll(std::int64_t timeout_ns) = 0;
    /// Cancels every operation in flight (runtime stop).
    virtual void cancel_all() noexcept = 0;
    /// Operations in flight other than the backend's own.
    virtual std::size_t pending_ops() const noexcept = 0;

    // Fiber side: park the calling fiber of this hub.
    virtual Result<std::size_t> recv(int fd, char* buf, std::size_t len, Deadline dl) = 0;
    virtual Result<RecvBuffer> recv_buffer(int fd, Deadline dl) = 0;
    virtual Result<std::size_t> send(int fd, const char* buf, std::size_t len, Deadline dl) = 0;
    virtual Result<std::size_t> sendmsg(int fd, const iovec* iov, int iovcnt, Deadline dl) = 0;
    virtual Result<void> connect(int fd, const sockaddr* addr, socklen_t len, Deadline dl) = 0;
    virtual Result<int> accept(ListenState& ls, Deadline dl) = 0;
    /// Waits until `fd` (any pollable descriptor, usually one another library owns) has one of
    /// `events` (POLLIN, POLLOUT, POLLPRI); returns the events it has (POLLHUP and POLLERR
    /// included). Other waits on the same descriptor, from this or other fibers, are allowed.
    virtual Result<short> wait_fd(int fd, short events, Deadline dl) = 0;
    /// Waits until any of `fds` has one of its events. Fills in the revents of the descriptors
    /// whose readiness woke the fiber (others read 0: poll them again for the whole picture);
    /// all 0 when a descriptor cannot be waited on (a regular file, one not open) and the
    /// call returned at once. `n` >= 1.
    virtual Result<void> wait_fds(pollfd* fds, std::size_t n, Deadline dl) = 0;

    /// Flags for new sockets: SOCK_NONBLOCK where the backend needs it (epoll).
    virtual int socket_flags() const noexcept = 0;

    // Hub side, no parking.
    /// Starts listening bookkeeping for a freshly bound socket.
    virtual void listen_open(ListenState& ls) noexcept = 0;
    /// Stops accepting and frees `ls` once no operation names it; a parked acceptor wakes
    /// with Errc::closed.
    virtual void listen_close(std::unique_ptr<ListenState> ls) noexcept = 0;
    /// Closes a socket (no operation may be pending on it).
    virtual void close(int fd) noexcept = 0;
    virtual void watch(int fd, internal::RecvWatcher& w, Deadline dl) = 0;
    virtual void unwatch(internal::RecvWatcher& w) noexcept = 0;
    /// A watch that stays armed (see internal::watch_stream); false if this backend has none.
    virtual bool watch_stream(int /*fd*/, internal::RecvWatcher& /*w*/, Deadline /*dl*/) {
        return false;
    }
    virtual void set_watch_deadline(internal::RecvWatcher& /*w*/, Deadline /*dl*/) noexcept {}
    /// A send no fiber waits for (see internal::send_detached); false if this backend has none.
    virtual bool send_detached(int /*fd*/, const char* /*data*/, std::size_t /*len*/,
                               internal::SendWatcher& /*w*/, Deadline /*dl*/) {
        return false;
    }
    virtual void cancel_send(internal::SendWatcher& /*w*/) noexcept {}

  protected:
    static void*& watcher_op(internal::RecvWatcher& w) noexcept { return w.op_; }
    static void*& watcher_op(internal::SendWatcher& w) noexcept { return w.op_; }
};

std::unique_ptr<IoBackend> make_io_uring_backend(HubImpl& hub, const RuntimeOptions& o);
std::unique_ptr<IoBackend> make_epoll_backend(HubImpl& hub, const RuntimeOptions& o);

/// Whether io_uring with everything Weft uses works here; on failure `why` says what refused.
bool io_uring_usable(std::string& why);

}  // namespace weft::detail
