// Method names and their parsing.
#include "weft/http/method.hpp"

namespace weft::http {

namespace {
constexpr std::string_view kLabels[kMethodCount] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER"};
}

Method parse_method(std::string_view token) noexcept {
    for (int i = 0; i < kMethodCount - 1; ++i)
        if (kLabels[i] == token) return static_cast<Method>(i);
    return Method::other;
}

std::string_view method_label(Method m) noexcept {
    auto i = static_cast<unsigned>(m);
    return i < kMethodCount ? kLabels[i] : kLabels[kMethodCount - 1];
}

}  // namespace weft::http
