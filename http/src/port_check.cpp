// The probe is one bind(); the listeners and their holders come from /proc/net/tcp{,6} (the
// "st" column 0A is LISTEN) and from the /proc/PID/fd links ("socket:[INODE]") that name them.
#include "port_check.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace weft::http::detail {

namespace {

// An address as /proc/net/tcp{,6} prints it: each 32-bit word of the address in host order.
std::string proc_hex(const SocketAddress& a) {
    char buf[40] = {};
    if (a.family() == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a.data());
        std::snprintf(buf, sizeof buf, "%08X", in->sin_addr.s_addr);
    } else if (a.family() == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.data());
        std::uint32_t w[4];
        std::copy_n(reinterpret_cast<const unsigned char*>(&in6->sin6_addr), sizeof w,
                    reinterpret_cast<unsigned char*>(w));
        std::snprintf(buf, sizeof buf, "%08X%08X%08X%08X", w[0], w[1], w[2], w[3]);
    }
    return buf;
}

bool wildcard(const std::string& hex) {
    return !hex.empty() && hex.find_first_not_of('0') == std::string::npos;
}

}  // namespace

Result<void> probe_address(const SocketAddress& addr) {
    const int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error::from_errno(errno);
    const int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as the listeners do
    if (addr.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    const int rc = ::bind(fd, addr.data(), addr.size());
    const int e = errno;
    ::close(fd);
    if (rc < 0) return Error::from_errno(e);
    return {};
}

std::uint64_t socket_inode(int fd) noexcept {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

std::vector<std::uint64_t> other_listeners(const SocketAddress& addr,
                                           const std::vector<std::uint64_t>& ours) {
    const std::string mine = proc_hex(addr);
    std::vector<std::uint64_t> out;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // the column titles
        while (std::getline(in, line)) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            std::istringstream f(line);
            std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
            std::uint64_t inode = 0;
            if (!(f >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >>
                  inode))
                continue;
            const auto colon = local.rfind(':');
            if (st != "0A" || colon == std::string::npos || inode == 0) continue;
            if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) != addr.port()) continue;
            const std::string theirs = local.substr(0, colon);
            if (theirs != mine && !wildcard(theirs) && !wildcard(mine)) continue;
            if (std::find(ours.begin(), ours.end(), inode) == ours.end()) out.push_back(inode);
        }
    }
    return out;
}

std::string holders_of(const std::vector<std::uint64_t>& inodes) {
    std::string out;
    if (inodes.empty()) return out;
    const std::string self = std::to_string(::getpid());
    DIR* proc = ::opendir("/proc");
    if (!proc) return out;
    while (const dirent* p = ::readdir(proc)) {
        const std::string pid = p->d_name;
        if (pid.find_first_not_of("0123456789") != std::string::npos || pid == self) continue;
        const std::string fd_dir = "/proc/" + pid + "/fd";
        DIR* fds = ::opendir(fd_dir.c_str());
        if (!fds) continue;  // another user's process
        bool holds = false;
        while (const dirent* f = ::readdir(fds)) {
            char target[PATH_MAX];
            const std::string link = fd_dir + "/" + f->d_name;
            const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
            if (n <= 9 || std::string_view(target, 8) != "socket:[") continue;
            const std::uint64_t ino = std::strtoull(target + 8, nullptr, 10);
            holds = std::find(inodes.begin(), inodes.end(), ino) != inodes.end();
            if (holds) break;
        }
        ::closedir(fds);
        if (!holds) continue;
        std::ifstream comm("/proc/" + pid + "/comm");
        std::string name;
        std::getline(comm, name);
        out += (out.empty() ? "pid " : ", pid ") + pid + " (" + name + ")";
    }
    ::closedir(proc);
    return out;
}

}  // namespace weft::http::detail
