// TcpStream, TcpListener, RecvBuffer and resolve(): thin faces over the hub's I/O backend.
#include "weft/core/tcp.hpp"

#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

#include "hub_impl.hpp"
#include "weft/core/internal/clock.hpp"
#include "weft/core/offload.hpp"

namespace weft {

using detail::HubImpl;

namespace {
HubImpl& hub_or_die() {
    HubImpl* h = HubImpl::current();
    WEFT_CHECK(h != nullptr, "socket operations must run on a hub thread (inside a fiber)");
    return *h;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// RecvBuffer

void RecvBuffer::reset() noexcept {
    if (release_) release_(owner_, token_, data_);
    data_ = nullptr;
    size_ = 0;
    release_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// TcpStream

TcpStream& TcpStream::operator=(TcpStream&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = o.release();
    }
    return *this;
}

Result<TcpStream> TcpStream::connect(const SocketAddress& addr, Deadline deadline) {
    HubImpl& hub = hub_or_die();
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | hub.io().socket_flags(), 0);
    if (fd < 0) return Error::from_errno(errno);
    TcpStream s(fd);
    if (auto r = hub.io().connect(fd, addr.data(), addr.size(), deadline); !r) return r.error();
    return s;
}

Result<std::size_t> TcpStream::recv(std::span<char> buf, Deadline deadline) {
    return hub_or_die().io().recv(fd_, buf.data(), buf.size(), deadline);
}

Result<RecvBuffer> TcpStream::recv_buffer(Deadline deadline) {
    return hub_or_die().io().recv_buffer(fd_, deadline);
}

namespace {
// The deadline of the next partial send: the fixed one, or, with a stall bound, `stall` from now
// (by the coarse clock: a stall is detected a tick late at most, never early).
inline Deadline next_deadline(Deadline fixed, std::chrono::nanoseconds stall) noexcept {
    return stall.count() > 0 ? internal::coarse_deadline(stall) : fixed;
}

Result<void> send_loop(int fd, std::string_view data, Deadline deadline,
                       std::chrono::nanoseconds stall) {
    auto& io = hub_or_die().io();
    while (!data.empty()) {
        auto n = io.send(fd, data.data(), data.size(), next_deadline(deadline, stall));
        if (!n) return n.error();
        data.remove_prefix(*n);
    }
    return {};
}

Result<void> writev_loop(int fd, std::span<const iovec> bufs, Deadline deadline,
                         std::chrono::nanoseconds stall) {
    auto& io = hub_or_die().io();
    constexpr std::size_t kMaxIov = 64;
    iovec local[kMaxIov];
    while (!bufs.empty()) {
        std::size_t cnt = bufs.size() < kMaxIov ? bufs.size() : kMaxIov;
        for (std::size_t i = 0; i < cnt; ++i)
            local[i] = bufs[i];
        std::size_t total = 0;
        for (std::size_t i = 0; i < cnt; ++i)
            total += local[i].iov_len;
        std::size_t first = 0;
        while (total > 0) {
            auto n = io.sendmsg(fd, local + first, static_cast<int>(cnt - first),
                                next_deadline(deadline, stall));
            if (!n) return n.error();
            std::size_t sent = *n;
            total -= sent;
            while (sent > 0 && first < cnt) {
                if (sent >= local[first].iov_len) {
                    sent -= local[first].iov_len;
                    ++first;
                } else {
                    local[first].iov_base = static_cast<char*>(local[first].iov_base) + sent;
                    local[first].iov_len -= sent;
                    sent = 0;
                }
            }
        }
        bufs = bufs.subspan(cnt);
    }
    return {};
}
}  // namespace

Result<void> TcpStream::send(std::string_view data, Deadline deadline) {
    return send_loop(fd_, data, deadline, {});
}

Result<void> TcpStream::writev(std::span<const iovec> bufs, Deadline deadline) {
    return writev_loop(fd_, bufs, deadline, {});
}

Result<void> TcpStream::send_until_stalled(std::string_view data, std::chrono::nanoseconds stall) {
    return send_loop(fd_, data, {}, stall);
}

Result<void> TcpStream::writev_until_stalled(std::span<const iovec> bufs,
                                             std::chrono::nanoseconds stall) {
    return writev_loop(fd_, bufs, {}, stall);
}

Result<void> TcpStream::shutdown(int how) noexcept {
    if (::shutdown(fd_, how) < 0) return Error::from_errno(errno);
    return {};
}

void TcpStream::close() noexcept {
    if (fd_ < 0) return;
    int fd = release();
    if (HubImpl* h = HubImpl::current())
        h->io().close(fd);
    else
        ::close(fd);
}

Result<void> TcpStream::set_nodelay(bool on) noexcept {
    int v = on ? 1 : 0;
    if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0)
        return Error::from_errno(errno);
    return {};
}

Result<void> TcpStream::set_linger_reset() noexcept {
    linger l{1, 0};
    if (::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0) return Error::from_errno(errno);
    return {};
}

Result<SocketAddress> TcpStream::peer_address() const {
    SocketAddress a;
    *a.size_ptr() = SocketAddress::capacity();
    if (::getpeername(fd_, a.data(), a.size_ptr()) < 0) return Error::from_errno(errno);
    return a;
}

Result<SocketAddress> TcpStream::local_address() const {
    SocketAddress a;
    *a.size_ptr() = SocketAddress::capacity();
    if (::getsockname(fd_, a.data(), a.size_ptr()) < 0) return Error::from_errno(errno);
    return a;
}

// ---------------------------------------------------------------------------------------------
// TcpListener

TcpListener::TcpListener() noexcept = default;
TcpListener::TcpListener(TcpListener&& o) noexcept = default;
TcpListener& TcpListener::operator=(TcpListener&& o) noexcept {
    if (this != &o) {
        close();
        state_ = std::move(o.state_);
    }
    return *this;
}
TcpListener::~TcpListener() {
    close();
}

Result<TcpListener> TcpListener::bind(const SocketAddress& addr, ListenOptions options) {
    HubImpl& hub = hub_or_die();
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | hub.io().socket_flags(), 0);
    if (fd < 0) return Error::from_errno(errno);
    int one = 1;
    if (options.reuse_address) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        int e = errno;
        ::close(fd);
        return Error::from_errno(e);
    }
    if (addr.family() == AF_INET6) {
        int v6only = options.v6_only ? 1 : 0;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (::bind(fd, addr.data(), addr.size()) < 0 || ::listen(fd, options.backlog) < 0) {
        int e = errno;
        ::close(fd);
        return Error::from_errno(e);
    }
    TcpListener l;
    l.state_ = std::make_unique<detail::ListenState>();
    l.state_->fd = fd;
    l.state_->hub = &hub;
    hub.io().listen_open(*l.state_);
    return l;
}

Result<TcpStream> TcpListener::accept(Deadline deadline, SocketAddress* peer) {
    if (!state_) return Errc::closed;
    HubImpl& hub = hub_or_die();
    WEFT_CHECK(state_->hub == &hub, "TcpListener used from another hub than the one that bound it");
    auto fd = hub.io().accept(*state_, deadline);
    if (!fd) return fd.error();
    TcpStream s(*fd);
    if (peer) {
        auto p = s.peer_address();
        *peer = p ? *p : SocketAddress();
    }
    return s;
}

void TcpListener::close() noexcept {
    if (!state_) return;
    HubImpl* h = state_->hub;
    if (HubImpl::current() == h) {
        h->io().listen_close(std::move(state_));
        return;
    }
    // From another thread: the owning hub must do it (its backend may have operations on it).
    detail::ListenState* ls = state_.release();
    h->post_any([h, ls] { h->io().listen_close(std::unique_ptr<detail::ListenState>(ls)); });
}

bool TcpListener::is_open() const noexcept {
    return state_ != nullptr;
}
int TcpListener::fd() const noexcept {
    return state_ ? state_->fd : -1;
}

Result<SocketAddress> TcpListener::local_address() const {
    if (!state_) return Errc::closed;
    SocketAddress a;
    *a.size_ptr() = SocketAddress::capacity();
    if (::getsockname(state_->fd, a.data(), a.size_ptr()) < 0) return Error::from_errno(errno);
    return a;
}

// ---------------------------------------------------------------------------------------------
// resolve

Result<std::vector<SocketAddress>> resolve(const std::string& host, std::uint16_t port) {
    struct Out {
        std::string host;
        int rc = 0;
        int sys_errno = 0;  // EAI_SYSTEM's cause: errno of the pool thread that looked up
        std::vector<SocketAddress> addrs;
    };
    // The lookup owns what it touches: at the fiber's deadline or cancel the fiber leaves,
    // even while getaddrinfo runs (a dead resolver takes 10-30 s), and the lookup's answer,
    // when it comes, is dropped.
    auto out_ptr = std::make_shared<Out>();
    out_ptr->host = host;
    auto looked_up = detail::resolver_owned([o = out_ptr, port]() noexcept {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        const std::string service = std::to_string(port);
        o->rc = ::getaddrinfo(o->host.c_str(), service.c_str(), &hints, &res);
        if (o->rc == EAI_SYSTEM) o->sys_errno = errno;
        try {
            for (addrinfo* ai = res; ai; ai = ai->ai_next)
                o->addrs.emplace_back(ai->ai_addr, static_cast<socklen_t>(ai->ai_addrlen));
        } catch (...) {
            o->rc = EAI_MEMORY;
        }
        if (res) ::freeaddrinfo(res);
    });
    if (!looked_up) return looked_up.error();
    Out& out = *out_ptr;
    if (out.rc == EAI_NONAME || out.rc == EAI_NODATA || out.rc == EAI_FAIL) return Errc::not_found;
    // A failure for now: the DNS server answered SERVFAIL or REFUSED, or did not answer within
    // resolv.conf's timeout. Not the caller's deadline (that is timed_out, above).
    if (out.rc == EAI_AGAIN) return Error(Errc::unavailable, EAGAIN);
    if (out.rc != 0) return Error(Errc::system, out.rc == EAI_SYSTEM ? out.sys_errno : 0);
    if (out.addrs.empty()) return Errc::not_found;
    return std::move(out.addrs);
}

namespace internal {

void watch(TcpStream& stream, RecvWatcher& watcher, Deadline deadline) {
    hub_or_die().io().watch(stream.fd(), watcher, deadline);
}

void unwatch(RecvWatcher& watcher) noexcept {
    if (HubImpl* h = HubImpl::current()) h->io().unwatch(watcher);
}

bool watch_stream(TcpStream& stream, RecvWatcher& watcher, Deadline deadline) {
    return hub_or_die().io().watch_stream(stream.fd(), watcher, deadline);
}

void set_watch_deadline(RecvWatcher& watcher, Deadline deadline) noexcept {
    if (HubImpl* h = HubImpl::current()) h->io().set_watch_deadline(watcher, deadline);
}

bool send_detached(TcpStream& stream, std::string_view data, SendWatcher& watcher,
                   Deadline deadline) {
    return hub_or_die().io().send_detached(stream.fd(), data.data(), data.size(), watcher,
                                           deadline);
}

void cancel_send(SendWatcher& watcher) noexcept {
    if (HubImpl* h = HubImpl::current()) h->io().cancel_send(watcher);
}

}  // namespace internal
}  // namespace weft
