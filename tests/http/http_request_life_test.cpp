// The life of a request on the real server: its deadline (server.request_timeout, a route's own,
// a client's timeout header) bounds the handler's blocking calls and those of the fibers it
// spawns and answers 504 when it passes first; current_request() tells any code which request
// it serves; a client that hangs up while its handler waits cancels the handler. Raw-socket
// clients, both backends.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "http_test_util.hpp"
#include "request_life.hpp"
#include "weft/core/log.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/weft.hpp"
#include "weft/http/http.hpp"
#include "weft/http/request_context.hpp"

using namespace std::chrono_literals;
using namespace weft::http;
using weft::http::testing::eventually;
using weft::http::testing::ParsedResponse;
using weft::http::testing::RawClient;

namespace {

struct LifeServer {
    // What the handlers saw, for the test to check (written on the hub, read after a response
    // or a poll).
    std::atomic<int> wait_result{-1};  // Errc of the handler's sleep
    std::atomic<int> counted{0};       // runs of /count
    std::atomic<int> child_result{-1};
    std::atomic<bool> late_child_saw_request{true};
    std::atomic<bool> late_child_done{false};
    std::atomic<bool> left_child_done{false};
    std::atomic<int> stream_write_result{-1};  // Errc of /stream/late's write
    // /offload/owned's work, which runs on after its handler stopped waiting.
    std::shared_ptr<std::atomic<bool>> owned_work_done = std::make_shared<std::atomic<bool>>();
    std::string seen_route, child_route, left_child_saw;

    explicit LifeServer(ServerOptions o) {
        weft::RuntimeOptions ro;
        ro.hubs = 1;
        ro.name = "t";
        rt = std::make_unique<weft::Runtime>(ro);
        // Sleeps ?ms (default 5 s) with weft::sleep_for; says how the sleep ended.
        router.get("/wait", [this](Request& r) {
            const auto ms = std::stol(std::string(r.query("ms").value_or("5000")));
            auto res = weft::sleep_for(std::chrono::milliseconds(ms));
            wait_result = static_cast<int>(res ? weft::Errc::ok : res.error().code);
            return Response::text(res ? "slept\n" : "woken: " + res.error().message() + "\n");
        });
        // The same, reading the result's value: a timeout throws (ResultError, timed_out).
        router.get("/wait-value", [](Request&) {
            weft::sleep_for(5s).value();
            return Response::text("slept\n");
        });
        router.get("/throws", [](Request&) -> Response { throw std::runtime_error("a bug"); });
        router.get("/count", [this](Request&) {
            ++counted;
            return Response::text("counted\n");
        });
        // As a library whose call the deadline refused, without parking (the precise clock's
        // verdict), and which the handler passes on as its own error.
        router.get("/refused", [](Request&) {
            if (weft::this_fiber::deadline().passed())
                return Response::text("the library said: timed out\n", 502);
            return Response::text("in time\n");
        });
        // Computes past its deadline (no wait to end), then passes a library's verdict on.
        router.get("/refused-late", [](Request&) {
            const auto give_up = std::chrono::steady_clock::now() + 2s;
            while (!weft::this_fiber::deadline().passed() &&
                   std::chrono::steady_clock::now() < give_up) {
            }
            return Response::text("the library said: timed out\n", 502);
        });
        // The same with no deadline of its own (RouteOptions: zero timeout).
        router.add(
            "GET", "/patient",
            [](Request&) {
                auto res = weft::sleep_for(300ms);
                return Response::text(res ? "slept\n" : "woken\n");
            },
            RouteOptions{std::chrono::nanoseconds::zero()});
        // A child fiber inherits the deadline and the request; one that outlives the handler
        // no longer sees the request.
        router.get("/family/{id}", [this](Request&) {
            seen_route = std::string(current_request() ? current_request()->route : "none");
            auto child = weft::spawn("child", [this] {
                child_route = std::string(current_request() ? current_request()->route : "none");
                auto res = weft::sleep_for(5s);
                child_result = static_cast<int>(res ? weft::Errc::ok : res.error().code);
            });
            weft::spawn("late-child", [this] {
                // Past the handler's end (at its 200 ms deadline): no request any more.
                weft::ScopedDeadline lift(weft::Deadline::never(),
                                          weft::ScopedDeadline::Mode::replace);
                (void)weft::sleep_for(500ms);
                late_child_saw_request = current_request() != nullptr;
                late_child_done = true;
            }).detach();
            child.join();
            return Response::text("family\n");
        });
        // Leaves a fiber running that looks, 50 ms later, at which request it serves: by then
        // the connection's next request may be running.
        router.get("/leave-child", [this](Request&) {
            weft::spawn("left-child", [this] {
                (void)weft::sleep_for(50ms);
                const auto* c = current_request();
                left_child_saw = std::string(c ? c->route : "none");
                left_child_done = true;
            }).detach();
            return Response::text("left\n");
        });
        // Streaming routes: one that writes after sleeping past its deadline, one that writes
        // nothing, and one that writes before its deadline and then sleeps past it.
        router.add_stream("GET", "/stream/late", [this](Request&, ResponseStream& st) {
            (void)weft::sleep_for(2s);
            auto w = st.write("too late\n");
            stream_write_result = static_cast<int>(w ? weft::Errc::ok : w.error().code);
        });
        router.add_stream("GET", "/stream/silent",
                          [](Request&, ResponseStream&) { (void)weft::sleep_for(2s); });
        router.add_stream("GET", "/stream/started", [](Request&, ResponseStream& st) {
            (void)st.write("first\n");
            (void)weft::sleep_for(2s);
            (void)st.write("second\n");
        });
        // A pool thread's work the handler waits for (offload) and one it can leave at its
        // deadline (offload_owned), each sleeping ?ms (default 1.5 s) on that thread.
        router.get("/offload/{how}", [this](Request& r) {
            const auto d =
                std::chrono::milliseconds(std::stol(std::string(r.query("ms").value_or("1500"))));
            if (r.param("how") == "owned") {
                const int v = weft::offload_owned([d, done = owned_work_done] {
                    std::this_thread::sleep_for(d);
                    done->store(true);
                    return 7;
                });
                return Response::text("owned " + std::to_string(v) + "\n");
            }
            weft::offload([d] { std::this_thread::sleep_for(d); });
            return Response::text("held\n");
        });
        server = std::make_unique<Server>(*rt, router, std::move(o));
        port = server->listen(*weft::SocketAddress::parse("127.0.0.1:0"))->port();
    }
    ~LifeServer() {
        server.reset();
        rt.reset();
    }
    /// Requests of `route` recorded with `status` (the duration histogram's count).
    std::uint64_t recorded(std::string_view route, int status) const {
        std::uint64_t n = 0;
        server->metrics().for_each_series([&](const weft::http::RequestSeries& r) {
            if (r.route != route || r.status != status) return;
            for (const auto& b : r.duration->buckets)
                n += b.load();
        });
        return n;
    }
    std::uint64_t outcome(bool timed_out) const {
        std::uint64_t n = 0;
        server->metrics().for_each_outcome(
            [&](unsigned, std::uint64_t t, std::uint64_t a) { n += timed_out ? t : a; });
        return n;
    }

    std::unique_ptr<weft::Runtime> rt;
    Router router;
    std::unique_ptr<Server> server;
    std::uint16_t port = 0;
};

ParsedResponse ask(std::uint16_t port, const std::string& req) {
    RawClient c(port);
    EXPECT_TRUE(c.ok());
    c.send(req);
    auto rs = c.read_responses(1);
    return rs.empty() ? ParsedResponse{} : rs[0];
}

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST(RequestLife, TheDeadlineEndsTheHandlersWaitsAndAnswers504) {
    ServerOptions o;
    o.request_timeout = 150ms;
    LifeServer s(o);
    auto t0 = std::chrono::steady_clock::now();
    auto r = ask(s.port, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_LT(since(t0), 2.0);
    EXPECT_EQ(s.wait_result.load(), static_cast<int>(weft::Errc::timed_out));
    EXPECT_EQ(s.outcome(true), 1u);
    // Within its deadline a request is answered as usual.
    r = ask(s.port, "GET /wait?ms=10 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "slept\n");
    // A route with its own (no) timeout is not bound by the server's.
    r = ask(s.port, "GET /patient HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "slept\n");
    EXPECT_EQ(s.outcome(true), 1u);
}

// A handler that throws the timeout its deadline caused (it read a failed wait's value) gets
// the 504, and is no error in the log; one that throws for another reason still is.
TEST(RequestLife, ATimeoutThrownAtTheDeadlineIsNotLoggedAsAnError) {
    ServerOptions o;
    o.request_timeout = 150ms;
    LifeServer s(o);
    auto logger = weft::logger("http");
    const auto level = logger->level();
    logger->set_level(spdlog::level::debug);
    auto out = std::make_shared<std::ostringstream>();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out);
    sink->set_pattern("%l %v");
    logger->sinks().push_back(sink);
    auto r = ask(s.port, "GET /wait-value HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    auto thrown = ask(s.port, "GET /throws HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(thrown.status, 500);
    logger->flush();
    logger->sinks().pop_back();
    logger->set_level(level);
    const std::string log = out->str();
    EXPECT_NE(log.find("debug handler for GET /wait-value (route /wait-value) ended at its "
                       "deadline: timed out"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("error handler for GET /wait-value"), std::string::npos) << log;
    EXPECT_NE(log.find("error handler for GET /throws (route /throws) threw: a bug"),
              std::string::npos)
        << log;
}

// Work offloaded with offload_owned() does not hold the answer past the deadline: the handler
// stops waiting and the 504 goes out while the work runs on; plain offload() holds it.
TEST(RequestLife, OwnedOffloadedWorkIsLeftAtTheDeadline) {
    ServerOptions o;
    o.request_timeout = 150ms;
    LifeServer s(o);
    auto t0 = std::chrono::steady_clock::now();
    auto r = ask(s.port, "GET /offload/owned HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    // The work sleeps 1.5 s: an answer before its end is one that did not wait for it.
    EXPECT_LT(since(t0), 1.2);
    EXPECT_FALSE(s.owned_work_done->load());
    EXPECT_TRUE(eventually([&] { return s.owned_work_done->load(); }, 5s))
        << "the work left behind did not run to its end";
    // Within the deadline, its value comes back.
    r = ask(s.port, "GET /offload/owned?ms=10 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "owned 7\n");
    // offload() waits for its work, whose thread may use the handler's stack: the 504 comes
    // only as the handler returns.
    t0 = std::chrono::steady_clock::now();
    r = ask(s.port, "GET /offload/held?ms=600 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_GE(since(t0), 0.6);
    EXPECT_EQ(s.outcome(true), 2u);
}

// A streaming handler whose deadline passes before it has sent anything gets the 504 an
// ordinary handler gets (and is counted so); one that has started ends its response by closing.
TEST(RequestLife, AStreamPastItsDeadlineBeforeItsFirstWriteAnswers504) {
    ServerOptions o;
    o.request_timeout = 200ms;
    LifeServer s(o);
    auto t0 = std::chrono::steady_clock::now();
    auto r = ask(s.port, "GET /stream/late HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_LT(since(t0), 1.5) << "the handler's sleep ends at its deadline";
    EXPECT_EQ(s.stream_write_result.load(), static_cast<int>(weft::Errc::timed_out));
    r = ask(s.port, "GET /stream/silent HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(s.outcome(true), 2u);
    // Started in time: the head and the first piece went out; the deadline ends it by a close.
    RawClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send("GET /stream/started HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(c.wait_closed(5s));
    EXPECT_EQ(c.buffer().rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << c.buffer();
    EXPECT_NE(c.buffer().find("first\n"), std::string::npos) << c.buffer();
    EXPECT_EQ(c.buffer().find("second"), std::string::npos) << c.buffer();
}

TEST(RequestLife, AClientMayShortenItsDeadlineOnlyWhenTheServerSaysSo) {
    ServerOptions o;
    o.request_timeout = 10s;
    o.timeout_header = "X-Request-Timeout";
    LifeServer s(o);
    auto t0 = std::chrono::steady_clock::now();
    auto r = ask(s.port, "GET /wait HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 100m\r\n\r\n");
    EXPECT_EQ(r.status, 504);
    EXPECT_LT(since(t0), 2.0);
    r = ask(s.port, "GET /wait?ms=50 HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 30\r\n\r\n");
    EXPECT_EQ(r.status, 504) << "plain milliseconds";
    // A longer one cannot extend the server's.
    r = ask(s.port, "GET /wait?ms=20 HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 1H\r\n\r\n");
    EXPECT_EQ(r.status, 200);
    // Nor can gRPC's longest value, which overflowed into a deadline already past (504).
    r = ask(s.port, "GET /wait?ms=20 HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 99999999H\r\n\r\n");
    EXPECT_EQ(r.status, 200);
    // A deadline already past when the handler ran (a tick of the coarse clock or less ago)
    // is the answer's, whatever the handler made of it.
    for (const char* t : {"0", "1u", "5n"}) {
        r = ask(s.port, std::string("GET /refused HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: ") + t +
                            "\r\n\r\n");
        EXPECT_EQ(r.status, 504) << t << ": " << r.body;
    }
    // Past while its handler ran, without a wait that the deadline would end: the handler's
    // answer (a library's timeout, passed on) is replaced by the 504 its deadline promised.
    r = ask(s.port, "GET /refused-late HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 20m\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    // Past before its handler began: the handler does not run, so nothing it would do happens
    // after the client was told 504 (gRPC does not start a call past its deadline either).
    r = ask(s.port, "GET /count HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 0\r\n\r\n");
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(s.counted.load(), 0);
    r = ask(s.port, "GET /count HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 1S\r\n\r\n");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(s.counted.load(), 1);
    // An invalid one is refused, saying what is allowed: the client meant a deadline.
    r = ask(s.port, "GET /wait?ms=20 HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: soon\r\n\r\n");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("X-Request-Timeout: expected a duration"), std::string::npos) << r.body;

    ServerOptions off;
    off.request_timeout = 10s;
    LifeServer plain(off);  // no header configured: the client's is just a header
    r = ask(plain.port, "GET /wait?ms=100 HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 1m\r\n\r\n");
    EXPECT_EQ(r.status, 200);

    using detail::parse_timeout_header;
    EXPECT_EQ(parse_timeout_header("250m"), std::chrono::milliseconds(250));
    EXPECT_EQ(parse_timeout_header("2S"), std::chrono::seconds(2));
    EXPECT_EQ(parse_timeout_header("1500"), std::chrono::milliseconds(1500));
    EXPECT_EQ(parse_timeout_header("3u"), std::chrono::microseconds(3));
    for (const char* bad : {"", "-1", "5x", "m", "99999999999999S"})
        EXPECT_FALSE(parse_timeout_header(bad)) << bad;
    // gRPC's longest (8 digits of hours) overflows nanoseconds: it means "a year or more".
    constexpr auto kYear = std::chrono::hours(365 * 24);
    EXPECT_EQ(parse_timeout_header("99999999H"), kYear);
    EXPECT_EQ(parse_timeout_header("99999999999M"), kYear);
    EXPECT_EQ(parse_timeout_header("8760H"), kYear);
    EXPECT_EQ(parse_timeout_header("1H"), std::chrono::hours(1));
}

TEST(RequestLife, FibersTheHandlerSpawnsInheritTheRequestAndItsDeadline) {
    ServerOptions o;
    o.request_timeout = 200ms;
    LifeServer s(o);
    auto r = ask(s.port, "GET /family/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 504) << "the child slept past the deadline";
    EXPECT_EQ(s.seen_route, "/family/{id}");
    EXPECT_EQ(s.child_route, "/family/{id}");
    EXPECT_EQ(s.child_result.load(), static_cast<int>(weft::Errc::timed_out));
    for (int i = 0; i < 300 && !s.late_child_done; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(s.late_child_done.load());
    EXPECT_FALSE(s.late_child_saw_request.load());
}

TEST(RequestLife, AFiberTheLastHandlerLeftRunningDoesNotSeeTheNextRequest) {
    // Two pipelined requests: one fiber serves both, and the first handler's child (which
    // shares that fiber's locals) looks while the second handler sleeps.
    ServerOptions o;
    o.request_timeout = 30s;
    LifeServer s(o);
    RawClient c(s.port);
    ASSERT_TRUE(c.ok());
    c.send(
        "GET /leave-child HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /wait?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    auto rs = c.read_responses(2);
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].body, "left\n");
    EXPECT_EQ(rs[1].body, "slept\n");
    ASSERT_TRUE(s.left_child_done.load());
    EXPECT_EQ(s.left_child_saw, "none");
}

TEST(RequestLife, AClientThatHangsUpCancelsItsHandler) {
    ServerOptions o;
    o.request_timeout = 30s;
    LifeServer s(o);
    auto t0 = std::chrono::steady_clock::now();
    {
        RawClient c(s.port);
        ASSERT_TRUE(c.ok());
        c.send("GET /wait?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
        std::this_thread::sleep_for(100ms);
    }  // closed
    for (int i = 0; i < 300 && s.wait_result == -1; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(s.wait_result.load(), static_cast<int>(weft::Errc::cancelled));
    EXPECT_LT(since(t0), 3.0) << "the handler slept on after its client left";
    for (int i = 0; i < 100 && s.outcome(false) == 0; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(s.outcome(false), 1u);
    // Recorded as nginx records it, 499, not as the 200 its cancelled handler returned.
    ASSERT_TRUE(eventually([&] { return s.recorded("/wait", 499) == 1; }));
    EXPECT_EQ(s.recorded("/wait", 200), 0u);
    // A client that stays gets its answer: pipelined data is not a hang-up.
    s.wait_result = -1;
    RawClient c(s.port);
    c.send(
        "GET /wait?ms=100 HTTP/1.1\r\nHost: x\r\n\r\nGET /wait?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    auto rs = c.read_responses(2);
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].status, 200);
    EXPECT_EQ(rs[1].status, 200);
    EXPECT_EQ(s.outcome(false), 1u);
    EXPECT_TRUE(eventually([&] { return s.recorded("/wait", 200) == 2; }));
    EXPECT_EQ(s.recorded("/wait", 499), 1u);
}
