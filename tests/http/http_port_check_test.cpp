// Only the server's own listeners share its port: a probe refuses an address that another
// SO_REUSEPORT listener holds, and the kernel's list of listeners names the ones that are not
// ours (what catches a second server that passed the probe at the same instant).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "port_check.hpp"
#include "weft/core/runtime.hpp"
#include "weft/http/http.hpp"

using weft::SocketAddress;
using namespace weft::http::detail;

namespace {

/// A listening socket of this process with SO_REUSEPORT on 127.0.0.1:port (0: a free port).
struct ReusePortListener {
    explicit ReusePortListener(std::uint16_t port) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 8) == 0;
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        this->port = ntohs(a.sin_port);
    }
    ~ReusePortListener() { ::close(fd); }
    SocketAddress address() const {
        return *SocketAddress::parse("127.0.0.1:" + std::to_string(port));
    }
    int fd = -1;
    bool ok = false;
    std::uint16_t port = 0;
};

}  // namespace

TEST(HttpPortCheck, ProbeRefusesAnAddressAReusePortListenerHolds) {
    ReusePortListener other(0);
    ASSERT_TRUE(other.ok);
    auto r = probe_address(other.address());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, weft::Errc::address_in_use);
    ReusePortListener free_port(0);
    const SocketAddress addr = free_port.address();
    ::close(free_port.fd);
    free_port.fd = -1;
    EXPECT_TRUE(probe_address(addr)) << "a free address passes";
}

TEST(HttpPortCheck, OtherListenersAreTheOnesThatAreNotOurs) {
    ReusePortListener a(0);
    ASSERT_TRUE(a.ok);
    ReusePortListener b(a.port);  // joins a's port, as a second server's listener would
    ASSERT_TRUE(b.ok);
    const std::uint64_t ia = socket_inode(a.fd), ib = socket_inode(b.fd);
    ASSERT_NE(ia, 0u);
    EXPECT_EQ(other_listeners(a.address(), {ia}), std::vector<std::uint64_t>{ib});
    EXPECT_TRUE(other_listeners(a.address(), {ia, ib}).empty());
    // The wildcard address overlaps every address of the port.
    EXPECT_EQ(other_listeners(*SocketAddress::parse("0.0.0.0:" + std::to_string(a.port)), {ib}),
              std::vector<std::uint64_t>{ia});
    // Another port is another matter.
    ReusePortListener c(0);
    EXPECT_TRUE(other_listeners(c.address(), {socket_inode(c.fd)}).empty());
    // This process is never named as the holder.
    EXPECT_EQ(holders_of({ib}), "");
}

// The server: an address held by another SO_REUSEPORT listener (of this process here, of
// another weft in the issue) is refused instead of shared.
TEST(HttpPortCheck, ServerRefusesToShareItsPort) {
    ReusePortListener other(0);
    ASSERT_TRUE(other.ok);
    weft::RuntimeOptions ro;
    ro.hubs = 2;
    weft::Runtime rt(ro);
    weft::http::Router router;
    weft::http::Server server(rt, router);
    auto r = server.listen(other.address());
    ASSERT_FALSE(r) << "joined another listener's port";
    EXPECT_EQ(r.error().code, weft::Errc::address_in_use);
    EXPECT_EQ(server.connections(), 0u);
}
