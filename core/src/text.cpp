#include "weft/core/text.hpp"

#include <algorithm>
#include <cstdio>

namespace weft {

std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t* code) noexcept {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        *code = b0;
        return 1;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    *code = cp;
    return len;
}

bool valid_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = utf8_sequence(s, i, &cp);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

bool valid_header_phrase(std::string_view s) noexcept {
    if (s.size() > kMaxHeaderPhraseBytes) return false;
    if (!s.empty() && (s.front() == ' ' || s.back() == ' ')) return false;
    for (char c : s)
        if (c < 0x20 || c >= 0x7F) return false;
    return true;
}

namespace {

void append_u_escape(std::string& out, std::uint32_t cp) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(cp));
    out += buf;
}

// The escaping JSON and TOML basic strings share; TOML also wants DEL escaped.
std::string quote(std::string_view s, bool escape_del) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = utf8_sequence(s, i, &cp);
        if (len == 0) {
            out += "\\uFFFD";
            ++i;
            continue;
        }
        switch (cp) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (cp < 0x20 || (escape_del && cp == 0x7F))
                    append_u_escape(out, cp);
                else
                    out.append(s.substr(i, len));
        }
        i += len;
    }
    out += '"';
    return out;
}

}  // namespace

std::string_view escaped_ascii(std::string_view v, std::string& buf) {
    auto plain = [](unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; };
    if (std::all_of(v.begin(), v.end(),
                    [&](char c) { return plain(static_cast<unsigned char>(c)); }))
        return v;
    static constexpr char kHex[] = "0123456789ABCDEF";
    buf.clear();
    for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if (plain(c)) {
            buf += ch;
        } else {
            buf += "\\x";
            buf += kHex[c >> 4];
            buf += kHex[c & 0xf];
        }
    }
    return buf;
}

std::string json_quote(std::string_view s) {
    return quote(s, false);
}

std::string toml_quote(std::string_view s) {
    return quote(s, true);
}

}  // namespace weft
