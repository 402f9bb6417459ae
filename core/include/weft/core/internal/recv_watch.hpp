// Engine hooks, not for handler authors: a fiber-less receive watch on a TcpStream (what lets an
// idle keep-alive connection hold no fiber and no buffer), a send no fiber waits for, and the
// backends' way to make a RecvBuffer. Used by weft's HTTP server; not installed with the SDK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"
#include "weft/core/tcp.hpp"

namespace weft {

namespace detail {
class IoBackend;
}

namespace internal {

/// Called on the hub (not in a fiber; it must not block, it may spawn a fiber) with the first
/// bytes that arrive, Errc::eof when the peer closed, Errc::timed_out at the deadline, or
/// Errc::cancelled after unwatch().
class RecvWatcher {
  public:
    virtual void on_recv(Result<RecvBuffer> bytes) noexcept = 0;

  protected:
    ~RecvWatcher() = default;

  private:
    friend class weft::detail::IoBackend;
    void* op_ = nullptr;  // engine state of the pending watch
};

/// Waits for the next bytes on `stream` without a fiber and without a buffer. At most one
/// watch per stream; the watcher must outlive it (until on_recv runs). Hub thread only.
void watch(TcpStream& stream, RecvWatcher& watcher, Deadline deadline);
/// Ends a pending watch: on_recv runs soon with Errc::cancelled, or with bytes that raced in
/// (they are never dropped).
void unwatch(RecvWatcher& watcher) noexcept;

/// Keeps receiving on `stream` without a fiber: on_recv runs with every piece of bytes that
/// arrives (it must not end the watcher then) until a final result: Errc::eof, an error,
/// Errc::timed_out at the deadline, or Errc::cancelled after unwatch() (bytes that raced in come
/// first). One submission serves many arrivals, where watch() takes one each. Nothing else may
/// receive on the stream meanwhile. False when the backend cannot (epoll, or a kernel before
/// 6.0): use watch(). Hub thread only.
bool watch_stream(TcpStream& stream, RecvWatcher& watcher, Deadline deadline);
/// Moves the deadline of a watch_stream() (never: none). Hub thread only.
void set_watch_deadline(RecvWatcher& watcher, Deadline deadline) noexcept;

/// Called on the hub (not in a fiber; it must not block, it may spawn a fiber) when a detached
/// send ends: with the bytes the kernel took (possibly fewer than given: send the rest), or
/// Errc::timed_out at the deadline, Errc::cancelled after cancel_send() or a runtime stop, or
/// the socket's error.
class SendWatcher {
  public:
    virtual void on_sent(Result<std::size_t> sent) noexcept = 0;

  protected:
    ~SendWatcher() = default;

  private:
    friend class weft::detail::IoBackend;
    void* op_ = nullptr;  // engine state of the pending send
};

/// Starts sending `data` on `stream` without a fiber: nobody parks for it, and `watcher` hears
/// how it ended. `data` must stay valid, and the watcher alive, until on_sent runs; one such
/// send per stream at a time. False when the hub's backend cannot (epoll): send from a fiber.
/// Hub thread only.
bool send_detached(TcpStream& stream, std::string_view data, SendWatcher& watcher,
                   Deadline deadline);
/// Ends a pending detached send early: on_sent runs soon (with Errc::cancelled, or with what
/// was sent if it finished first).
void cancel_send(SendWatcher& watcher) noexcept;

/// How the I/O backends make the buffers they hand out.
struct RecvBufferAccess {
    static RecvBuffer make(char* data, std::size_t size, RecvBuffer::ReleaseFn release, void* owner,
                           std::uint32_t token) noexcept {
        return RecvBuffer(data, size, release, owner, token);
    }
};

}  // namespace internal
}  // namespace weft
