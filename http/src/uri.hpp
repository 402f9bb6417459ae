// URI pieces (RFC 3986): percent-decoding for paths and queries, appending to a caller's buffer,
// and the syntax check of a Host field's value; and the trimming of a field value's whitespace.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace weft::http::detail {

/// `s` without the spaces and tabs around it (a field value's optional whitespace, RFC 9110 5.6.3).
inline std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

/// RFC 3986 5.2.4: "." and ".." segments of a path resolved away ("/a/b/../c" is "/a/c").
inline std::string remove_dot_segments(std::string_view in) {
    std::string out;
    while (!in.empty()) {
        if (in.starts_with("../")) {
            in.remove_prefix(3);
        } else if (in.starts_with("./")) {
            in.remove_prefix(2);
        } else if (in.starts_with("/./")) {
            in.remove_prefix(2);
        } else if (in == "/.") {
            in = "/";
        } else if (in.starts_with("/../") || in == "/..") {
            in = in.size() == 3 ? std::string_view("/") : in.substr(3);
            const auto slash = out.rfind('/');
            out.erase(slash == std::string::npos ? 0 : slash);
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            const auto next = in.find('/', in.front() == '/' ? 1 : 0);
            out.append(in.substr(0, next));
            in = next == std::string_view::npos ? std::string_view() : in.substr(next);
        }
    }
    return out;
}

/// What a request's path is, for the checks before routing.
enum class PathForm : unsigned char {
    plain,         ///< route it as it is
    dot_segments,  ///< a "." or ".." segment, its dots written as they are or as %2E (the same
                   ///< character, RFC 3986 6.2.2.2)
    bad_escape,    ///< a '%' not followed by two hex digits (RFC 3986 2.1): not a URI path
    /// A "." or ".." segment once a %2F is taken for the '/' it decodes to ("/a/..%2Fb"):
    /// a route parameter would take "../b" decoded. (Go's ServeMux and nginx resolve the
    /// decoded path; no redirect can keep the other %2F as they are.)
    encoded_dot_segments,
};

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline PathForm path_form(std::string_view path) noexcept {
    // The common case first, as one plain loop (find_first_of would call memchr per byte).
    bool dot = false;
    bool percent = false;
    for (const char c : path) {
        dot |= c == '.';
        percent |= c == '%';
    }
    if (!dot && !percent) return PathForm::plain;
    for (std::size_t i = 0; i < path.size() && percent; ++i)
        if (path[i] == '%' &&
            (path.size() - i < 3 || hex_value(path[i + 1]) < 0 || hex_value(path[i + 2]) < 0))
            return PathForm::bad_escape;
    // Segments end at '/', and also at %2F when `encoded_slash`. (Every '%' is followed by two
    // hex digits by now: path[i + 2] is there to read.)
    auto dotted = [path](bool encoded_slash) noexcept {
        std::size_t dots = 0;
        bool only_dots = true;
        for (std::size_t i = 0; i <= path.size(); ++i) {
            const bool escape = i < path.size() && path[i] == '%' && path[i + 1] == '2';
            if (i == path.size() || path[i] == '/' ||
                (encoded_slash && escape && (path[i + 2] == 'f' || path[i + 2] == 'F'))) {
                if (only_dots && (dots == 1 || dots == 2)) return true;
                dots = 0;
                only_dots = true;
                if (i < path.size() && path[i] == '%') i += 2;
            } else if (path[i] == '.') {
                ++dots;
            } else if (escape && (path[i + 2] == 'e' || path[i + 2] == 'E')) {
                ++dots;
                i += 2;
            } else {
                only_dots = false;
            }
        }
        return false;
    };
    if (dotted(false)) return PathForm::dot_segments;
    if (percent && dotted(true)) return PathForm::encoded_dot_segments;
    return PathForm::plain;
}

/// `path` (one without '\\': see the caller) with its "." and ".." segments resolved away,
/// %2E taken as the dot it is, and one '/' where it began with several: as a Location,
/// "//host/x" would send a browser to another host. One pass, linear in the path.
inline std::string without_dot_segments(std::string_view path) {
    std::string dots = "/";
    dots.reserve(path.size() + 1);
    const std::size_t first = path.find_first_not_of('/');
    path.remove_prefix(first == std::string_view::npos ? path.size() : first);
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '%' && path.size() - i >= 3 && path[i + 1] == '2' &&
            (path[i + 2] == 'e' || path[i + 2] == 'E')) {
            dots.push_back('.');
            i += 2;
        } else {
            dots.push_back(path[i]);
        }
    }
    std::string out = remove_dot_segments(dots);
    // Resolving may leave a run of slashes in front ("/a/..//x"): one.
    const std::size_t lead = out.find_first_not_of('/');
    if (lead == std::string::npos) return "/";
    if (lead == 1) return out;
    return "/" + out.substr(lead);
}

/// Appends `in` decoded to `out` ('+' becomes a space when `plus_is_space`). Returns false at an
/// invalid escape ('%' not followed by two hex digits); `out` then holds a partial result.
inline bool percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
            int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
            if (hi < 0 || lo < 0) return false;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

/// Whether `v` is a valid Host field value: uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986
/// §3.2.2), where uri-host is an IP literal in brackets or a reg-name of unreserved characters,
/// sub-delims and %XX escapes. Empty is valid (a target without an authority).
// unreserved and sub-delims, as a table: every request's Host goes through valid_host(). (At
// namespace scope and static: a function's static would be reached through the GOT.)
static constexpr auto kHostPlain = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (char c : std::string_view("-._~!$&'()*+,;="))
        t[static_cast<unsigned char>(c)] = true;
    return t;
}();

inline bool valid_host(std::string_view v) noexcept {
    auto plain = [](char c) noexcept { return kHostPlain[static_cast<unsigned char>(c)]; };
    std::string_view port;
    if (!v.empty() && v.front() == '[') {
        std::size_t close = v.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        // IPv6address or IPvFuture: hex digits, dots, colons and the reg-name characters.
        for (char c : v.substr(1, close - 1))
            if (!plain(c) && c != ':') return false;
        std::string_view rest = v.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
        }
    } else {
        // reg-name or IPv4address, then ":" port; one pass (a Host is short: a library call
        // to find the colon costs more than the scan).
        std::size_t i = 0;
        for (; i < v.size(); ++i) {
            const char c = v[i];
            if (plain(c)) continue;
            if (c == ':') break;
            if (c != '%' || i + 2 >= v.size() || hex_value(v[i + 1]) < 0 || hex_value(v[i + 2]) < 0)
                return false;
            i += 2;
        }
        if (i < v.size()) port = v.substr(i + 1);
    }
    for (char c : port)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace weft::http::detail
