// HTTP request methods: the ones Weft knows by name, and their OpenTelemetry normalization
// (metrics label a method outside the known set as "_OTHER", so a client cannot grow them).
#pragma once

#include <cstdint>
#include <string_view>

namespace weft::http {

enum class Method : std::uint8_t {
    get = 0,
    head,
    post,
    put,
    delete_,
    connect,
    options,
    trace,
    patch,
    other,  ///< any other token (PROPFIND, PURGE...); Request::method_name() has the text
};

inline constexpr int kMethodCount = 10;

/// Parses a method token (case-sensitive, as HTTP defines it): "GET" -> Method::get; any other
/// token -> Method::other.
Method parse_method(std::string_view token) noexcept;

/// "GET", "HEAD", ... for the known methods; "_OTHER" for Method::other (OpenTelemetry's
/// http.request.method normalization).
std::string_view method_label(Method m) noexcept;

}  // namespace weft::http
