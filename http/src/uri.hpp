// Percent-decoding for paths and queries (RFC 3986), appending to a caller's buffer.
#pragma once

#include <string>
#include <string_view>

namespace weft::http::detail {

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
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

}  // namespace weft::http::detail
