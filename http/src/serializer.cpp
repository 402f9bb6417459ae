// Response serialization helpers.
#include "serializer.hpp"

#include <charconv>
#include <cstring>

#include "weft/http/response.hpp"

namespace weft::http::detail {

void DateCache::format(std::time_t now) noexcept {
    static constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&now, &tm);
    char* p = buf_ + prefix_len_;
    auto put = [&](const char* s, std::size_t n) {
        std::memcpy(p, s, n);
        p += n;
    };
    auto two = [&](int v) {
        *p++ = static_cast<char>('0' + v / 10);
        *p++ = static_cast<char>('0' + v % 10);
    };
    put("Date: ", 6);
    put(kDays[tm.tm_wday % 7], 3);
    put(", ", 2);
    two(tm.tm_mday);
    *p++ = ' ';
    put(kMonths[tm.tm_mon % 12], 3);
    *p++ = ' ';
    int year = tm.tm_year + 1900;
    two(year / 100 % 100);
    two(year % 100);
    *p++ = ' ';
    two(tm.tm_hour);
    *p++ = ':';
    two(tm.tm_min);
    *p++ = ':';
    two(tm.tm_sec);
    put(" GMT\r\n", 6);
    len_ = static_cast<std::size_t>(p - buf_);
    sec_ = now;
}

// Digits go straight into the buffer: no copy of a few bytes through a library call.
void append_decimal(ByteBuffer& out, std::uint64_t v) {
    char* p = out.tail(20);  // 2^64 has 20 digits
    out.commit(static_cast<std::size_t>(std::to_chars(p, p + 20, v).ptr - p));
}

void append_hex(ByteBuffer& out, std::uint64_t v) {
    char* p = out.tail(16);
    out.commit(static_cast<std::size_t>(std::to_chars(p, p + 16, v, 16).ptr - p));
}

}  // namespace weft::http::detail
