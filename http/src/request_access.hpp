// RequestAccess: the engine's way into a Request's private fields (parser glue and session),
// so the public type shows handlers only what they may use.
#pragma once

#include <string>
#include <string_view>

#include "weft/http/request.hpp"

namespace weft::http::detail {

struct RequestAccess {
    /// Clears everything for the next request; keeps the storage's capacity.
    static void reset(Request& r, const SocketAddress* peer) noexcept {
        r.method_ = Method::other;  // unknown until the request line is parsed
        r.method_name_ = {};
        // One by one: a chained assignment stores a view and reads it back at once (a stall).
        r.target_ = {};
        r.path_ = {};
        r.raw_query_ = {};
        r.route_ = {};
        r.major_ = 1;
        r.minor_ = 1;
        r.keep_alive_ = true;
        r.peer_ = peer;
        r.headers_.list_.clear();
        r.params_.clear();
        r.arena_.clear();
        r.body_.clear();
        r.param_storage_.clear();
        r.query_storage_.clear();
        r.query_.clear();
        r.query_parsed_ = false;
    }
    static std::string& arena(Request& r) noexcept { return r.arena_; }
    static std::string& body(Request& r) noexcept { return r.body_; }
    static std::string& param_storage(Request& r) noexcept { return r.param_storage_; }
    static std::vector<Param>& params(Request& r) noexcept { return r.params_; }
    static std::vector<Header>& headers(Request& r) noexcept { return r.headers_.list_; }
    static void set_method(Request& r, Method m, std::string_view name) noexcept {
        r.method_ = m;
        r.method_name_ = name;
    }
    static void set_target(Request& r, std::string_view target, std::string_view path,
                           std::string_view query) noexcept {
        r.target_ = target;
        r.path_ = path;
        r.raw_query_ = query;
    }
    static void set_version(Request& r, int major, int minor, bool keep_alive) noexcept {
        r.major_ = static_cast<std::uint8_t>(major);
        r.minor_ = static_cast<std::uint8_t>(minor);
        r.keep_alive_ = keep_alive;
    }
    static void set_keep_alive(Request& r, bool on) noexcept { r.keep_alive_ = on; }
    static void set_route(Request& r, std::string_view route) noexcept { r.route_ = route; }
    static void set_peer(Request& r, const SocketAddress* peer) noexcept { r.peer_ = peer; }
};

}  // namespace weft::http::detail
