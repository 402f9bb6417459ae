// Request: one parsed HTTP/1.x request as a handler sees it. It owns copies of everything it
// shows (target, headers, body), so the connection's receive buffer is back in the hub's pool
// before the handler runs. Reused by the connection for later requests: keep no views past the
// handler's return.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/socket_address.hpp"
#include "weft/http/headers.hpp"
#include "weft/http/method.hpp"

namespace weft::http {

namespace detail {
struct RequestAccess;
}

/// A decoded name/value pair (route parameter or query parameter).
struct Param {
    std::string_view name;
    std::string_view value;
};

class Request {
  public:
    Request() = default;
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;

    Method method() const noexcept { return method_; }
    /// The method token as sent ("GET", "PROPFIND").
    std::string_view method_name() const noexcept { return method_name_; }
    /// The request-target exactly as sent ("/users/7?x=1").
    std::string_view target() const noexcept { return target_; }
    /// The path part of the target, not percent-decoded ("/users/7"); "*" for "OPTIONS *".
    std::string_view path() const noexcept { return path_; }
    /// The query part after '?', not decoded ("x=1"); empty when there is none.
    std::string_view raw_query() const noexcept { return raw_query_; }

    /// The first value of query parameter `name`, decoded ('+' is a space, %XX a byte; an
    /// invalid escape is kept as sent). Parsed on first use.
    std::optional<std::string_view> query(std::string_view name) const;
    /// Every query parameter, decoded, in order.
    std::span<const Param> query_params() const;

    /// Route parameter `name` of the matched template ("/users/{id}" -> "id"), percent-decoded.
    /// An encoded '/' comes decoded ("a%2Fb" -> "a/b"), but never as a "." or ".." segment:
    /// a path with one ("/users/..%2Fx") is answered 400 before routing, and a path with a plain
    /// dot segment is redirected to its resolved form.
    std::optional<std::string_view> param(std::string_view name) const noexcept;
    std::span<const Param> params() const noexcept { return params_; }
    /// The template of the route that matched ("/users/{id}"), "" when none did.
    std::string_view route() const noexcept { return route_; }

    const Headers& headers() const noexcept { return headers_; }
    std::optional<std::string_view> header(std::string_view name) const noexcept {
        return headers_.get(name);
    }

    /// The body, de-chunked when it came chunked.
    std::string_view body() const noexcept { return body_; }
    /// Moves the body out (the request then shows an empty one).
    std::string take_body() noexcept;

    int version_major() const noexcept { return major_; }
    int version_minor() const noexcept { return minor_; }
    /// Whether the client allows the connection to stay open after this request (HTTP/1.1
    /// without "Connection: close", or HTTP/1.0 with "Connection: keep-alive").
    bool keep_alive() const noexcept { return keep_alive_; }
    /// The client's address.
    const SocketAddress& peer() const noexcept { return *peer_; }

  private:
    friend struct detail::RequestAccess;
    void parse_query() const;

    // Parsed fields (views into arena_ or static strings).
    Method method_ = Method::get;
    std::string_view method_name_;
    std::string_view target_;
    std::string_view path_;
    std::string_view raw_query_;
    std::string_view route_;
    std::uint8_t major_ = 1;
    std::uint8_t minor_ = 1;
    bool keep_alive_ = true;
    const SocketAddress* peer_ = nullptr;
    Headers headers_;
    std::vector<Param> params_;

    // Owned storage; capacity is kept across reuse.
    std::string arena_;  ///< target, then header names and values
    std::string body_;
    std::string param_storage_;  ///< decoded route parameter values
    mutable std::string query_storage_;
    mutable std::vector<Param> query_;
    mutable bool query_parsed_ = false;
};

}  // namespace weft::http
