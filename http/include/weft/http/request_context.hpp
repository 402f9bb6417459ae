// The request a fiber serves, for code that was not handed the Request: a library call deep in
// a handler, or a fiber the handler spawned (they inherit it, through a FiberLocal).
#pragma once

#include <string_view>

#include "weft/core/deadline.hpp"

namespace weft::http {

/// What the server says about the request being served. The views are valid while the handler
/// runs; once it has returned, current_request() gives nullptr even in fibers it spawned.
struct RequestContext {
    std::string_view method;
    std::string_view path;   ///< as received, not decoded
    std::string_view route;  ///< the matched template, "/users/{id}"
    std::string_view peer;   ///< "1.2.3.4:5678"
    /// The request's deadline (server.request_timeout, a route's own, tightened by the
    /// client's timeout header when the server accepts one); never when there is none.
    Deadline deadline;
};

/// The request the calling fiber serves (its handler's fiber, or a fiber spawned from it while
/// the handler runs), or nullptr.
const RequestContext* current_request() noexcept;

}  // namespace weft::http
