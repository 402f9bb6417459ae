// io_uring backend: one ring per hub (SINGLE_ISSUER|DEFER_TASKRUN when the kernel takes them),
// multishot accept, receives from a provided-buffer ring, and the rule that a fiber whose memory
// an in-flight request names resumes only after that request's completion (cancel, then wait).
// The only file that includes liburing.
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <vector>

#include "hub_impl.hpp"
#include "io_backend.hpp"
#include "log.hpp"
#include "patch/real.hpp"

namespace weft::detail {

namespace {

constexpr unsigned kBufGroup = 0;
// Connections a listener takes ahead of its acceptor; beyond this the multishot accept stops and
// the kernel's backlog holds newcomers (so a server pausing at max_connections is not overrun).
constexpr std::size_t kMaxQueuedAccepts = 16;
constexpr unsigned kCqeBatch = 256;
/// Completions one poll may handle before the loop reads the clock again (HubImpl::handled()).
constexpr std::size_t kFewCompletions = 8;
constexpr std::size_t kSpareOps = 1024;

class UringBackend;

/// Anything whose address is an SQE's user_data.
struct Op {
    void (*complete)(UringBackend* be, Op* op, int res, unsigned flags) noexcept = nullptr;
};

/// A request made by a parked fiber: its memory lives on that fiber's stack.
struct FiberOp final : Op, Interruptible {
    UringBackend* be = nullptr;
    FiberRecord* fiber = nullptr;
    int res = 0;
    unsigned flags = 0;
    bool done = false;
    bool cancel_sent = false;
    Errc why = Errc::ok;
    void interrupt(FiberRecord* f, Errc w) noexcept override;
};

/// A request no fiber waits for: its completion runs on the hub. It may have a deadline, at
/// which it is cancelled, as it is on request; its completion then says why.
struct DetachedOp : Op {
    struct Timer {
        TimerNode node;  // first: the timer callback gets &node
        DetachedOp* op;
    };
    Timer timer{{}, this};
    bool cancel_sent = false;
    Errc why = Errc::ok;
    UringBackend* be = nullptr;
};

/// A fiber-less receive for internal::watch(), or a multishot one for watch_stream().
struct WatchOp final : DetachedOp {
    internal::RecvWatcher* watcher = nullptr;
    int fd = -1;
    bool multishot = false;
    // A stream watch's deadline (INT64_MAX: none). Its timer may be armed earlier than this:
    // a later deadline only updates it, and the timer, when it fires, re-arms for it (an idle
    // connection's deadline moves with every request; the heap moves once per timeout).
    std::int64_t want_ns = INT64_MAX;
};

static_assert(std::is_trivially_destructible_v<WatchOp>);

/// A fiber-less send for internal::send_detached().
struct SendOp final : DetachedOp {
    internal::SendWatcher* watcher = nullptr;
};

static_assert(std::is_trivially_destructible_v<SendOp>);

/// Ops of one kind kept for reuse (a keep-alive connection takes a watch and perhaps a detached
/// send per request); at most kSpareOps of each.
template <class T>
class SpareOps {
  public:
    SpareOps() { spare_.reserve(kSpareOps); }
    ~SpareOps() {
        for (T* op : spare_)
            delete op;
    }
    T* take() {
        if (spare_.empty()) return new T();
        T* op = spare_.back();
        spare_.pop_back();
        return new (op) T();  // trivially destructible: nothing to end first
    }
    void give_back(T* op) noexcept {
        if (spare_.size() < spare_.capacity())
            spare_.push_back(op);
        else
            delete op;
    }

  private:
    std::vector<T*> spare_;
};

struct AcceptOp final : Op {
    ListenState* ls = nullptr;
};

struct WakeOp final : Op {};

struct UringPollGroup;

class UringBackend final : public IoBackend {
    friend struct UringPollGroup;

  public:
    UringBackend(HubImpl& hub, const RuntimeOptions& o);
    ~UringBackend() override;

    const char* name() const noexcept override { return "io_uring"; }
    void poll(std::int64_t timeout_ns) override;
    void cancel_all() noexcept override;
    std::size_t pending_ops() const noexcept override { return pending_; }
    int socket_flags() const noexcept override { return 0; }

    Result<std::size_t> recv(int fd, char* buf, std::size_t len, Deadline dl) override;
    Result<RecvBuffer> recv_buffer(int fd, Deadline dl) override;
    Result<std::size_t> send(int fd, const char* buf, std::size_t len, Deadline dl) override;
    Result<std::size_t> sendmsg(int fd, const iovec* iov, int iovcnt, Deadline dl) override;
    Result<void> connect(int fd, const sockaddr* addr, socklen_t len, Deadline dl) override;
    Result<int> accept(ListenState& ls, Deadline dl) override;
    Result<short> wait_fd(int fd, short events, Deadline dl) override;
    Result<void> wait_fds(pollfd* fds, std::size_t n, Deadline dl) override;
    void listen_open(ListenState& ls) noexcept override;
    void listen_close(std::unique_ptr<ListenState> ls) noexcept override;
    void close(int fd) noexcept override;
    void watch(int fd, internal::RecvWatcher& w, Deadline dl) override;
    void unwatch(internal::RecvWatcher& w) noexcept override;
    bool watch_stream(int fd, internal::RecvWatcher& w, Deadline dl) override;
    void set_watch_deadline(internal::RecvWatcher& w, Deadline dl) noexcept override;
    bool send_detached(int fd, const char* data, std::size_t len, internal::SendWatcher& w,
                       Deadline dl) override;
    void cancel_send(internal::SendWatcher& w) noexcept override;

    void submit_cancel(Op* op) noexcept;

  private:
    io_uring_sqe* sqe();
    /// Parks the running fiber until `op` completes; returns the raw result (-errno) or the
    /// interruption that cancelled it.
    Result<int> wait(FiberOp& op, Deadline dl, const char* reason);
    void arm_wake() noexcept;
    void arm_accept(ListenState& ls) noexcept;
    /// Handles the completions there are; returns how many.
    std::size_t reap() noexcept;
    RecvBuffer take_buffer(unsigned flags, int len) noexcept;
    static void release_buffer(void* owner, std::uint32_t bid, char* data) noexcept;
    static void free_heap_buffer(void*, std::uint32_t, char* data) noexcept { std::free(data); }

    static void fiber_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept;
    static void watch_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept;
    /// A completion of a watch_stream() op.
    void stream_watch_done(WatchOp* op, int res, unsigned flags) noexcept;
    void arm_stream_watch(WatchOp* op) noexcept;
    /// The watch's end: no longer in flight, back to the spares; then `w` hears `r`.
    void end_watch(WatchOp* op, Result<RecvBuffer> r) noexcept;
    static void accept_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept;
    static void wake_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept;
    /// Starts the deadline of a detached op just submitted (counts it in flight).
    void started(DetachedOp* op, Deadline dl);
    /// Cancels a detached op unless that is under way; its completion reports `why`.
    void cancel_detached(DetachedOp* op, Errc why) noexcept;
    /// Its completion came: no longer in flight, no deadline.
    void ended(DetachedOp* op) noexcept;
    static void detached_timer_fired(TimerNode* n) noexcept;
    static void stream_watch_timer_fired(TimerNode* n) noexcept;
    static void send_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept;
    /// Frees a closed listener once no fiber is in accept() and no accept is in flight.
    static void release_listen(ListenState* ls) noexcept;
    /// A poll of a wait_fds() group completed.
    static void poll_child_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept;

    HubImpl& hub_;
    io_uring ring_{};
    WakeOp wake_op_;
    std::size_t pending_ = 0;  // user ops in flight (not the wake read)
    // Provided buffers.
    io_uring_buf_ring* br_ = nullptr;
    std::size_t br_bytes_ = 0;
    char* bufs_ = nullptr;
    std::size_t buf_size_ = 0;
    unsigned buf_count_ = 0;
    SpareOps<WatchOp> spare_watch_ops_;
    SpareOps<SendOp> spare_send_ops_;
    bool multishot_recv_ = false;  // the kernel takes IORING_RECV_MULTISHOT (6.0)
};

void FiberOp::interrupt(FiberRecord*, Errc w) noexcept {
    if (done || cancel_sent) return;
    why = w;
    cancel_sent = true;
    be->submit_cancel(this);
}

unsigned round_pow2(unsigned v) {
    unsigned p = 1;
    while (p < v && p < 32768)
        p <<= 1;
    return p;
}

int setup_ring(io_uring* ring, unsigned entries, bool* optimized) {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    int r = io_uring_queue_init_params(entries, ring, &p);
    if (r == -EINVAL) {
        // Older kernels refuse the optimization flags; they are not required.
        p = io_uring_params{};
        p.flags = IORING_SETUP_SUBMIT_ALL;
        r = io_uring_queue_init_params(entries, ring, &p);
        if (r == -EINVAL) {
            p = io_uring_params{};
            r = io_uring_queue_init_params(entries, ring, &p);
        }
        if (optimized) *optimized = false;
    } else if (optimized) {
        *optimized = true;
    }
    return r;
}

UringBackend::UringBackend(HubImpl& hub, const RuntimeOptions& o) : hub_(hub) {
    bool optimized = false;
    int r = setup_ring(&ring_, o.ring_entries ? o.ring_entries : 4096, &optimized);
    if (r < 0) throw std::system_error(-r, std::system_category(), "io_uring_queue_init");
    if (hub.index() == 0 && !optimized)
        core_log().info(
            "io_uring: SINGLE_ISSUER|DEFER_TASKRUN refused by the kernel; running without");

    buf_count_ = round_pow2(o.recv_buffers ? o.recv_buffers : 512);
    buf_size_ = o.recv_buffer_size ? o.recv_buffer_size : 16 * 1024;
    br_bytes_ = buf_count_ * sizeof(io_uring_buf);
    void* mem =
        ::mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap buf ring");
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = buf_count_;
    reg.bgid = kBufGroup;
    r = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (r < 0) {
        ::munmap(br_, br_bytes_);
        io_uring_queue_exit(&ring_);
        throw std::system_error(-r, std::system_category(), "io_uring_register_buf_ring");
    }
    void* b = ::mmap(nullptr, buf_count_ * buf_size_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (b == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap buffers");
    bufs_ = static_cast<char*>(b);
    io_uring_buf_ring_init(br_);
    int mask = io_uring_buf_ring_mask(buf_count_);
    for (unsigned i = 0; i < buf_count_; ++i)
        io_uring_buf_ring_add(br_, bufs_ + i * buf_size_, static_cast<unsigned>(buf_size_),
                              static_cast<unsigned short>(i), mask, static_cast<int>(i));
    io_uring_buf_ring_advance(br_, static_cast<int>(buf_count_));

    wake_op_.complete = &UringBackend::wake_done;
    arm_wake();
    // Multishot receives came with 6.0; no probe tells, so the release does.
    utsname u{};
    int major = 0, minor = 0;
    if (::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2)
        multishot_recv_ = major >= 6;
}

UringBackend::~UringBackend() {
    io_uring_unregister_buf_ring(&ring_, kBufGroup);
    io_uring_queue_exit(&ring_);
    ::munmap(br_, br_bytes_);
    ::munmap(bufs_, buf_count_ * buf_size_);
}

io_uring_sqe* UringBackend::sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
        WEFT_CHECK(s != nullptr, "io_uring submission queue full after submit");
    }
    return s;
}

void UringBackend::arm_wake() noexcept {
    // A multishot poll, not a read: the eventfd is non-blocking, and io_uring answers a read
    // of a non-blocking file with -EAGAIN instead of waiting.
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_multishot(s, hub_.wake_fd(), POLLIN);
    io_uring_sqe_set_data(s, static_cast<Op*>(&wake_op_));
}

void UringBackend::wake_done(UringBackend* be, Op*, int res, unsigned flags) noexcept {
    std::uint64_t v;
    while (real::calls().read(be->hub_.wake_fd(), &v, sizeof v) > 0) {
    }
    // cancel_all() re-arms after cancelling everything, this poll included.
    if (!(flags & IORING_CQE_F_MORE) && res != -ECANCELED) be->arm_wake();
}

void UringBackend::submit_cancel(Op* op) noexcept {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, reinterpret_cast<std::uint64_t>(op), 0);
    io_uring_sqe_set_data(s, nullptr);
}

void UringBackend::cancel_all() noexcept {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data(s, nullptr);
    // The wake read was cancelled too; keep one armed so posts still wake us.
    arm_wake();
}

void UringBackend::poll(std::int64_t timeout_ns) {
    int r;
    if (timeout_ns == 0) {
        r = io_uring_submit_and_get_events(&ring_);
    } else if (timeout_ns < 0) {
        r = io_uring_submit_and_wait(&ring_, 1);
    } else {
        __kernel_timespec ts{};
        ts.tv_sec = timeout_ns / 1'000'000'000;
        ts.tv_nsec = timeout_ns % 1'000'000'000;
        io_uring_cqe* cqe = nullptr;
        r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    hub_.woke(timeout_ns != 0);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
        core_log().error("io_uring_enter failed: {}", std::strerror(-r));
    // A completion takes well under a microsecond; a few of them do not date the slice back.
    hub_.handled(reap() > kFewCompletions);
}

std::size_t UringBackend::reap() noexcept {
    io_uring_cqe* cqes[kCqeBatch];
    std::size_t total = 0;
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kCqeBatch);
        if (n == 0) return total;
        total += n;
        struct Done {
            Op* op;
            int res;
            unsigned flags;
        } done[kCqeBatch];
        for (unsigned i = 0; i < n; ++i)
            done[i] = {reinterpret_cast<Op*>(io_uring_cqe_get_data(cqes[i])), cqes[i]->res,
                       cqes[i]->flags};
        io_uring_cq_advance(&ring_, n);
        for (unsigned i = 0; i < n; ++i)
            if (done[i].op) done[i].op->complete(this, done[i].op, done[i].res, done[i].flags);
        if (n < kCqeBatch) return total;
    }
}

// ---------------------------------------------------------------------------------------------
// Fiber-side operations.

void UringBackend::fiber_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept {
    auto* f = static_cast<FiberOp*>(op);
    f->res = res;
    f->flags = flags;
    f->done = true;
    --be->pending_;
    be->hub_.make_ready(f->fiber, Errc::ok);
}

Result<int> UringBackend::wait(FiberOp& op, Deadline dl, const char* reason) {
    op.be = this;
    op.complete = &UringBackend::fiber_done;
    op.fiber = hub_.running();
    ++pending_;
    (void)hub_.park(&op, dl, reason);  // woken only by the completion
    if (op.res == -ECANCELED) return op.why == Errc::ok ? Errc::cancelled : op.why;
    return op.res;
}

Result<std::size_t> UringBackend::recv(int fd, char* buf, std::size_t len, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    FiberOp op;
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, fd, buf, len, 0);
    io_uring_sqe_set_data(s, static_cast<Op*>(&op));
    auto r = wait(op, dl, "recv");
    if (!r) return r.error();
    if (*r < 0) return Error::from_errno(-*r);
    return static_cast<std::size_t>(*r);
}

RecvBuffer UringBackend::take_buffer(unsigned flags, int len) noexcept {
    unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
    return internal::RecvBufferAccess::make(bufs_ + bid * buf_size_, static_cast<std::size_t>(len),
                                            &UringBackend::release_buffer, this, bid);
}

void UringBackend::release_buffer(void* owner, std::uint32_t bid, char* data) noexcept {
    auto* be = static_cast<UringBackend*>(owner);
    io_uring_buf_ring_add(be->br_, data, static_cast<unsigned>(be->buf_size_),
                          static_cast<unsigned short>(bid), io_uring_buf_ring_mask(be->buf_count_),
                          0);
    io_uring_buf_ring_advance(be->br_, 1);
}

Result<RecvBuffer> UringBackend::recv_buffer(int fd, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    FiberOp op;
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, fd, nullptr, buf_size_, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufGroup;
    io_uring_sqe_set_data(s, static_cast<Op*>(&op));
    auto r = wait(op, dl, "recv");
    if (!r) return r.error();
    if (*r == -ENOBUFS) {
        // Every pooled buffer is taken: receive into a buffer of our own instead.
        char* mem = static_cast<char*>(std::malloc(buf_size_));
        if (!mem) return Error(Errc::system, ENOMEM);
        auto n = recv(fd, mem, buf_size_, dl);
        if (!n || *n == 0) {
            std::free(mem);
            if (!n) return n.error();
            return Errc::eof;
        }
        return internal::RecvBufferAccess::make(mem, *n, &UringBackend::free_heap_buffer, nullptr,
                                                0);
    }
    if (*r < 0) return Error::from_errno(-*r);  // no buffer is taken on error
    if (*r == 0) {
        if (op.flags & IORING_CQE_F_BUFFER) take_buffer(op.flags, 0).reset();
        return Errc::eof;
    }
    return take_buffer(op.flags, *r);
}

Result<std::size_t> UringBackend::send(int fd, const char* buf, std::size_t len, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    FiberOp op;
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, fd, buf, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data(s, static_cast<Op*>(&op));
    auto r = wait(op, dl, "send");
    if (!r) return r.error();
    if (*r < 0) return Error::from_errno(-*r);
    return static_cast<std::size_t>(*r);
}

Result<std::size_t> UringBackend::sendmsg(int fd, const iovec* iov, int iovcnt, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    FiberOp op;
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
    io_uring_sqe* s = sqe();
    io_uring_prep_sendmsg(s, fd, &msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data(s, static_cast<Op*>(&op));
    auto r = wait(op, dl, "send");
    if (!r) return r.error();
    if (*r < 0) return Error::from_errno(-*r);
    return static_cast<std::size_t>(*r);
}

Result<void> UringBackend::connect(int fd, const sockaddr* addr, socklen_t len, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    FiberOp op;
    io_uring_sqe* s = sqe();
    io_uring_prep_connect(s, fd, addr, len);
    io_uring_sqe_set_data(s, static_cast<Op*>(&op));
    auto r = wait(op, dl, "connect");
    if (!r) return r.error();
    if (*r < 0) return Error::from_errno(-*r);
    return {};
}

Result<short> UringBackend::wait_fd(int fd, short events, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    FiberOp op;
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_add(s, fd, static_cast<unsigned>(events));
    io_uring_sqe_set_data(s, static_cast<Op*>(&op));
    auto r = wait(op, dl, "poll");
    if (!r) return r.error();
    if (*r < 0) return Error::from_errno(-*r);
    return static_cast<short>(*r);
}

// One poll per descriptor, all for one fiber: the first to complete cancels the others, and
// the fiber wakes once every one has completed (their memory is on its stack).
struct UringPollGroup final : Interruptible {
    struct Child final : Op {
        UringPollGroup* group = nullptr;
        bool done = false;
        int res = 0;  ///< the poll's result: its revents, or -errno (-ECANCELED when cancelled)
    };
    UringBackend* be = nullptr;
    HubImpl* hub = nullptr;
    FiberRecord* fiber = nullptr;
    Child* kids = nullptr;
    std::size_t n = 0;
    std::size_t outstanding = 0;
    bool cancelling = false;
    Errc why = Errc::ok;

    void cancel_rest() noexcept {
        cancelling = true;
        for (std::size_t i = 0; i < n; ++i)
            if (!kids[i].done) be->submit_cancel(&kids[i]);
    }
    void interrupt(FiberRecord*, Errc w) noexcept override {
        if (cancelling) return;
        why = w;
        cancel_rest();
    }
};

void UringBackend::poll_child_done(UringBackend* be, Op* op, int res, unsigned) noexcept {
    auto* child = static_cast<UringPollGroup::Child*>(op);
    UringPollGroup* grp = child->group;
    child->done = true;
    child->res = res;
    --be->pending_;
    if (!grp->cancelling) grp->cancel_rest();
    if (--grp->outstanding == 0) grp->hub->make_ready(grp->fiber, Errc::ok);
}

Result<void> UringBackend::wait_fds(pollfd* fds, std::size_t n, Deadline dl) {
    if (auto r = hub_.check_interrupt(dl); !r) return r.error();
    constexpr std::size_t kInline = 8;
    UringPollGroup::Child inline_kids[kInline];
    std::unique_ptr<UringPollGroup::Child[]> heap_kids;
    UringPollGroup g;
    g.kids = inline_kids;
    if (n > kInline) {
        heap_kids = std::make_unique<UringPollGroup::Child[]>(n);
        g.kids = heap_kids.get();
    }
    g.be = this;
    g.hub = &hub_;
    g.fiber = hub_.running();
    g.n = n;
    g.outstanding = n;
    for (std::size_t i = 0; i < n; ++i) {
        UringPollGroup::Child& c = g.kids[i];
        c.group = &g;
        c.complete = &UringBackend::poll_child_done;
        io_uring_sqe* s = sqe();
        io_uring_prep_poll_add(s, fds[i].fd, static_cast<unsigned>(fds[i].events));
        io_uring_sqe_set_data(s, static_cast<Op*>(&c));
        ++pending_;
    }
    (void)hub_.park(&g, dl, "poll");  // woken only once every poll has completed
    for (std::size_t i = 0; i < n; ++i) {
        const int res = g.kids[i].res;
        fds[i].revents = static_cast<short>(res > 0 ? res : res == -EBADF ? POLLNVAL : 0);
    }
    if (g.why != Errc::ok) return g.why;
    return {};
}

void UringBackend::close(int fd) noexcept {
    // Fire and forget: batched with the next submit; nothing waits for it.
    io_uring_sqe* s = sqe();
    io_uring_prep_close(s, fd);
    io_uring_sqe_set_data(s, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Multishot accept.

void link_waiter(ListenState& ls, AcceptWait* w) noexcept {
    w->next = nullptr;
    w->prev = nullptr;
    if (!ls.waiters) {
        ls.waiters = w;
        return;
    }
    AcceptWait* last = ls.waiters;
    while (last->next)
        last = last->next;
    last->next = w;
    w->prev = last;
}

void unlink_waiter(ListenState& ls, AcceptWait* w) noexcept {
    if (w->prev)
        w->prev->next = w->next;
    else if (ls.waiters == w)
        ls.waiters = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = nullptr;
}

// Wakes every fiber parked in accept() on `ls`: each looks again (those that find nothing
// park again), oldest first.
void wake_waiters(ListenState& ls, HubImpl& hub, Errc why) noexcept {
    while (AcceptWait* w = ls.waiters) {
        unlink_waiter(ls, w);
        hub.make_ready(w->fiber, why);
    }
}

struct AcceptWaiter final : Interruptible, AcceptWait {
    ListenState* ls;
    HubImpl* hub;
    void interrupt(FiberRecord* f, Errc why) noexcept override {
        unlink_waiter(*ls, this);  // only this fiber: others parked on the listener stay
        hub->make_ready(f, why);
    }
};

void UringBackend::listen_open(ListenState& ls) noexcept {
    auto* op = new AcceptOp();
    op->complete = &UringBackend::accept_done;
    op->ls = &ls;
    ls.backend_op = op;
}

void UringBackend::arm_accept(ListenState& ls) noexcept {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, ls.fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data(s, static_cast<Op*>(static_cast<AcceptOp*>(ls.backend_op)));
    ls.armed = true;
    ++pending_;
}

void UringBackend::accept_done(UringBackend* be, Op* op, int res, unsigned flags) noexcept {
    ListenState* ls = static_cast<AcceptOp*>(op)->ls;
    const bool more = flags & IORING_CQE_F_MORE;
    if (res >= 0) {
        if (ls->closing)
            ::close(res);
        else
            ls->accepted.push_back(res);
    } else if (res != -ECANCELED || !(ls->cancel_sent || ls->closing)) {
        if (!ls->closing && res != -ECANCELED) ls->pending_error = Error::from_errno(-res);
    }
    if (!more) {
        ls->armed = false;
        ls->cancel_sent = false;
        --be->pending_;
        if (ls->closing) {
            release_listen(ls);
            return;
        }
        // Stopped (queue was full, or an error): a parked acceptor with nothing queued needs
        // the next connection, so accept again now.
        if (ls->waiters && ls->accepted.empty() && ls->pending_error.code == Errc::ok)
            be->arm_accept(*ls);
    } else if (ls->accepted.size() >= kMaxQueuedAccepts && !ls->cancel_sent) {
        // Nobody takes connections fast enough: stop accepting, let the kernel backlog hold them.
        ls->cancel_sent = true;
        be->submit_cancel(op);
    }
    if (ls->waiters && (!ls->accepted.empty() || ls->pending_error.code != Errc::ok))
        wake_waiters(*ls, be->hub_, Errc::ok);
}

void UringBackend::release_listen(ListenState* ls) noexcept {
    if (ls->users > 0 || ls->armed) return;
    for (int fd : ls->accepted)
        ::close(fd);
    ::close(ls->fd);
    delete static_cast<AcceptOp*>(ls->backend_op);
    delete ls;
}

Result<int> UringBackend::accept(ListenState& ls, Deadline dl) {
    ListenUse use(ls, &UringBackend::release_listen);
    for (;;) {
        if (!ls.accepted.empty()) {
            int fd = ls.accepted.front();
            ls.accepted.pop_front();
            return fd;
        }
        if (ls.pending_error.code != Errc::ok) {
            Error e = ls.pending_error;
            ls.pending_error = Error(Errc::ok);
            return e;
        }
        if (ls.closing) return Errc::closed;
        if (auto r = hub_.check_interrupt(dl); !r) return r.error();
        if (!ls.armed) arm_accept(ls);
        AcceptWaiter w;
        w.ls = &ls;
        w.hub = &hub_;
        w.fiber = hub_.running();
        link_waiter(ls, &w);
        if (auto r = hub_.park(&w, dl, "accept"); !r) return r.error();
    }
}

void UringBackend::listen_close(std::unique_ptr<ListenState> owned) noexcept {
    ListenState* ls = owned.release();
    ls->closing = true;
    // Stop listening now: the descriptor itself is closed once the in-flight accept is gone,
    // but from here on the kernel refuses new connections.
    ::shutdown(ls->fd, SHUT_RDWR);
    wake_waiters(*ls, hub_, Errc::closed);
    if (ls->armed) {
        if (!ls->cancel_sent) {
            ls->cancel_sent = true;
            submit_cancel(static_cast<AcceptOp*>(ls->backend_op));
        }
    }
    release_listen(ls);  // or accept_done() / the last accept() frees it later
}

// ---------------------------------------------------------------------------------------------
// Fiber-less watch.

void UringBackend::watch(int fd, internal::RecvWatcher& w, Deadline dl) {
    WatchOp* op = spare_watch_ops_.take();
    op->complete = &UringBackend::watch_done;
    op->watcher = &w;
    op->fd = fd;
    op->be = this;
    watcher_op(w) = op;
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, fd, nullptr, buf_size_, 0);
    // A watch starts when the input is drained, so its bytes are rarely there yet: wait for
    // readiness first instead of trying a receive that fails with EAGAIN (5.19, as the
    // provided buffers).
    s->ioprio |= IORING_RECVSEND_POLL_FIRST;
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufGroup;
    io_uring_sqe_set_data(s, static_cast<Op*>(op));
    started(op, dl);
}

void UringBackend::started(DetachedOp* op, Deadline dl) {
    ++pending_;
    if (!dl.is_never()) {
        op->timer.node.when_ns = deadline_ns(dl);
        op->timer.node.fire = &UringBackend::detached_timer_fired;
        hub_.add_timer(&op->timer.node);
    }
}

void UringBackend::detached_timer_fired(TimerNode* n) noexcept {
    DetachedOp* op = reinterpret_cast<DetachedOp::Timer*>(n)->op;
    op->be->cancel_detached(op, Errc::timed_out);
}

void UringBackend::cancel_detached(DetachedOp* op, Errc why) noexcept {
    if (!op || op->cancel_sent) return;
    op->cancel_sent = true;
    op->why = why;
    submit_cancel(op);
}

void UringBackend::ended(DetachedOp* op) noexcept {
    --pending_;
    if (op->timer.node.armed()) hub_.remove_timer(&op->timer.node);
}

void UringBackend::unwatch(internal::RecvWatcher& w) noexcept {
    cancel_detached(static_cast<WatchOp*>(watcher_op(w)), Errc::cancelled);
}

bool UringBackend::watch_stream(int fd, internal::RecvWatcher& w, Deadline dl) {
    if (!multishot_recv_) return false;
    WatchOp* op = spare_watch_ops_.take();
    op->complete = &UringBackend::watch_done;
    op->watcher = &w;
    op->fd = fd;
    op->be = this;
    op->multishot = true;
    watcher_op(w) = op;
    arm_stream_watch(op);
    started(op, Deadline::never());
    set_watch_deadline(w, dl);
    return true;
}

void UringBackend::arm_stream_watch(WatchOp* op) noexcept {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, op->fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufGroup;
    io_uring_sqe_set_data(s, static_cast<Op*>(op));
}

void UringBackend::set_watch_deadline(internal::RecvWatcher& w, Deadline dl) noexcept {
    auto* op = static_cast<WatchOp*>(watcher_op(w));
    if (!op || op->cancel_sent) return;
    op->want_ns = dl.is_never() ? INT64_MAX : deadline_ns(dl);
    TimerNode& t = op->timer.node;
    // An armed timer due no later than the deadline stays: when it fires it looks again.
    if (op->want_ns == INT64_MAX || (t.armed() && t.when_ns <= op->want_ns)) return;
    if (t.armed()) hub_.remove_timer(&t);
    t.when_ns = op->want_ns;
    t.fire = &UringBackend::stream_watch_timer_fired;
    try {
        hub_.add_timer(&t);
    } catch (...) {
        cancel_detached(op, Errc::timed_out);  // no room for the timer: end the watch now
    }
}

void UringBackend::stream_watch_timer_fired(TimerNode* n) noexcept {
    auto* op = static_cast<WatchOp*>(reinterpret_cast<DetachedOp::Timer*>(n)->op);
    UringBackend* be = op->be;
    if (op->want_ns == INT64_MAX) return;  // no deadline any more
    if (op->want_ns > n->when_ns) {
        // The deadline moved later since the timer was armed: wait on for it.
        n->when_ns = op->want_ns;
        try {
            be->hub_.add_timer(n);
            return;
        } catch (...) {
        }
    }
    be->cancel_detached(op, Errc::timed_out);
}

void UringBackend::end_watch(WatchOp* op, Result<RecvBuffer> r) noexcept {
    ended(op);
    internal::RecvWatcher* w = op->watcher;
    watcher_op(*w) = nullptr;
    spare_watch_ops_.give_back(op);
    w->on_recv(std::move(r));
}

void UringBackend::stream_watch_done(WatchOp* op, int res, unsigned flags) noexcept {
    const bool more = flags & IORING_CQE_F_MORE;
    internal::RecvWatcher* w = op->watcher;
    const Errc why = op->why == Errc::ok ? Errc::cancelled : op->why;
    if (res > 0) {
        RecvBuffer b = take_buffer(flags, res);
        if (more) {
            w->on_recv(std::move(b));
            return;
        }
        // The kernel ended the receive without an error: go on, unless it was being cancelled
        // (then this was the last completion: no -ECANCELED follows).
        if (!op->cancel_sent) {
            arm_stream_watch(op);
            w->on_recv(std::move(b));
            return;
        }
        w->on_recv(std::move(b));
        end_watch(op, why);
        return;
    }
    if (flags & IORING_CQE_F_BUFFER) take_buffer(flags, 0).reset();
    if (res == -ENOBUFS && !op->cancel_sent) {
        // No pooled buffer free: take what is there into memory of our own, then go on.
        char* mem = static_cast<char*>(std::malloc(buf_size_));
        const ssize_t n = mem ? real::calls().recv(op->fd, mem, buf_size_, MSG_DONTWAIT) : -1;
        const int err = errno;
        if (n > 0) {
            arm_stream_watch(op);
            w->on_recv(internal::RecvBufferAccess::make(
                mem, static_cast<std::size_t>(n), &UringBackend::free_heap_buffer, nullptr, 0));
            return;
        }
        std::free(mem);
        if (n < 0 && err == EAGAIN) {
            arm_stream_watch(op);
            return;
        }
        end_watch(op, n == 0 ? Error(Errc::eof) : Error::from_errno(mem ? err : ENOMEM));
        return;
    }
    if (res == 0)
        end_watch(op, Errc::eof);
    else if (res == -ECANCELED || (res == -ENOBUFS && op->cancel_sent))
        end_watch(op, why);
    else
        end_watch(op, Error::from_errno(-res));
}

void UringBackend::watch_done(UringBackend* be, Op* o, int res, unsigned flags) noexcept {
    auto* op = static_cast<WatchOp*>(o);
    if (op->multishot) {
        be->stream_watch_done(op, res, flags);
        return;
    }
    be->ended(op);
    internal::RecvWatcher* w = op->watcher;
    Errc why = op->why;
    int fd = op->fd;
    const bool had_deadline = op->timer.node.when_ns != 0;
    const Deadline deadline =
        had_deadline ? Deadline(Clock::time_point(std::chrono::nanoseconds(op->timer.node.when_ns)))
                     : Deadline::never();
    watcher_op(*w) = nullptr;
    be->spare_watch_ops_.give_back(op);
    if (res == -ENOBUFS) {
        // No pooled buffer free: fall back to reading into a buffer of our own, in a fiber-less
        // way — the bytes are there (or the peer closed), so a non-blocking recv gets them.
        char* mem = static_cast<char*>(std::malloc(be->buf_size_));
        ssize_t n = mem ? real::calls().recv(fd, mem, be->buf_size_, MSG_DONTWAIT) : -1;
        if (n > 0) {
            w->on_recv(internal::RecvBufferAccess::make(
                mem, static_cast<std::size_t>(n), &UringBackend::free_heap_buffer, nullptr, 0));
            return;
        }
        std::free(mem);
        if (n == 0)
            w->on_recv(Errc::eof);
        else if (errno == EAGAIN)
            be->watch(fd, *w, deadline);  // keep the idle deadline
        else
            w->on_recv(Error::from_errno(errno));
        return;
    }
    if (res > 0) {
        w->on_recv(be->take_buffer(flags, res));
        return;
    }
    if (flags & IORING_CQE_F_BUFFER) be->take_buffer(flags, 0).reset();
    if (res == 0)
        w->on_recv(Errc::eof);
    else if (res == -ECANCELED)
        w->on_recv(why == Errc::ok ? Errc::cancelled : why);
    else
        w->on_recv(Error::from_errno(-res));
}

// ---------------------------------------------------------------------------------------------
// Fiber-less send.

bool UringBackend::send_detached(int fd, const char* data, std::size_t len,
                                 internal::SendWatcher& w, Deadline dl) {
    SendOp* op = spare_send_ops_.take();
    op->complete = &UringBackend::send_done;
    op->watcher = &w;
    op->be = this;
    watcher_op(w) = op;
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, fd, data, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data(s, static_cast<Op*>(op));
    started(op, dl);
    return true;
}

void UringBackend::cancel_send(internal::SendWatcher& w) noexcept {
    cancel_detached(static_cast<SendOp*>(watcher_op(w)), Errc::cancelled);
}

void UringBackend::send_done(UringBackend* be, Op* o, int res, unsigned) noexcept {
    auto* op = static_cast<SendOp*>(o);
    be->ended(op);
    internal::SendWatcher* w = op->watcher;
    const Errc why = op->why;
    watcher_op(*w) = nullptr;
    be->spare_send_ops_.give_back(op);
    if (res >= 0)
        w->on_sent(static_cast<std::size_t>(res));
    else if (res == -ECANCELED)
        w->on_sent(why == Errc::ok ? Errc::cancelled : why);
    else
        w->on_sent(Error::from_errno(-res));
}

}  // namespace

std::unique_ptr<IoBackend> make_io_uring_backend(HubImpl& hub, const RuntimeOptions& o) {
    return std::make_unique<UringBackend>(hub, o);
}

bool io_uring_usable(std::string& why) {
    io_uring ring{};
    bool optimized = false;
    int r = setup_ring(&ring, 8, &optimized);
    if (r < 0) {
        why = std::string("io_uring_setup failed: ") + std::strerror(-r);
        if (r == -EPERM || r == -EACCES)
            why += " (a seccomp profile, such as a container runtime's default, blocks it)";
        else if (r == -ENOSYS)
            why +=
                " (the kernel has no io_uring, or a seccomp profile such as podman's default "
                "hides it)";
        return false;
    }
    // Provided-buffer rings (5.19) and multishot accept (5.19) are required too.
    void* mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = 8;
    reg.bgid = 0;
    r = io_uring_register_buf_ring(&ring, &reg, 0);
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    bool ops_ok = probe && io_uring_opcode_supported(probe, IORING_OP_ACCEPT) &&
                  io_uring_opcode_supported(probe, IORING_OP_SEND) &&
                  io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
    if (probe) io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    ::munmap(mem, 4096);
    if (r < 0) {
        why = std::string("io_uring provided-buffer rings unavailable (kernel < 5.19?): ") +
              std::strerror(-r);
        return false;
    }
    if (!ops_ok) {
        why = "io_uring lacks accept/send/cancel opcodes";
        return false;
    }
    why = optimized ? "io_uring available (SINGLE_ISSUER|DEFER_TASKRUN)"
                    : "io_uring available (without DEFER_TASKRUN)";
    return true;
}

}  // namespace weft::detail
