// A request's life while its handler runs: its deadline (the fiber's own, so every blocking
// call and every fiber the handler spawns keeps to it), its context for current_request(), and
// a watch for a client that hangs up, started only if the handler parks (a handler that
// answers without waiting costs nothing and cannot be interrupted anyway).
#pragma once

#include <memory>
#include <optional>

#include "weft/core/fiber.hpp"
#include "weft/core/internal/park_hook.hpp"
#include "weft/http/request.hpp"
#include "weft/http/request_context.hpp"
#include "weft/http/router.hpp"
#include "weft/http/server_options.hpp"

namespace weft::http::detail {

/// The request-context object of one session: reused from request to request unless a fiber
/// the last handler spawned still holds it.
class RequestContextSlot {
  public:
    /// Makes `ctx` the current request of the fiber `scope` was entered on (a session driven
    /// off a fiber, as unit tests do, publishes nothing); returns the object to fill in.
    RequestContext& begin(const internal::HandlerScope& scope);
    /// The handler returned: fibers it spawned no longer see the request.
    void end() noexcept;

    /// The object fibers share: the context, and whether its handler still runs.
    struct Shared;

  private:
    std::shared_ptr<Shared> cur_;
    // The fiber whose table held cur_ as its own at the last begin(), and its spawn count
    // then: while both are unchanged, it still does (see internal::HandlerScope).
    std::uint64_t owner_fiber_ = 0;
    std::uint32_t owner_shares_ = 0;
};

/// What else runs as a handler first waits: its session sends the answers it has (see
/// Http1Session::flush_early). It must not block.
class EarlyFlush {
  public:
    virtual void flush_early() noexcept = 0;

  protected:
    ~EarlyFlush() = default;
};

class RequestLife final : internal::ParkHook {
  public:
    /// `received`: when the request was complete; `fd`: the connection's socket.
    /// (`peer` by reference: as a seventh argument a view would be passed on the stack in two
    /// stores and read back in one load, which stalls.)
    RequestLife(const ServerOptions& o, const Endpoint& ep, const Request& req,
                Clock::time_point received, int fd, const std::string_view& peer,
                RequestContextSlot& slot);
    ~RequestLife();
    RequestLife(const RequestLife&) = delete;
    RequestLife& operator=(const RequestLife&) = delete;

    /// Call when the handler has returned: stops the hang-up watch (it may park briefly).
    void handler_done() noexcept;
    bool deadline_passed() const noexcept;
    bool client_gone() const noexcept { return watch_ && watch_->gone; }
    /// `f` runs (once) as the handler first waits, before the hang-up watch starts.
    void flush_on_park(EarlyFlush* f) noexcept { flush_ = f; }
    Deadline deadline() const noexcept { return deadline_; }

  private:
    void on_park() noexcept override;

    Deadline deadline_;
    internal::HandlerScope scope_;  // the fiber's deadline and park hook while the handler runs
    RequestContextSlot& slot_;
    int fd_;
    Fiber<void> watcher_;
    /// What the hang-up watch shares with the handler: the watch may outlive this object (a
    /// handler cancelled by a hard stop cannot wait for it), so it holds its own reference.
    struct Watch {
        bool gone = false;
        bool done = false;
    };
    std::shared_ptr<Watch> watch_;
    bool done_ = false;
    bool parked_ = false;  // the handler waited at least once (on_park ran)
    EarlyFlush* flush_ = nullptr;
};

/// A timeout header's value ("250m", "2S", "1500"): the duration, or nullopt when invalid.
std::optional<std::chrono::nanoseconds> parse_timeout_header(std::string_view v) noexcept;
/// Whether the timeout header (when the request has one) reads as a duration.
inline bool valid_timeout_header(std::optional<std::string_view> v) noexcept {
    return !v || parse_timeout_header(*v).has_value();
}

}  // namespace weft::http::detail
