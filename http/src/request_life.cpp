// Request deadlines, contexts and hang-up watches (see request_life.hpp).
#include "request_life.hpp"

#include <poll.h>

#include <charconv>

#include "weft/core/fd_wait.hpp"
#include "weft/core/fiber_local.hpp"
#include "weft/core/internal/clock.hpp"
#include "weft/core/internal/park_hook.hpp"
#include "weft/core/log.hpp"

namespace weft::http::detail {

struct RequestContextSlot::Shared {
    RequestContext ctx;
    bool active = false;
};

namespace {

// The fiber-local slot of the request context (a FiberLocal's storage, used directly so that
// begin() can ask in one call whether this fiber owns the value).
std::size_t request_slot() noexcept {
    static const std::size_t slot = weft::detail::fiber_local_slot();
    return slot;
}

RequestContextSlot::Shared* published_request() noexcept {
    return static_cast<RequestContextSlot::Shared*>(weft::detail::fiber_local_get(request_slot()));
}

}  // namespace

RequestContext& RequestContextSlot::begin(const internal::HandlerScope& scope) {
    // Off a fiber nobody can ask.
    if (!scope.fiber) {
        if (!cur_) cur_ = std::make_shared<Shared>();
        return cur_->ctx;
    }
    // The object stays published in the fiber's locals between requests (end() only marks it
    // inactive), so a connection's next request costs no table change. It is reused when its
    // only holders are this slot and, if published, this fiber's own table; a fiber the last
    // handler spawned that still runs (holding the object, or sharing the table) keeps the old
    // one, inactive, and this request gets a new one. (Held by the slot alone, it is published
    // nowhere: a table would hold it too.) The common case, the same fiber as last time that
    // spawned nothing since, needs no look at the table.
    const bool same = cur_ && scope.fiber_id == owner_fiber_ &&
                      scope.locals_shares == owner_shares_ && cur_.use_count() <= 2;
    if (!same) {
        const bool owned = cur_ && internal::fiber_local_owned(request_slot(), cur_.get());
        bool publish = !owned;
        if (!cur_ || cur_.use_count() > (owned ? 2 : 1)) {
            cur_ = std::make_shared<Shared>();
            publish = true;
        }
        if (publish)
            weft::detail::fiber_local_set(request_slot(), std::static_pointer_cast<void>(cur_));
        // Published now in a table of this fiber's own (a shared one was copied on write).
        owner_fiber_ = scope.fiber_id;
        owner_shares_ = scope.locals_shares;
    }
    cur_->active = true;
    return cur_->ctx;
}

void RequestContextSlot::end() noexcept {
    // Fibers the handler spawned no longer see the request; the object stays published for
    // the next request (see begin()).
    if (cur_) {
        cur_->active = false;
        cur_->ctx = RequestContext{};
    }
}

std::optional<std::chrono::nanoseconds> parse_timeout_header(std::string_view v) noexcept {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
        v.remove_suffix(1);
    if (v.empty() || v.size() > 12) return std::nullopt;
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || n < 0 || p == v.data()) return std::nullopt;
    const std::string_view unit(p, static_cast<std::size_t>(v.data() + v.size() - p));
    using namespace std::chrono;
    std::int64_t unit_ns = 0;
    if (unit.empty() || unit == "m")
        unit_ns = 1'000'000;
    else if (unit == "H")
        unit_ns = 3'600'000'000'000;
    else if (unit == "M")
        unit_ns = 60'000'000'000;
    else if (unit == "S")
        unit_ns = 1'000'000'000;
    else if (unit == "u")
        unit_ns = 1'000;
    else if (unit == "n")
        unit_ns = 1;
    else
        return std::nullopt;
    // gRPC allows 8 digits of hours (11,000 years): longer than anything a deadline needs, and
    // than nanoseconds hold. Such a value asks for no shorter deadline than a year's.
    constexpr std::int64_t kLongest = 365LL * 24 * 3'600'000'000'000;
    if (n > kLongest / unit_ns) return nanoseconds(kLongest);
    return nanoseconds(n * unit_ns);
}

RequestLife::RequestLife(const ServerOptions& o, const Endpoint& ep, const Request& req,
                         Clock::time_point received, int fd, const std::string_view& peer,
                         RequestContextSlot& slot)
    : slot_(slot), fd_(fd) {
    // A WebSocket lives as long as it is used: only a route's own timeout bounds it.
    const auto timeout = ep.options.timeout ? *ep.options.timeout
                         : ep.websocket     ? std::chrono::nanoseconds(0)
                                            : o.request_timeout;
    if (timeout.count() > 0) deadline_ = Deadline(received + timeout);
    if (!o.timeout_header.empty() && !ep.websocket) {
        if (auto h = req.header(o.timeout_header)) {
            if (auto t = parse_timeout_header(*h))
                deadline_ = earliest(deadline_, Deadline(received + *t));
        }
    }
    internal::enter_handler(scope_, deadline_, fd_ >= 0 ? this : nullptr);
    RequestContext* cp;
    try {
        cp = &slot_.begin(scope_);  // may allocate
    } catch (...) {
        // No destructor runs for a constructor that throws: the fiber's deadline and park hook
        // (this object) must not outlive it.
        internal::leave_handler(scope_);
        throw;
    }
    RequestContext& c = *cp;
    c.method = req.method_name();
    c.path = req.path();
    c.route = req.route();
    c.peer = peer;
    c.deadline = deadline_;
}

RequestLife::~RequestLife() {
    handler_done();
}

void RequestLife::handler_done() noexcept {
    if (done_) return;
    done_ = true;
    if (watch_) watch_->done = true;
    internal::leave_handler(scope_);
    slot_.end();
    if (watcher_.valid()) {
        watcher_.cancel();
        // The watch's wait must end before the connection reads again: no deadline applies.
        (void)watcher_.wait();
        watcher_.detach();
    }
}

bool RequestLife::deadline_passed() const noexcept {
    if (deadline_.is_never()) return false;
    if (parked_ || fd_ < 0) return deadline_.passed();
    // A handler that never waited only computed: the coarse clock (the same epoch, behind by at
    // most a tick, and a fifth of the cost) answers, since this runs for every request. Near
    // the deadline it cannot tell, and the precise clock says: a library call the handler made
    // may have been refused for the deadline by that one, and its error must not go out as the
    // answer (a deadline of "0" or a few microseconds). Near is four ticks: a virtual CPU's
    // coarse clock was seen 7.3 ms behind with a 4 ms tick.
    const Clock::time_point coarse = internal::coarse_now();
    if (coarse >= deadline_.time_point()) return true;
    return coarse + 4 * internal::coarse_tick() > deadline_.time_point() && deadline_.passed();
}

void RequestLife::on_park() noexcept {
    parked_ = true;
    if (flush_) flush_->flush_early();
    // The handler waits: watch the connection for a client that hangs up meanwhile, and then
    // cancel the handler (Go's Request.Context().Done()). The watch uses only what it holds.
    try {
        watch_ = std::make_shared<Watch>();
        watcher_ = weft::spawn("http-hangup-watch", [w = watch_, fd = fd_, handler = scope_.fiber] {
            if (w->done) return;
            auto r = weft::wait_fd(fd, POLLRDHUP, Deadline::never());
            if (w->done || !r || !(*r & (POLLRDHUP | POLLHUP | POLLERR))) return;
            w->gone = true;
            internal::cancel_fiber(handler);
        });
    } catch (const std::exception& e) {
        weft::logger("http")->debug("cannot watch for a hang-up: {}", e.what());
    }
}

const RequestContext* current_request_impl() noexcept {
    auto* s = published_request();
    return s && s->active ? &s->ctx : nullptr;
}

}  // namespace weft::http::detail

namespace weft::http {

const RequestContext* current_request() noexcept {
    return detail::current_request_impl();
}

}  // namespace weft::http
