// Small pieces of the public types: how sources and errors read, the names of the enums, and
// parsing and printing of listen addresses.
#include "weft/config/config.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "weft/config/error.hpp"

namespace weft::config {

std::string Source::to_string() const {
    switch (kind) {
        case Kind::built_in:
            return "built-in default";
        case Kind::embedded_default:
            return "embedded " + where;
        case Kind::file:
            return where;
        case Kind::environment:
            return "environment " + where;
        case Kind::flag:
            return "flag " + where;
    }
    return where;
}

std::string ConfigError::to_string() const {
    std::string s;
    if (!key.empty()) s += key + ": ";
    s += message;
    if (!value.empty()) s += ", got " + value;
    s += " (" + source.to_string() + ")";
    return s;
}

std::optional<ListenAddress> ListenAddress::parse(std::string_view text, std::string* why) {
    auto fail = [&](std::string reason) -> std::optional<ListenAddress> {
        if (why) *why = std::move(reason);
        return std::nullopt;
    };
    ListenAddress a;
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return fail("missing ']' after the IPv6 address");
        host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') return fail("missing ':PORT' after ']'");
        port = rest.substr(1);
        const std::string h(host);
        in6_addr tmp{};
        if (inet_pton(AF_INET6, h.c_str(), &tmp) != 1) return fail("not an IPv6 address");
        a.family = Family::ipv6;
        a.host = h;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return fail("missing ':PORT'");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return fail("an IPv6 address needs brackets");
        }
        if (host.empty() || host == "*") {
            a.family = Family::any;
        } else {
            const std::string h(host);
            in_addr tmp{};
            if (inet_pton(AF_INET, h.c_str(), &tmp) != 1) {
                return fail("not a numeric IPv4 address (host names are not resolved)");
            }
            a.family = Family::ipv4;
            a.host = h;
        }
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || end != port.data() + port.size() || ec != std::errc() || value > 65535) {
        return fail("the port must be a number 0..65535");
    }
    a.port = static_cast<std::uint16_t>(value);
    return a;
}

std::string ListenAddress::to_string() const {
    const std::string p = std::to_string(port);
    switch (family) {
        case Family::any:
            return "*:" + p;
        case Family::ipv4:
            return host + ":" + p;
        case Family::ipv6:
            return "[" + host + "]:" + p;
    }
    return {};
}

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::trace:
            return "trace";
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
        case LogLevel::critical:
            return "critical";
        case LogLevel::off:
            return "off";
    }
    return "?";
}

std::string_view to_string(LogFormat format) noexcept {
    switch (format) {
        case LogFormat::text:
            return "text";
        case LogFormat::json:
            return "json";
    }
    return "?";
}

std::string AccessLog::to_string() const {
    switch (kind) {
        case Kind::off:
            return "off";
        case Kind::to_stdout:
            return "stdout";
        case Kind::to_stderr:
            return "stderr";
        case Kind::to_file:
            return path;
    }
    return {};
}

}  // namespace weft::config
