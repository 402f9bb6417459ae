// The demo routes. /block and /spin hold the hub on purpose: they are what the watchdog
// is there to catch. /std_sleep is the same sleep as /block made through libc, which syscall
// patching turns into a cooperative one (gevent's time.sleep after patch_all()).
#include "demo_routes.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "weft/core/fiber.hpp"
#include "weft/core/fiber_group.hpp"
#include "weft/core/offload.hpp"
#include "weft/core/text.hpp"
#include "weft/http/client.hpp"

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
    if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < 0 ||
        n > kDemoMaxMs) {
        // The caller's bytes are shown escaped, and at most 64 of them: an answer never
        // carries control bytes (a NUL, an escape sequence for a terminal) it was sent.
        std::string buf;
        const std::string_view shown = weft::escaped_ascii(v->substr(0, 64), buf);
        return Response::text("ms must be a whole number of milliseconds from 0 to " +
                                  std::to_string(kDemoMaxMs) + ", got '" + std::string(shown) +
                                  (v->size() > 64 ? "...'\n" : "'\n"),
                              400);
    }
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

// A failed outbound call: 400 when the caller's url (or request) is none the client takes (the
// caller's mistake, not the upstream's), 504 when it ran out of time, 502 otherwise, with what
// happened.
Response upstream_error(const weft::http::ClientError& e) {
    if (e.code == weft::http::ClientErrc::bad_url ||
        e.code == weft::http::ClientErrc::bad_request) {
        std::string buf;  // the message holds the caller's url: shown escaped
        return Response::text(std::string(weft::escaped_ascii(e.message(), buf)) + "\n", 400);
    }
    const bool timeout = e.code == weft::http::ClientErrc::timed_out;
    return Response::text("upstream " + e.message() + "\n", timeout ? 504 : 502);
}

// Sleeps with the nanosleep system call itself, not libc's function: a path that syscall
// patching cannot see, so it blocks the hub whatever the configuration. Never inlined, so that
// reports and profiles name it as the culprit.
[[gnu::noinline]] void raw_sleep(std::chrono::milliseconds d) {
    timespec ts{static_cast<time_t>(d.count() / 1000),
                static_cast<long>(d.count() % 1000) * 1'000'000};
    while (::syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR) {
    }
}

// Burns CPU on the hub for `d` (a loop that never yields). Never inlined, as raw_sleep.
[[gnu::noinline]] void spin_on_cpu(std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    volatile std::uint64_t n = 0;
    while (std::chrono::steady_clock::now() < until)
        n = n + 1;
}

}  // namespace

void register_demo_routes(Router& router, bool hazardous) {
    router.get("/", [](Request&) { return Response(200, "Hello, World!", "text/plain"); });
    router.post("/echo", [](Request& req) {
        std::string type(req.header("Content-Type").value_or("application/octet-stream"));
        return Response(200, req.take_body(), type);
    });
    // A sleep cut short answers so: 504 when the request's deadline came first, 503 when the
    // server cancelled it (the drain's end). A handler that ignores the cut would answer a
    // success nobody receives.
    router.get("/sleep", [](Request& req) -> Response {
        auto ms = demo_ms(req);
        if (auto* bad = std::get_if<Response>(&ms)) return std::move(*bad);
        const auto d = std::get<std::chrono::milliseconds>(ms);
        if (auto r = weft::sleep_for(d); !r)
            return Response::text("sleep cut short: " + r.error().message() + "\n",
                                  r.error() == weft::Errc::timed_out ? 504 : 503);
        return Response::text("slept " + std::to_string(d.count()) + " ms\n");
    });
    // Every message back as it came (text as text, binary as binary); the subprotocol "echo"
    // is accepted when offered.
    weft::http::WebSocketOptions ws;
    ws.subprotocols = {"echo"};
    router.websocket(
        "/ws/echo",
        [](Request&, weft::http::WebSocket& socket) {
            while (auto m = socket.recv()) {
                auto sent = m->text ? socket.send_text(m->data) : socket.send_binary(m->data);
                if (!sent) break;
            }
        },
        ws);
    if (!hazardous) return;
    router.get("/block", with_ms("blocked", [](std::chrono::milliseconds d) { raw_sleep(d); }));
    router.get("/std_sleep", with_ms("slept", [](std::chrono::milliseconds d) {
                   std::this_thread::sleep_for(d);  // cooperative when patching is on
               }));
    router.get("/spin", with_ms("spun", [](std::chrono::milliseconds d) { spin_on_cpu(d); }));
    // Outbound calls through the shared client: one, and N at once in fibers joined within the
    // request's deadline.
    router.get("/fetch", [](Request& req) -> Response {
        auto url = req.query("url");
        if (!url) return Response::text("missing query parameter url\n", 400);
        auto r = weft::http::default_client().get(*url);
        if (!r) return upstream_error(r.error());
        return Response::text("status=" + std::to_string(r->status) +
                              " bytes=" + std::to_string(r->body.size()) + "\n");
    });
    router.get("/fanout", [](Request& req) -> Response {
        auto url = req.query("url");
        if (!url) return Response::text("missing query parameter url\n", 400);
        long n = 0;
        auto nv = req.query("n").value_or("");
        auto [end, ec] = std::from_chars(nv.data(), nv.data() + nv.size(), n);
        if (nv.empty() || ec != std::errc() || end != nv.data() + nv.size() || n < 1 || n > 100)
            return Response::text("n must be a whole number from 1 to 100\n", 400);
        struct Outcome {
            int status = 0;
            std::size_t bytes = 0;
            std::optional<weft::http::ClientError> error;
        };
        std::vector<Outcome> outcomes(static_cast<std::size_t>(n));
        const std::string target(*url);
        // The children write into `outcomes`: a group, so that none outlives this frame (when
        // the client hangs up, join() cancels them and waits for them before it throws).
        // Each body is streamed and counted, not held: n of them at once could hold n times
        // client.max_response_bytes otherwise.
        weft::FiberGroup group;
        for (long i = 0; i < n; ++i)
            group.spawn("fanout", [&, i] {
                Outcome& o = outcomes[static_cast<std::size_t>(i)];
                weft::http::ClientRequest req;
                req.url = target;
                auto st = weft::http::default_client().stream(req);
                if (!st) {
                    o.error = st.error();
                    return;
                }
                std::vector<char> buf(16 * 1024);  // on the heap: a fiber's stack is small
                std::size_t bytes = 0;
                for (;;) {
                    auto got = st->read(buf);
                    if (!got) {
                        o.error = got.error();
                        return;
                    }
                    if (*got == 0) break;
                    bytes += *got;
                }
                o.status = st->status();
                o.bytes = bytes;
            });
        // The fibers inherited the request's deadline: join() returns by then.
        group.join();
        std::size_t ok = 0, bytes = 0;
        const weft::http::ClientError* first_error = nullptr;
        for (const Outcome& o : outcomes) {
            ok += o.status >= 200 && o.status < 300;
            bytes += o.bytes;
            if (o.error && !first_error) first_error = &*o.error;
        }
        if (first_error && ok == 0) return upstream_error(*first_error);
        return Response::text("n=" + std::to_string(n) + " ok=" + std::to_string(ok) +
                              " bytes=" + std::to_string(bytes) + "\n");
    });
    router.get("/offload", with_ms("offloaded", [](std::chrono::milliseconds d) {
                   weft::offload([d] { std::this_thread::sleep_for(d); });
               }));
}

}  // namespace weft::demo
