// Text helpers every layer needs for untrusted bytes: UTF-8 validation, and quoting as a JSON or
// TOML string literal that always stays valid (log lines, admin JSON, rendered configuration).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weft {

/// Length (1..4) of the well-formed UTF-8 sequence that starts at s[i], storing its code point
/// in *code; 0 when the bytes there are not one (a stray continuation byte, a truncated or
/// overlong sequence, a surrogate, a code point above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t* code) noexcept;

/// True when all of `s` is well-formed UTF-8.
bool valid_utf8(std::string_view s) noexcept;

/// The longest header phrase valid_header_phrase accepts (the Server header's limit).
inline constexpr std::size_t kMaxHeaderPhraseBytes = 128;

/// True when `s` may go out verbatim as an HTTP header value made of product tokens and comments
/// (RFC 9110's Server and User-Agent): at most kMaxHeaderPhraseBytes characters of visible ASCII
/// and inner spaces, not starting or ending with a space. Empty is valid. Nothing in it can end or
/// forge a header.
bool valid_header_phrase(std::string_view s) noexcept;

/// `v` with '"', '\\' and every byte outside printable ASCII written as \xHH (nginx's way in
/// its access log): untrusted bytes that can neither end a quoted field, nor forge a line, nor
/// hide as control characters in a terminal. `v` itself when nothing needs escaping; else the
/// escaped text, in `buf`.
std::string_view escaped_ascii(std::string_view v, std::string& buf);

/// `s` as a JSON string literal: quoted, with '"', '\\' and control characters escaped; bytes
/// that are not well-formed UTF-8 become U+FFFD, so the result is valid JSON whatever `s` holds.
std::string json_quote(std::string_view s);

/// `s` as a TOML basic string: like json_quote, and DEL (U+007F) escaped as TOML requires.
std::string toml_quote(std::string_view s);

}  // namespace weft
