// Router: method + path template -> handler. Templates are literal segments, `{name}` (one
// non-empty segment) and a trailing `{name...}` (the rest of the path, possibly empty):
// "/users/{id}", "/files/{path...}". A literal segment wins over `{name}`, which wins over
// `{name...}`. No route for the path: 404; routes for the path but not the method: 405 with an
// Allow header listing the methods of every route that matches the path. HEAD falls back to
// GET. A template has at most 16 parameters. Build the router before the server starts; it is
// read-only (and so safe to share between hubs) afterwards.
//
// The server routes no path with "." or ".." segments (also written %2E): such a request is
// redirected to the path it names (301, or 308 but for GET and HEAD) before any route sees it.
// Parameter values are percent-decoded and nothing more, so a value may still hold ".." from
// %2F-escaped slashes ("..%2Fsecret"), "/" (from %2F, or in a `{name...}`) or a NUL byte. A
// handler that turns one into a file name or a key checks it first.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/http/method.hpp"
#include "weft/http/request.hpp"
#include "weft/http/response.hpp"
#include "weft/http/response_stream.hpp"
#include "weft/http/websocket.hpp"

namespace weft::http {

/// An ordinary handler: straight-line code that may call any fiber-blocking API. An exception
/// becomes a 500 (logged with the route and the message); the connection lives on.
using Handler = std::function<Response(Request&)>;
/// A streaming handler: writes the body in pieces through the stream (see ResponseStream).
using StreamHandler = std::function<void(Request&, ResponseStream&)>;

/// What a route may set for itself.
struct RouteOptions {
    /// This route's request timeout instead of the server's request_timeout; zero: none.
    std::optional<std::chrono::nanoseconds> timeout;
};

/// One registered route.
struct Endpoint {
    std::string method;                ///< the method token, e.g. "GET"
    Method method_id = Method::other;  ///< parse_method(method)
    std::string route;                 ///< the template as registered, e.g. "/users/{id}"
    unsigned route_id = 0;             ///< 1.. per distinct template (0 means "no route")
    Handler handler;                   ///< set for ordinary routes
    StreamHandler stream;              ///< set for streaming routes
    WebSocketHandler websocket;        ///< set for WebSocket routes
    WebSocketOptions websocket_options;
    std::vector<std::string> param_names;  ///< in template order
    RouteOptions options;
    std::string owner;  ///< who registered it (a plugin's name), named in its error log lines
};

/// Route parameters captured by a match: names and raw (still percent-encoded) values.
struct RawParams {
    static constexpr std::size_t kMax = 16;
    Param items[kMax];
    std::size_t count = 0;
};

class Router {
  public:
    struct Match {
        const Endpoint* endpoint = nullptr;  ///< set when status == 200
        int status = 404;                    ///< 200, 404 or 405
        std::string allow;                   ///< for 405: "GET, HEAD, POST"
        std::string_view route;              ///< the matched template (also for 405)
        unsigned route_id = 0;
    };

    Router();
    ~Router();
    Router(Router&&) noexcept;
    Router& operator=(Router&&) noexcept;

    /// Registers `handler` for `method` (a token such as "GET") on `path_template`.
    /// Throws std::invalid_argument, naming the problem, for a malformed template (not starting
    /// with '/', a brace that does not close a whole segment, `{x...}` not last, a repeated
    /// parameter name) or a method+template already registered.
    Router& add(std::string_view method, std::string_view path_template, Handler handler,
                RouteOptions options = {});
    /// The same for a streaming handler.
    Router& add_stream(std::string_view method, std::string_view path_template,
                       StreamHandler handler, RouteOptions options = {});
    /// A WebSocket route (GET): the server answers the opening handshake (426 to a request
    /// that is not one, 400 to a malformed one), then runs `handler` (see websocket.hpp). No
    /// request deadline applies unless `route.timeout` sets one.
    Router& websocket(std::string_view path_template, WebSocketHandler handler,
                      WebSocketOptions options = {}, RouteOptions route = {});

    Router& get(std::string_view t, Handler h) { return add("GET", t, std::move(h)); }
    Router& post(std::string_view t, Handler h) { return add("POST", t, std::move(h)); }
    Router& put(std::string_view t, Handler h) { return add("PUT", t, std::move(h)); }
    Router& patch(std::string_view t, Handler h) { return add("PATCH", t, std::move(h)); }
    Router& del(std::string_view t, Handler h) { return add("DELETE", t, std::move(h)); }

    /// Routes added from now on are registered by `owner` (the server names the plugin whose
    /// init runs): the log line of a handler that throws names it. Empty: nobody in particular.
    void set_owner(std::string_view owner) { owner_ = owner; }

    /// Whether `method` + `path_template` is registered (templates compare by shape, so
    /// "/a/{x}" and "/a/{y}" are the same route).
    bool contains(std::string_view method, std::string_view path_template) const;
    /// The shape of a template, "/users/{}/files/{...}": two templates of one shape are the same
    /// route. Throws std::invalid_argument for a malformed template, as add() does.
    static std::string shape(std::string_view path_template);
    /// Every registered route, in registration order.
    std::vector<const Endpoint*> endpoints() const;

    /// Finds the route for `method_name` and a raw `path`; fills `params` with the captured
    /// raw segments. Thread-safe once no more routes are added.
    Match match(std::string_view method_name, std::string_view path, RawParams& params) const;
    /// The same for a request whose method is parsed already (`method` is
    /// parse_method(method_name)): a known method compares as a number.
    Match match(Method method, std::string_view method_name, std::string_view path,
                RawParams& params) const;

  private:
    struct Node;
    Router& insert(std::string_view method, std::string_view path_template, Handler handler,
                   StreamHandler stream, RouteOptions options, WebSocketHandler ws = nullptr,
                   WebSocketOptions ws_options = {});
    const Node* find_exact(std::string_view path) const noexcept;
    std::unique_ptr<Node> root_;
    std::vector<std::unique_ptr<Endpoint>> endpoints_;
    unsigned next_route_id_ = 1;
    std::string owner_;
    /// The nodes of templates without parameters, by path: an open-addressing table (a power
    /// of two in size, at most half full) that match() looks in before walking the tree.
    struct Exact {
        std::string path;
        const Node* node = nullptr;
    };
    std::vector<Exact> exact_;
    std::size_t exact_count_ = 0;
};

}  // namespace weft::http
