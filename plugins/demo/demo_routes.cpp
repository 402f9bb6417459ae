// The demo routes. /block and /spin hold the hub on purpose: they are what the watchdog
// is there to catch. /std_sleep is the same sleep as /block made through libc, which syscall
// patching turns into a cooperative one (gevent's time.sleep after patch_all()).
#include "demo_routes.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <string>
#include <thread>
#include <variant>

#include "weft/core/fiber.hpp"
#include "weft/core/offload.hpp"

namespace weft::demo {

using namespace weft::http;

namespace {

/// The `ms` query parameter, or the 400 response explaining what is wrong with it.
std::variant<std::chrono::milliseconds, Response> demo_ms(const Request& req) {
    auto v = req.query("ms");
    if (!v)
        return Response::text(
            "missing query parameter ms (milliseconds, 0.." + std::to_string(kDemoMaxMs) + ")\n",
            400);
    long n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < 0 || n > kDemoMaxMs)
        return Response::text("ms must be a whole number of milliseconds from 0 to " +
                                  std::to_string(kDemoMaxMs) + ", got '" + std::string(*v) + "'\n",
                              400);
    return std::chrono::milliseconds(n);
}

template <class F>
Handler with_ms(const char* verb, F act) {
    return [verb, act](Request& req) -> Response {
        auto ms = demo_ms(req);
        if (auto* bad = std::get_if<Response>(&ms)) return std::move(*bad);
        auto d = std::get<std::chrono::milliseconds>(ms);
        act(d);
        return Response::text(std::string(verb) + " " + std::to_string(d.count()) + " ms\n");
    };
}

// Sleeps with the nanosleep system call itself, not libc's function: a path that syscall
// patching cannot see, so it blocks the hub whatever the configuration.
void raw_sleep(std::chrono::milliseconds d) {
    timespec ts{static_cast<time_t>(d.count() / 1000),
                static_cast<long>(d.count() % 1000) * 1'000'000};
    while (::syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR) {
    }
}

}  // namespace

void register_demo_routes(Router& router) {
    router.get("/", [](Request&) { return Response(200, "Hello, World!", "text/plain"); });
    router.post("/echo", [](Request& req) {
        std::string type(req.header("Content-Type").value_or("application/octet-stream"));
        return Response(200, req.take_body(), type);
    });
    router.get("/sleep",
               with_ms("slept", [](std::chrono::milliseconds d) { (void)weft::sleep_for(d); }));
    router.get("/block", with_ms("blocked", [](std::chrono::milliseconds d) { raw_sleep(d); }));
    router.get("/std_sleep", with_ms("slept", [](std::chrono::milliseconds d) {
                   std::this_thread::sleep_for(d);  // cooperative when patching is on
               }));
    router.get("/spin", with_ms("spun", [](std::chrono::milliseconds d) {
                   auto until = std::chrono::steady_clock::now() + d;
                   volatile std::uint64_t n = 0;
                   while (std::chrono::steady_clock::now() < until)
                       n = n + 1;
               }));
    router.get("/offload", with_ms("offloaded", [](std::chrono::milliseconds d) {
                   weft::offload([d] { std::this_thread::sleep_for(d); });
               }));
}

}  // namespace weft::demo
