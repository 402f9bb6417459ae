// TCP for fibers: TcpListener and TcpStream. Every blocking call parks only the calling fiber,
// takes a deadline, and returns Errc::timed_out / Errc::cancelled as values. A socket belongs to
// the hub that created or accepted it and is used from that hub's fibers only.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"
#include "weft/core/socket_address.hpp"

namespace weft {

namespace detail {
struct ListenState;
class IoBackend;
}  // namespace detail
namespace internal {
struct RecvBufferAccess;
}

/// A buffer filled by a receive from the hub's shared pool (io_uring's provided-buffer ring):
/// a connection waiting for bytes holds none. Move-only; hands the buffer back when destroyed.
/// Must be destroyed on the hub that produced it.
class RecvBuffer {
  public:
    RecvBuffer() noexcept = default;
    // Inline: a buffer is moved several times on its way from the ring to the reader.
    RecvBuffer(RecvBuffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)),
          size_(std::exchange(o.size_, 0)),
          release_(std::exchange(o.release_, nullptr)),
          owner_(o.owner_),
          token_(o.token_) {}
    RecvBuffer& operator=(RecvBuffer&& o) noexcept {
        if (this != &o) {
            if (release_) reset();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
            release_ = std::exchange(o.release_, nullptr);
            owner_ = o.owner_;
            token_ = o.token_;
        }
        return *this;
    }
    ~RecvBuffer() {
        if (release_) reset();
    }

    const char* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept { return {data_, size_}; }
    /// Returns the buffer to its pool now.
    void reset() noexcept;

    using ReleaseFn = void (*)(void* owner, std::uint32_t token, char* data) noexcept;

  private:
    friend struct internal::RecvBufferAccess;  // the backends make them
    RecvBuffer(char* data, std::size_t size, ReleaseFn release, void* owner,
               std::uint32_t token) noexcept
        : data_(data), size_(size), release_(release), owner_(owner), token_(token) {}

    char* data_ = nullptr;
    std::size_t size_ = 0;
    ReleaseFn release_ = nullptr;
    void* owner_ = nullptr;
    std::uint32_t token_ = 0;
};

class TcpStream {
  public:
    TcpStream() noexcept = default;
    explicit TcpStream(int fd) noexcept : fd_(fd) {}
    TcpStream(TcpStream&& o) noexcept : fd_(o.release()) {}
    TcpStream& operator=(TcpStream&& o) noexcept;
    ~TcpStream() { close(); }

    /// Connects to `addr` (IPv4 or IPv6).
    [[nodiscard]] static Result<TcpStream> connect(const SocketAddress& addr,
                                                   Deadline deadline = {});

    /// Receives up to buf.size() bytes; 0 means the peer closed (end of stream).
    [[nodiscard]] Result<std::size_t> recv(std::span<char> buf, Deadline deadline = {});
    /// Receives into a pooled buffer (see RecvBuffer); Errc::eof when the peer closed.
    [[nodiscard]] Result<RecvBuffer> recv_buffer(Deadline deadline = {});
    /// Sends all of `data` (looping over partial sends).
    [[nodiscard]] Result<void> send(std::string_view data, Deadline deadline = {});
    /// Sends all of the buffers, gathered (looping over partial sends).
    [[nodiscard]] Result<void> writev(std::span<const iovec> bufs, Deadline deadline = {});
    /// Like send() and writev(), but Errc::timed_out comes only when no byte went out for
    /// `stall`: it bounds a stalled peer, not the whole transfer (nginx's send_timeout), so a
    /// slow reader of a large response is not cut off while it keeps reading. `stall` 0: no
    /// bound. The stall is timed by the coarse clock: never early, up to a tick (1-10 ms) late.
    [[nodiscard]] Result<void> send_until_stalled(std::string_view data,
                                                  std::chrono::nanoseconds stall);
    [[nodiscard]] Result<void> writev_until_stalled(std::span<const iovec> bufs,
                                                    std::chrono::nanoseconds stall);

    /// shutdown(2): SHUT_RD, SHUT_WR or SHUT_RDWR.
    Result<void> shutdown(int how) noexcept;
    /// Closes the socket (idempotent). No operation may be pending on it.
    void close() noexcept;
    Result<void> set_nodelay(bool on) noexcept;
    /// SO_LINGER with timeout 0: close() then sends RST instead of FIN.
    Result<void> set_linger_reset() noexcept;

    Result<SocketAddress> peer_address() const;
    Result<SocketAddress> local_address() const;
    int fd() const noexcept { return fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    int release() noexcept {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_ = -1;
};

struct ListenOptions {
    int backlog = 4096;
    bool reuse_port = false;  ///< SO_REUSEPORT: several listeners (one per hub) share the port
    bool reuse_address = true;
    bool v6_only = false;
};

class TcpListener {
  public:
    TcpListener() noexcept;
    TcpListener(TcpListener&& o) noexcept;
    TcpListener& operator=(TcpListener&& o) noexcept;
    ~TcpListener();

    /// Binds and listens on the calling hub. Port 0 picks a free port (see local_address()).
    [[nodiscard]] static Result<TcpListener> bind(const SocketAddress& addr,
                                                  ListenOptions options = {});

    /// Waits for the next connection. Errc::too_many_files when the process is out of file
    /// descriptors (back off and retry), Errc::closed after close().
    [[nodiscard]] Result<TcpStream> accept(Deadline deadline = {}, SocketAddress* peer = nullptr);

    /// Stops listening; a fiber parked in accept() wakes with Errc::closed.
    void close() noexcept;
    bool is_open() const noexcept;
    Result<SocketAddress> local_address() const;
    int fd() const noexcept;

  private:
    std::unique_ptr<detail::ListenState> state_;
};

/// Resolves `host` (a name or a numeric address) and `port` with getaddrinfo on the runtime's
/// resolver threads (gevent's default thread resolver, but apart from offload()'s pool).
/// Errc::not_found when the name does not resolve; Errc::unavailable when the lookup failed for
/// now (getaddrinfo's EAI_AGAIN: the DNS server failed, refused, or did not answer within
/// resolv.conf's timeout). The calling fiber's deadline
/// (this_fiber::deadline(), a ScopedDeadline) or a cancel ends the wait (Errc::timed_out,
/// Errc::cancelled) even while the lookup runs: it runs on unobserved, holding its resolver thread
/// until getaddrinfo returns.
[[nodiscard]] Result<std::vector<SocketAddress>> resolve(const std::string& host,
                                                         std::uint16_t port);

}  // namespace weft
