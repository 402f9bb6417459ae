// Is a listen address ours alone? The hubs' listeners share their port with SO_REUSEPORT, which
// lets any socket of the same user join them (a second weft started by mistake would take part
// of the traffic). These checks keep other processes out, and name them when they are in the way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/core/result.hpp"
#include "weft/core/socket_address.hpp"

namespace weft::http::detail {

/// Errc::address_in_use when anything holds `addr`: a socket bound without SO_REUSEPORT
/// conflicts with another process's SO_REUSEPORT listener, where ours would join it.
Result<void> probe_address(const SocketAddress& addr);

/// The inode of a socket descriptor (0 when fstat fails).
std::uint64_t socket_inode(int fd) noexcept;

/// The listening TCP sockets on `addr`'s port whose address overlaps `addr` (the same address,
/// or either one a wildcard) and whose inode is not in `ours`, from /proc/net/tcp and tcp6.
std::vector<std::uint64_t> other_listeners(const SocketAddress& addr,
                                           const std::vector<std::uint64_t>& ours);

/// "pid 1234 (weft)" for every process that holds one of `inodes` and that this process may
/// look into, joined with ", "; empty when the kernel does not say.
std::string holders_of(const std::vector<std::uint64_t>& inodes);

}  // namespace weft::http::detail
