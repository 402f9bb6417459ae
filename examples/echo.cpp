// A TCP echo server: one SO_REUSEPORT listener per hub, one fiber per connection.
// Usage: weft_echo [ADDR:PORT]   (default 127.0.0.1:7000)
#include <csignal>
#include <cstdio>
#include <string>

#include "weft/core/log.hpp"
#include "weft/core/weft.hpp"

int main(int argc, char** argv) {
    std::string where = argc > 1 ? argv[1] : "127.0.0.1:7000";
    auto addr = weft::SocketAddress::parse(where);
    if (!addr) {
        std::fprintf(stderr, "weft_echo: '%s' is not ADDR:PORT (e.g. 127.0.0.1:7000)\n",
                     where.c_str());
        return 2;
    }
    // Block the stop signals before any thread starts, so only sigwait() below sees them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    weft::Runtime rt;
    for (unsigned i = 0; i < rt.hub_count(); ++i) {
        rt.hub(i).post([a = *addr, i] {
            weft::spawn("listener", [a, i] {
                auto l = weft::TcpListener::bind(a, {.reuse_port = true});
                if (!l) {
                    weft::logger()->error("hub {}: cannot listen on {}: {}", i, a.to_string(),
                                          l.error().message());
                    return;
                }
                if (i == 0) weft::logger()->info("echoing on {}", a.to_string());
                for (;;) {
                    auto s = l->accept();
                    if (!s) {
                        if (s.error() == weft::Errc::cancelled || s.error() == weft::Errc::closed)
                            return;
                        (void)weft::sleep_for(std::chrono::milliseconds(10));  // EMFILE: back off
                        continue;
                    }
                    weft::spawn("echo", [s = std::move(*s)]() mutable {
                        char buf[4096];
                        for (;;) {
                            auto n = s.recv(buf);
                            if (!n || *n == 0) return;
                            if (!s.send(std::string_view(buf, *n))) return;
                        }
                    }).detach();
                }
            }).detach();
        });
    }
    int sig = 0;
    sigwait(&set, &sig);
    weft::logger()->info("signal {}: stopping", sig);
    return 0;
}
