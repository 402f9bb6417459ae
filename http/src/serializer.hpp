// Response bytes: the status line, the cached Date header, and number formatting, appended to a
// batch buffer.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace weft::http::detail {

/// "Date: <IMF-fixdate>\r\n", re-formatted when the wall-clock second changes. One per hub
/// (not thread-safe).
class DateCache {
  public:
    std::string_view line() noexcept {
        std::time_t now = std::time(nullptr);
        if (now != sec_) format(now);
        return {buf_, len_};
    }

  private:
    void format(std::time_t now) noexcept;
    std::time_t sec_ = -1;
    char buf_[48];
    std::size_t len_ = 0;
};

/// "HTTP/1.1 404 Not Found\r\n"
void append_status_line(std::string& out, int status);
void append_decimal(std::string& out, std::uint64_t v);
void append_hex(std::string& out, std::uint64_t v);

}  // namespace weft::http::detail
