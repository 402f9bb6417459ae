// Test plumbing for the exposition tests: a minimal /metrics endpoint served by a fiber with the
// core TCP API (the real admin listener is the server's), a blocking HTTP/1.0 GET for the test
// thread, free loopback ports, and a child process that is always ended by its PID.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "weft/core/weft.hpp"
#include "weft/monitor/exposition.hpp"

namespace weft::monitor::test {

/// Serves GET /metrics from `registry` on 127.0.0.1 (a free port) on hub 0 of `rt`.
class MetricsEndpoint {
  public:
    MetricsEndpoint(Runtime& rt, const Registry& registry) : registry_(registry) {
        std::atomic<int> port{-1};
        rt.hub(0).post([this, &port] {
            spawn("metrics-listener", [this, &port] {
                auto addr = SocketAddress::parse("127.0.0.1:0");
                auto l = TcpListener::bind(*addr);
                if (!l) {
                    port = 0;
                    return;
                }
                port = l->local_address()->port();
                while (!stop_) {
                    auto s = l->accept(std::chrono::milliseconds(100));
                    if (!s) continue;
                    spawn("metrics-conn", [this, s = std::move(*s)]() mutable {
                        serve(s);
                    }).detach();
                }
            }).detach();
        });
        while (port.load() < 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        port_ = port.load();
    }
    ~MetricsEndpoint() {
        stop_ = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
    int port() const { return port_; }
    int openmetrics_scrapes() const { return om_.load(); }
    int text_scrapes() const { return text_.load(); }

  private:
    void serve(TcpStream& s) {
        std::string req;
        char buf[4096];
        while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
            auto n = s.recv(buf, std::chrono::seconds(5));
            if (!n || *n == 0) return;
            req.append(buf, *n);
        }
        std::string accept;
        std::string lower = req;
        for (char& c : lower)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (auto at = lower.find("\r\naccept:"); at != std::string::npos) {
            auto start = at + 9;
            auto end = req.find("\r\n", start);
            accept = req.substr(start, end - start);
        }
        Scrape sc = scrape(registry_, accept);
        if (negotiate_format(accept) == ExpositionFormat::openmetrics)
            ++om_;
        else
            ++text_;
        std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: " + sc.content_type +
                           "\r\nContent-Length: " + std::to_string(sc.body.size()) +
                           "\r\nConnection: close\r\n\r\n" + sc.body;
        (void)s.send(resp, std::chrono::seconds(5));
    }

    const Registry& registry_;
    std::atomic<bool> stop_{false};
    std::atomic<int> om_{0};
    std::atomic<int> text_{0};
    int port_ = 0;
};

struct HttpResult {
    int status = 0;
    std::string body;
};

/// GET http://127.0.0.1:<port><path> (HTTP/1.0, so the body ends at close); status 0 on error.
inline HttpResult http_get(int port, const std::string& path) {
    HttpResult r;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return r;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return r;
    }
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return r;
    }
    std::string resp;
    char buf[8192];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
        resp.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    auto sp = resp.find(' ');
    auto hdr_end = resp.find("\r\n\r\n");
    if (sp == std::string::npos || hdr_end == std::string::npos) return r;
    r.status = std::atoi(resp.c_str() + sp + 1);
    r.body = resp.substr(hdr_end + 4);
    return r;
}

/// A loopback port that was free a moment ago.
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// A child process started with execvp; ended (SIGTERM, then SIGKILL) by its PID when destroyed.
class ChildProcess {
  public:
    ChildProcess(std::vector<std::string> argv, const std::string& log_path) {
        pid_ = ::fork();
        if (pid_ == 0) {
            int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            std::vector<char*> args;
            for (auto& a : argv)
                args.push_back(a.data());
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    ~ChildProcess() { stop(); }
    pid_t pid() const { return pid_; }
    bool running() {
        if (pid_ <= 0) return false;
        int st;
        return ::waitpid(pid_, &st, WNOHANG) == 0;
    }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            int st;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid_, SIGKILL);
        int st;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
    }

  private:
    pid_t pid_ = -1;
};

}  // namespace weft::monitor::test
