// The demo routes (weft/http/demo_routes.hpp) served on every hub.
// Usage: weft_http_demo [ADDR:PORT]   (default 127.0.0.1:8080; port 0 picks a free one)
// Prints "listening on ADDR:PORT" once ready; SIGINT/SIGTERM drain (10 s at most), then exit.
#include <csignal>
#include <cstdio>
#include <string>

#include "demo_routes.hpp"
#include "weft/core/log.hpp"
#include "weft/core/weft.hpp"
#include "weft/http/http.hpp"

int main(int argc, char** argv) {
    std::string where = argc > 1 ? argv[1] : "127.0.0.1:8080";
    auto addr = weft::SocketAddress::parse(where);
    if (!addr) {
        std::fprintf(stderr, "weft_http_demo: '%s' is not ADDR:PORT (e.g. 127.0.0.1:8080)\n",
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
    weft::http::Router router;
    weft::demo::register_demo_routes(router);
    weft::http::Server server(rt, router);
    auto bound = server.listen(*addr);
    if (!bound) {
        std::fprintf(stderr, "weft_http_demo: cannot listen on %s: %s\n", where.c_str(),
                     bound.error().message().c_str());
        return 1;
    }
    std::printf("listening on %s\n", bound->to_string().c_str());
    std::fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    weft::logger()->info("signal {}: draining", sig);
    server.drain();
    if (!server.wait(std::chrono::seconds(10))) {
        server.stop();
        server.wait();
    }
    return 0;
}
