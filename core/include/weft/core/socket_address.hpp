// SocketAddress: an IPv4 or IPv6 address with a port, parsed from and printed as
// "127.0.0.1:8080" / "[::1]:8080".
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "weft/core/result.hpp"

namespace weft {

class SocketAddress {
  public:
    SocketAddress() noexcept;
    SocketAddress(const sockaddr* sa, socklen_t len) noexcept;

    /// Parses "1.2.3.4:80", "[::1]:80", "*:80" or ":80" (any IPv4 address). Numeric only.
    /// Errc::invalid_argument when malformed or the port is not 0..65535.
    static Result<SocketAddress> parse(std::string_view text);
    /// Address without a port ("::1", "1.2.3.4") plus a port.
    static Result<SocketAddress> from_ip(std::string_view ip, std::uint16_t port);

    int family() const noexcept { return storage_.ss_family; }
    std::uint16_t port() const noexcept;
    void set_port(std::uint16_t port) noexcept;
    bool is_loopback() const noexcept;
    /// "1.2.3.4:80" or "[::1]:80".
    std::string to_string() const;
    /// Writes to_string() into buf (NUL-terminated, truncated); returns the length.
    std::size_t format(char* buf, std::size_t size) const noexcept;

    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return len_; }
    socklen_t* size_ptr() noexcept { return &len_; }
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

    friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

  private:
    sockaddr_storage storage_;
    socklen_t len_;
};

}  // namespace weft
