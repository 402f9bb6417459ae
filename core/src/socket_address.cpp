// SocketAddress parsing and printing.
#include "weft/core/socket_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace weft {

SocketAddress::SocketAddress() noexcept : storage_{}, len_(0) {}

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) noexcept : storage_{}, len_(0) {
    if (sa && len <= sizeof storage_) {
        std::memcpy(&storage_, sa, len);
        len_ = len;
    }
}

Result<SocketAddress> SocketAddress::from_ip(std::string_view ip, std::uint16_t port) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (ip.size() >= sizeof buf) return Errc::invalid_argument;
    std::memcpy(buf, ip.data(), ip.size());
    buf[ip.size()] = '\0';
    SocketAddress a;
    sockaddr_in v4{};
    if (::inet_pton(AF_INET, buf, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        return SocketAddress(reinterpret_cast<sockaddr*>(&v4), sizeof v4);
    }
    sockaddr_in6 v6{};
    if (::inet_pton(AF_INET6, buf, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        return SocketAddress(reinterpret_cast<sockaddr*>(&v6), sizeof v6);
    }
    return Errc::invalid_argument;
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return Errc::invalid_argument;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return Errc::invalid_argument;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return Errc::invalid_argument;  // bare IPv6
    }
    if (port.empty() || port.size() > 5) return Errc::invalid_argument;
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p > 65535)
        return Errc::invalid_argument;
    if (host.empty() || host == "*") host = "0.0.0.0";
    return from_ip(host, static_cast<std::uint16_t>(p));
}

std::uint16_t SocketAddress::port() const noexcept {
    if (family() == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
    if (family() == AF_INET)
        reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
    else if (family() == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

bool SocketAddress::is_loopback() const noexcept {
    if (family() == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr) >> 24) ==
               127;
    if (family() == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
        // ::ffff:127.x.y.z is IPv4's loopback seen through an IPv6 socket.
        return IN6_IS_ADDR_LOOPBACK(&a) || (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127);
    }
    return false;
}

std::size_t SocketAddress::format(char* buf, std::size_t size) const noexcept {
    if (size == 0) return 0;
    char ip[INET6_ADDRSTRLEN] = "?";
    int n;
    if (family() == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, ip,
                    sizeof ip);
        n = std::snprintf(buf, size, "%s:%u", ip, port());
    } else if (family() == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, ip,
                    sizeof ip);
        n = std::snprintf(buf, size, "[%s]:%u", ip, port());
    } else {
        n = std::snprintf(buf, size, "(unbound)");
    }
    if (n < 0) return 0;
    return static_cast<std::size_t>(n) < size ? static_cast<std::size_t>(n) : size - 1;
}

std::string SocketAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN + 16];
    std::size_t n = format(buf, sizeof buf);
    return std::string(buf, n);
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
    return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

}  // namespace weft
