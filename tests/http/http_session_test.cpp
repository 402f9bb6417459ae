// Http1Session without sockets: pipelining into one send, keep-alive rules, HEAD, 100-continue,
// streaming, handler exceptions, limits, drain, and what metrics and the access log receive.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "body_budget.hpp"
#include "demo_routes.hpp"
#include "http_test_util.hpp"
#include "metrics_table.hpp"
#include "session.hpp"

using namespace weft::http;
using namespace weft::http::detail;
using weft::http::testing::ParsedResponse;
using weft::http::testing::read_responses;

namespace {

class RecordingTransport final : public Transport {
  public:
    weft::Result<void> send(std::span<const iovec> bufs) override {
        std::string s;
        for (const iovec& v : bufs)
            s.append(static_cast<const char*>(v.iov_base), v.iov_len);
        sends.push_back(std::move(s));
        // A send that takes long: a slow network, or a hub that other fibers keep busy.
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
        if (fail) return weft::Errc::connection_reset;
        return {};
    }
    std::string all() const {
        std::string s;
        for (auto& x : sends)
            s += x;
        return s;
    }
    std::vector<std::string> sends;
    bool fail = false;
    std::chrono::milliseconds delay{0};
};

struct Harness {
    ServerOptions opts;
    Router router;
    DateCache date{"Server: weft\r\n"};
    bool draining = false;
    BodyBudget* bodies = nullptr;
    HubRequestMetrics metrics;
    SessionContext ctx;
    std::unique_ptr<Http1Session> session;
    weft::SocketAddress peer = *weft::SocketAddress::parse("10.1.2.3:4567");
    ConnectionInfo info;
    RecordingTransport transport;
    std::vector<AccessLogEntry> log;
    std::vector<std::string> log_targets;
    std::vector<std::string> log_lines;  // request_line (a view into the session) kept
    int endless_writes = 0;
    weft::Errc endless_stopped_by = weft::Errc::ok;

    Harness() {
        weft::demo::register_demo_routes(router);
        router.get("/throw", [](Request&) -> Response { throw std::runtime_error("boom"); });
        // HEAD handlers of their own that build no body: one says how long GET's would be.
        router.add("HEAD", "/sized", [](Request&) {
            Response r(200);
            r.add_header("Content-Length", "12345");
            return r;
        });
        router.add("HEAD", "/unsized", [](Request&) { return Response(200); });
        router.get("/reset", [](Request&) { return Response(205, "ignored"); });
        router.get("/dated", [](Request&) {
            Response r(200, "x");
            r.add_header("Date", "Thu, 01 Jan 1970 00:00:00 GMT");
            r.add_header("Server", "mine");
            return r;
        });
        router.get("/problem", [](Request&) {
            Response r = Response::json("{\"title\":\"x\"}", 400);
            r.add_header("Content-Type", "application/problem+json");
            return r;
        });
        router.get("/big", [](Request&) { return Response(200, std::string(100000, 'x')); });
        router.get("/users/{id}", [](Request& r) {
            return Response(200, "user " + std::string(r.param("id").value_or("?")));
        });
        router.add_stream("GET", "/stream", [](Request&, ResponseStream& s) {
            s.set_content_type("text/plain");
            (void)s.write("one ");
            (void)s.write("two ");
            (void)s.write("three");
        });
        router.add_stream("GET", "/stream-throw", [](Request&, ResponseStream& s) {
            (void)s.write("partial");
            throw std::runtime_error("midway");
        });
        // Streams until a write fails (an event stream), at most 1000 writes.
        router.add_stream("GET", "/stream-endless", [this](Request&, ResponseStream& s) {
            while (endless_writes < 1000 && s.write("data: tick\n\n")) {
                ++endless_writes;
            }
            endless_stopped_by = s.write("x").error().code;
        });
        router.add_stream("GET", "/stream-quiet",
                          [](Request&, ResponseStream& s) { s.set_status(204); });
        router.get("/bye",
                   [](Request&) { return Response(200, "bye").add_header("Connection", "close"); });
        router.get("/inject", [](Request&) {
            return Response(200, "ok")
                .add_header("X-Good", "1")
                .add_header("X-Bad", "a\r\nSet-Cookie: x")
                .add_header("Content-Length ", "5")  // not a token: not the framing filter's
                .add_header("X Spaced", "1");
        });
    }
    void build() {
        opts.access_log = [this](const AccessLogEntry& e) {
            log.push_back(e);
            log_targets.emplace_back(e.target);
            log_lines.emplace_back(e.request_line);
        };
        ctx = make_session_context(opts, router, &metrics, date, draining, 0, bodies);
        session = std::make_unique<Http1Session>(ctx);
        info.peer = &peer;
        info.peer_text = "10.1.2.3:4567";
        session->start(info, transport);
    }
    /// One receive, as the connection fiber hands it over; returns what to do next.
    Step::Kind feed(std::string_view bytes) {
        last = session->on_bytes(bytes, weft::Clock::now());
        return last.kind;
    }
    Step last;
};

constexpr const char* kGet = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";

}  // namespace

TEST(HttpSession, PipelinedBatchIsOneSend) {
    Harness h;
    h.build();
    auto next = h.feed(std::string("GET /users/1 HTTP/1.1\r\nHost: h\r\n\r\n") +
                       "GET /users/2 HTTP/1.1\r\nHost: h\r\n\r\n" +
                       "GET /users/3 HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(next, Step::Kind::idle);
    ASSERT_EQ(h.transport.sends.size(), 1u);
    auto rs = read_responses(h.transport.sends[0]);
    ASSERT_EQ(rs.size(), 3u);
    EXPECT_EQ(rs[0].body, "user 1");
    EXPECT_EQ(rs[1].body, "user 2");
    EXPECT_EQ(rs[2].body, "user 3");
    for (auto& r : rs) {
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("Server").value_or(""), "weft");
        EXPECT_EQ(r.header("Date").value_or("").size(), 29u);
        EXPECT_FALSE(r.header("Connection").has_value());
    }
    EXPECT_EQ(h.info.requests, 3u);
}

TEST(HttpSession, BatchesBeyondTheLimitStillAnswerEverything) {
    Harness h;
    h.build();
    std::string in;
    for (int i = 0; i < 150; ++i)
        in += kGet;
    EXPECT_EQ(h.feed(in), Step::Kind::idle);
    EXPECT_EQ(read_responses(h.transport.all()).size(), 150u);
    EXPECT_EQ(h.transport.sends.size(), 3u) << "64 + 64 + 22";
}

TEST(HttpSession, PartialRequestsAcrossReceives) {
    Harness h;
    h.build();
    std::string in = std::string(kGet) +
                     "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\n"
                     "Content-Length: 5\r\n\r\nhello";
    for (std::size_t i = 0; i < in.size(); i += 3)
        h.feed(std::string_view(in).substr(i, 3));
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].body, "Hello, World!");
    EXPECT_EQ(rs[1].body, "hello");
    EXPECT_EQ(rs[1].header("Content-Type").value_or(""), "a/b");
}

TEST(HttpSession, NextStateAndDeadlines) {
    Harness h;
    h.opts.header_timeout = std::chrono::milliseconds(1000);
    h.opts.body_timeout = std::chrono::milliseconds(5000);
    h.opts.min_body_rate = 0;  // the body timeout alone (the next test has the rate)
    h.build();
    auto t0 = weft::Clock::now();
    EXPECT_EQ(h.feed("GET / HT"), Step::Kind::read);
    auto dl = h.last.deadline.time_point();
    EXPECT_GE(dl, t0 + std::chrono::milliseconds(1000));
    EXPECT_LT(dl, t0 + std::chrono::milliseconds(2000));
    EXPECT_EQ(h.feed("TP/1.1\r\nHost: h\r\n\r\n"), Step::Kind::idle);
    EXPECT_EQ(h.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab"),
              Step::Kind::read);
    dl = h.last.deadline.time_point();
    EXPECT_GE(dl, t0 + std::chrono::milliseconds(5000));
    // More of the body moves the deadline: it bounds the gap between reads.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t1 = weft::Clock::now();
    EXPECT_EQ(h.feed("c"), Step::Kind::read);
    auto dl2 = h.last.deadline.time_point();
    EXPECT_GE(dl2, t1 + std::chrono::milliseconds(5000));
    EXPECT_GE(dl2 - dl, std::chrono::milliseconds(20));
    h.last = h.session->on_timeout();
    EXPECT_EQ(h.last.kind, Step::Kind::close);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[1].status, 408);
    EXPECT_EQ(rs[1].header("Connection").value_or(""), "close");
    // Logged with the line it came with, the 408's body and the time since its first byte.
    ASSERT_EQ(h.log.size(), 2u);
    EXPECT_EQ(h.log[1].status, 408);
    EXPECT_EQ(h.log[1].request_line, "POST /echo HTTP/1.1");
    EXPECT_EQ(h.log[1].bytes, rs[1].body.size());
    EXPECT_GE(h.log[1].duration, std::chrono::milliseconds(20));
}

// A body must average min_body_rate once the grace has passed: the read's deadline is when
// the bytes received so far were due, so it moves on by what each read brought, and the 408
// says why. The body timeout (between reads) still applies when it comes first.
TEST(HttpSession, ABodyBelowTheMinimumRateTimesOut) {
    using std::chrono::milliseconds;
    using std::chrono::seconds;
    Harness h;
    h.opts.body_timeout = std::chrono::hours(1);
    h.opts.min_body_rate = 2;  // bytes per second
    h.build();
    const auto grace = ServerOptions::kMinBodyRateGrace;
    auto t0 = weft::Clock::now();
    EXPECT_EQ(h.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n"),
              Step::Kind::read);
    auto t1 = weft::Clock::now();
    auto dl = h.last.deadline.time_point();
    EXPECT_GE(dl, t0 + grace);
    EXPECT_LE(dl, t1 + grace);
    EXPECT_EQ(h.feed("abcdef"), Step::Kind::read);  // 6 bytes: due 3 s later
    auto t2 = weft::Clock::now();
    auto dl2 = h.last.deadline.time_point();
    EXPECT_GE(dl2, t0 + grace + seconds(3));
    EXPECT_LE(dl2, t2 + grace + seconds(3));
    h.last = h.session->on_timeout();
    EXPECT_EQ(h.last.kind, Step::Kind::close);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 408);
    EXPECT_NE(rs[0].body.find("request body too slow: below the server's minimum of 2 bytes/s"),
              std::string::npos)
        << rs[0].body;

    // A body timeout shorter than the rate's deadline is the one that passes.
    Harness g;
    g.opts.body_timeout = milliseconds(1500);
    g.opts.min_body_rate = 2;
    g.build();
    auto u0 = weft::Clock::now();
    EXPECT_EQ(g.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab"),
              Step::Kind::read);
    auto u1 = weft::Clock::now();
    EXPECT_GE(g.last.deadline.time_point(), u0 + milliseconds(1500));
    EXPECT_LE(g.last.deadline.time_point(), u1 + milliseconds(1500));
    g.last = g.session->on_timeout();
    rs = read_responses(g.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 408);
    EXPECT_NE(rs[0].body.find("request body timed out"), std::string::npos) << rs[0].body;

    // No minimum: the body timeout alone.
    Harness n;
    n.opts.body_timeout = std::chrono::hours(1);
    n.opts.min_body_rate = 0;
    n.build();
    auto v0 = weft::Clock::now();
    EXPECT_EQ(n.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab"),
              Step::Kind::read);
    EXPECT_GE(n.last.deadline.time_point(), v0 + std::chrono::minutes(59));
}

// A head cut by the header timeout after its request line: logged with that line, and counted
// under the method the line named (as the log shows it), not as _OTHER.
TEST(HttpSession, AHeadCutShortIsCountedUnderItsLinesMethod) {
    Harness h;
    h.build();
    EXPECT_EQ(h.feed("DELETE /x HTTP/1.1\r\nHost: h\r\n"), Step::Kind::read);
    h.last = h.session->on_timeout();
    EXPECT_EQ(h.last.kind, Step::Kind::close);
    ASSERT_EQ(h.log.size(), 1u);
    EXPECT_EQ(h.log[0].status, 408);
    EXPECT_EQ(h.log[0].request_line, "DELETE /x HTTP/1.1");
    std::map<std::string, std::uint64_t> counts;
    h.metrics.for_each([&](const HubRequestMetrics::Series& s) {
        for (auto& b : s.duration.buckets)
            counts[std::string(method_label(s.method)) + " " + std::to_string(s.status)] +=
                b.load();
    });
    EXPECT_EQ(counts["DELETE 408"], 1u);
    EXPECT_EQ(counts.size(), 1u);
}

// The body timeout bounds the gaps between reads that bring body data: reads of chunk framing
// alone (a size line's leading zeros, extensions) do not push it back.
TEST(HttpSession, ChunkFramingIsNoBodyProgress) {
    Harness h;
    h.opts.body_timeout = std::chrono::milliseconds(5000);
    h.build();
    EXPECT_EQ(h.feed("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
              Step::Kind::read);
    const auto dl = h.last.deadline.time_point();
    for (const char* framing : {"000", "05;x=", "aaaa", "aaaa"}) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_EQ(h.feed(framing), Step::Kind::read);
        EXPECT_EQ(h.last.deadline.time_point(), dl) << "after '" << framing << "'";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(h.feed("\r\nhel"), Step::Kind::read);
    EXPECT_GE(h.last.deadline.time_point() - dl, std::chrono::milliseconds(10)) << "data moves it";
    EXPECT_EQ(h.feed("lo\r\n0\r\n\r\n"), Step::Kind::idle);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].body, "hello");
}

TEST(HttpSession, KeepAliveAndClose) {
    {
        Harness h;
        h.build();
        EXPECT_EQ(
            h.feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + std::string(kGet)),
            Step::Kind::close);
        auto rs = read_responses(h.transport.all());
        ASSERT_EQ(rs.size(), 1u) << "nothing after Connection: close is answered";
        EXPECT_EQ(rs[0].header("Connection").value_or(""), "close");
        EXPECT_TRUE(h.last.linger) << "unread bytes followed";
    }
    {
        Harness h;
        h.build();
        EXPECT_EQ(h.feed("GET / HTTP/1.0\r\n\r\n"), Step::Kind::close);
        EXPECT_EQ(read_responses(h.transport.all()).at(0).header("Connection").value_or(""),
                  "close");
        EXPECT_FALSE(h.last.linger);
    }
    {
        Harness h;
        h.build();
        EXPECT_EQ(h.feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), Step::Kind::idle);
        EXPECT_EQ(read_responses(h.transport.all()).at(0).header("Connection").value_or(""),
                  "keep-alive");
    }
}

TEST(HttpSession, HeadHasLengthButNoBody) {
    Harness h;
    h.build();
    h.feed("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet));
    std::string all = h.transport.all();
    weft::http::testing::ParsedResponse head;
    std::size_t used = weft::http::testing::read_response(all, head, true);
    ASSERT_GT(used, 0u);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length").value_or(""), "13");
    auto rest = read_responses(std::string_view(all).substr(used));
    ASSERT_EQ(rest.size(), 1u) << "the HEAD response carried no body bytes";
    EXPECT_EQ(rest[0].body, "Hello, World!");
}

// A Content-Type the handler adds replaces the response's default: one field, the handler's.
TEST(HttpSession, AHandlersContentTypeReplacesTheDefault) {
    Harness h;
    h.build();
    h.feed("GET /problem HTTP/1.1\r\nHost: h\r\n\r\n");
    const std::string all = h.transport.all();
    std::size_t n = 0;
    for (std::size_t at = all.find("Content-Type:"); at != std::string::npos;
         at = all.find("Content-Type:", at + 1))
        ++n;
    EXPECT_EQ(n, 1u) << all;
    auto rs = read_responses(all);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].header("Content-Type").value_or(""), "application/problem+json");
}

// RFC 9110 §8.6: a HEAD answer's Content-Length, if any, is what GET's would be: the
// handler's own, or none; never the 0 of a body nobody built.
TEST(HttpSession, HeadAnswersKeepTheHandlersContentLengthOrSendNone) {
    Harness h;
    h.build();
    h.feed("HEAD /sized HTTP/1.1\r\nHost: h\r\n\r\nHEAD /unsized HTTP/1.1\r\nHost: h\r\n\r\n");
    std::string all = h.transport.all();
    weft::http::testing::ParsedResponse a, b;
    const std::size_t used = weft::http::testing::read_response(all, a, true);
    ASSERT_GT(used, 0u) << all;
    EXPECT_EQ(a.header("Content-Length").value_or(""), "12345");
    ASSERT_GT(weft::http::testing::read_response(std::string_view(all).substr(used), b, true), 0u)
        << all;
    EXPECT_EQ(b.status, 200);
    EXPECT_FALSE(b.header("Content-Length").has_value()) << all;
}

// RFC 9110 §15.3.6: a 205 has no content, and says so (Content-Length: 0) so that the next
// answer on the connection is read as one.
TEST(HttpSession, ResetContentHasNoBody) {
    Harness h;
    h.build();
    h.feed("GET /reset HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet));
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u) << h.transport.all();
    EXPECT_EQ(rs[0].status, 205);
    EXPECT_EQ(rs[0].header("Content-Length").value_or(""), "0");
    EXPECT_EQ(rs[0].body, "");
    EXPECT_EQ(rs[1].body, "Hello, World!");
    // A HEAD says what GET says: Content-Length: 0.
    Harness h2;
    h2.build();
    h2.feed("HEAD /reset HTTP/1.1\r\nHost: h\r\n\r\n");
    weft::http::testing::ParsedResponse head;
    ASSERT_GT(weft::http::testing::read_response(h2.transport.all(), head, true), 0u);
    EXPECT_EQ(head.status, 205);
    EXPECT_EQ(head.header("Content-Length").value_or(""), "0");
}

// "OPTIONS *" asks about the server itself: 200 with no content, as Go's net/http answers; a
// route's OPTIONS is untouched, and "*" is still nobody's path for another method.
TEST(HttpSession, OptionsAsteriskIsAnsweredByTheServer) {
    Harness h;
    h.build();
    h.feed("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\nOPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n" +
           std::string(kGet));
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 3u) << h.transport.all();
    EXPECT_EQ(rs[0].status, 200);
    EXPECT_EQ(rs[0].header("Content-Length").value_or(""), "0");
    EXPECT_EQ(rs[0].body, "");
    EXPECT_EQ(rs[1].status, 405);  // "/" has GET and HEAD only
    EXPECT_EQ(rs[2].body, "Hello, World!");
    ASSERT_EQ(h.log.size(), 3u);
    EXPECT_EQ(h.log[0].status, 200);
}

// A path with dot segments is not routed as it came ("/users/../secret" would reach
// /users/{id} with id ".."): the client is sent to the path it names, 301 for GET and HEAD, 308
// (method and body kept) for the others. Dots written as %2E count; "..." and ".a" are names.
TEST(HttpSession, DotSegmentsAreResolvedByARedirect) {
    struct Case {
        const char* request_line;
        int status;
        const char* location;
    };
    const Case cases[] = {
        {"GET /users/../secret?x=1", 301, "/secret?x=1"},
        {"GET /users/%2e%2E/secret", 301, "/secret"},
        {"GET /a/./b/.", 301, "/a/b/"},
        {"HEAD /..", 301, "/"},
        {"POST /users/../x", 308, "/x"},
        // Never a Location that a browser reads as another host ("//evil.example/x").
        {"GET //evil.example/./x", 301, "/evil.example/x"},
        {"GET ///evil.example/%2e/x", 301, "/evil.example/x"},
        {"GET /a/..//x", 301, "/x"},
    };
    for (const Case& c : cases) {
        Harness h;
        h.build();
        h.feed(std::string(c.request_line) + " HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        weft::http::testing::ParsedResponse r;
        ASSERT_GT(weft::http::testing::read_response(
                      h.transport.all(), r, std::string_view(c.request_line).starts_with("HEAD")),
                  0u)
            << c.request_line;
        EXPECT_EQ(r.status, c.status) << c.request_line;
        EXPECT_EQ(r.header("Location").value_or(""), c.location) << c.request_line;
    }
    // A backslash, which browsers take for a slash, beside dot segments: 400, no redirect (one
    // that a browser would read as another host, "/\\evil.example", or resolve otherwise).
    for (const char* target : {"/\\evil.example/./x", "/%2e/\\.", "/./\\./\\./\\./\\./\\./x"}) {
        Harness b;
        b.build();
        b.feed("GET " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n\r\n");
        weft::http::testing::ParsedResponse r;
        ASSERT_GT(weft::http::testing::read_response(b.transport.all(), r, false), 0u) << target;
        EXPECT_EQ(r.status, 400) << target;
        EXPECT_FALSE(r.header("Location")) << target;
    }
    // Names that only look like dots are routed as they are.
    Harness h;
    h.build();
    h.feed("GET /users/... HTTP/1.1\r\nHost: h\r\n\r\nGET /users/.a HTTP/1.1\r\nHost: h\r\n\r\n");
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].body, "user ...");
    EXPECT_EQ(rs[1].body, "user .a");
}

// A '%' that is not an escape makes the target no URI path: 400, as Go's net/http and nginx
// answer, whether a route would take the path or not (not 404, not a route's parameter). A
// %2F that hides a dot segment ("..%2Fsecret") gets 400 too.
TEST(HttpSession, ABadOrDotHidingEscapeInThePathIs400) {
    for (const char* target : {"/%zz", "/users/%g1", "/users/ab%", "/users/%4", "/x/%2e%2/.."}) {
        Harness h;
        h.build();
        h.feed("GET " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet));
        auto rs = read_responses(h.transport.all());
        ASSERT_EQ(rs.size(), 2u) << target;
        EXPECT_EQ(rs[0].status, 400) << target;
        EXPECT_EQ(rs[0].body, "Bad Request: invalid percent-encoding in path\n") << target;
        EXPECT_EQ(rs[1].status, 200) << target;  // the connection goes on
    }
    // A dot segment behind an encoded '/': a route's parameter would take "../secret".
    for (const char* target : {"/users/..%2Fsecret", "/users/a%2f..%2Fb", "/users/%2e%2E%2Fx",
                               "/users/.%2F", "/users/a%2F.."}) {
        Harness h;
        h.build();
        h.feed("GET " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n\r\n");
        auto rs = read_responses(h.transport.all());
        ASSERT_EQ(rs.size(), 1u) << target;
        EXPECT_EQ(rs[0].status, 400) << target;
        EXPECT_EQ(rs[0].body, "Bad Request: a dot segment next to an encoded '/' (%2F) in path\n")
            << target;
    }
    // Escapes of any case, and a '%' in the query, are fine; so is an encoded '/' between
    // names (Go's ServeMux passes it too), and dots that are names.
    {
        Harness h;
        h.build();
        h.feed(
            "GET /users/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\nGET /users/...%2F HTTP/1.1\r\nHost: "
            "h\r\n\r\n");
        auto rs = read_responses(h.transport.all());
        ASSERT_EQ(rs.size(), 2u);
        EXPECT_EQ(rs[0].body, "user a/b");
        EXPECT_EQ(rs[1].body, "user .../");
    }
    Harness h;
    h.build();
    h.feed("GET /users/%41%6a HTTP/1.1\r\nHost: h\r\n\r\nGET /?q=%zz HTTP/1.1\r\nHost: h\r\n\r\n");
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].body, "user Aj");
    EXPECT_EQ(rs[1].status, 200);
}

// A handler's Date or Server field replaces the server's own, as Go's net/http does for Date.
TEST(HttpSession, AHandlersDateAndServerReplaceTheServers) {
    Harness h;
    h.build();
    h.feed("GET /dated HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet));
    const std::string all = h.transport.all();
    auto rs = read_responses(all);
    ASSERT_EQ(rs.size(), 2u) << all;
    const std::string first = all.substr(0, all.find("\r\n\r\n"));
    auto count = [&](std::string_view field) {
        std::size_t n = 0;
        for (std::size_t at = first.find(field); at != std::string::npos;
             at = first.find(field, at + 1))
            ++n;
        return n;
    };
    EXPECT_EQ(count("\r\nDate:"), 1u) << first;
    EXPECT_EQ(count("\r\nServer:"), 1u) << first;
    EXPECT_EQ(rs[0].header("Date").value_or(""), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(rs[0].header("Server").value_or(""), "mine");
    // The next answer has the server's own again.
    EXPECT_EQ(rs[1].header("Server").value_or(""), "weft");
    EXPECT_NE(rs[1].header("Date").value_or("1970"), "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST(HttpSession, NotFoundAndMethodNotAllowed) {
    Harness h;
    h.build();
    h.feed("GET /nope HTTP/1.1\r\nHost: h\r\n\r\nDELETE /echo HTTP/1.1\r\nHost: h\r\n\r\n");
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].status, 404);
    EXPECT_EQ(rs[1].status, 405);
    EXPECT_EQ(rs[1].header("Allow").value_or(""), "POST");
    EXPECT_EQ(h.last.kind, Step::Kind::idle);
}

TEST(HttpSession, HandlerExceptionIs500AndConnectionLives) {
    Harness h;
    h.build();
    EXPECT_EQ(h.feed("GET /throw HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet)),
              Step::Kind::idle);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].status, 500);
    EXPECT_FALSE(rs[0].header("Connection").has_value());
    EXPECT_EQ(rs[1].status, 200);
}

TEST(HttpSession, ContinueSentBeforeBody) {
    Harness h;
    h.build();
    EXPECT_EQ(
        h.feed(
            "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
        Step::Kind::read);
    ASSERT_EQ(h.transport.sends.size(), 1u);
    EXPECT_EQ(h.transport.sends[0], "HTTP/1.1 100 Continue\r\n\r\n");
    EXPECT_EQ(h.feed(""), Step::Kind::read);
    EXPECT_EQ(h.transport.sends.size(), 1u) << "sent once";
    EXPECT_EQ(h.feed("abc"), Step::Kind::idle);
    auto rs = read_responses(h.transport.sends.at(1));
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].body, "abc");
}

TEST(HttpSession, ContinueNotSentWhenBodyTooLarge) {
    Harness h;
    h.opts.max_body_bytes = 10;
    h.build();
    EXPECT_EQ(
        h.feed(
            "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n"),
        Step::Kind::close);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 413);
}

// A request refused by a limit once its head was read counts under the route it asked for
// (per-route dashboards show their refusals); one for no route, or whose head was not read
// whole (too many fields, a target too long), under none.
TEST(HttpSession, RefusalsByALimitKeepTheirRoute) {
    struct Case {
        const char* request;
        int status;
        const char* route;
    };
    const std::string many_fields = [] {
        std::string f;
        for (int i = 0; i < 120; ++i)
            f += "X-F" + std::to_string(i) + ": 1\r\n";
        return f;
    }();
    const std::string fields_request = "GET /users/7 HTTP/1.1\r\nHost: h\r\n" + many_fields + "\r\n";
    const std::string long_target = "GET /users/" + std::string(9000, 'x') + " HTTP/1.1\r\n\r\n";
    const Case cases[] = {
        {"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 413, "/echo"},
        {"POST /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 413, ""},
        {fields_request.c_str(), 431, ""},
        {long_target.c_str(), 414, ""},
    };
    for (const Case& c : cases) {
        Harness h;
        h.opts.max_body_bytes = 10;
        h.build();
        EXPECT_EQ(h.feed(c.request), Step::Kind::close) << c.status;
        ASSERT_EQ(h.log.size(), 1u) << c.status;
        EXPECT_EQ(h.log[0].status, c.status);
        EXPECT_EQ(h.log[0].route, std::string_view(c.route)) << c.status;
    }
}

// A request that waits for "100 Continue" and that no route takes gets its 404 or 405 at once
// (no invitation to upload a body that would be thrown away), then the connection closes,
// lingering for the body that may come all the same.
TEST(HttpSession, ContinueNotSentWhenNoRouteTakesTheRequest) {
    for (const char* line : {"POST /nope", "POST /users/7", "PUT /"}) {
        Harness h;
        h.build();
        EXPECT_EQ(h.feed(std::string(line) +
                         " HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: "
                         "500000\r\n\r\n"),
                  Step::Kind::close)
            << line;
        EXPECT_TRUE(h.last.linger) << line;
        const std::string all = h.transport.all();
        EXPECT_EQ(all.find("100 Continue"), std::string::npos) << all;
        auto rs = read_responses(all);
        ASSERT_EQ(rs.size(), 1u) << all;
        const int want = std::string_view(line) == "POST /nope" ? 404 : 405;
        EXPECT_EQ(rs[0].status, want) << line;
        EXPECT_EQ(rs[0].header("Connection").value_or(""), "close") << line;
        if (want == 405) {
            EXPECT_TRUE(rs[0].header("Allow").has_value()) << line;
        }
        ASSERT_EQ(h.log.size(), 1u) << line;
        EXPECT_EQ(h.log[0].status, want) << line;
    }
}

TEST(HttpSession, ErrorAfterGoodRequestsAnswersThemFirst) {
    Harness h;
    h.build();
    EXPECT_EQ(
        h.feed(std::string(kGet) + kGet + std::string("\x01") + "BAD / HTTP/1.1\r\n\r\n" + kGet),
        Step::Kind::close);
    ASSERT_EQ(h.transport.sends.size(), 1u);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 3u);
    EXPECT_EQ(rs[0].status, 200);
    EXPECT_EQ(rs[1].status, 200);
    EXPECT_EQ(rs[2].status, 400);
    EXPECT_EQ(rs[2].header("Connection").value_or(""), "close");
    EXPECT_TRUE(h.last.linger);
}

TEST(HttpSession, MaxRequestsPerConnection) {
    Harness h;
    h.opts.max_requests_per_connection = 2;
    h.build();
    EXPECT_EQ(h.feed(kGet), Step::Kind::idle);
    EXPECT_EQ(h.feed(std::string(kGet) + kGet), Step::Kind::close);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_FALSE(rs[0].header("Connection").has_value());
    EXPECT_EQ(rs[1].header("Connection").value_or(""), "close");
    EXPECT_TRUE(h.last.linger) << "the pipelined request left unanswered needs a linger";
    // The limit reached with nothing behind it: a plain close.
    Harness h2;
    h2.opts.max_requests_per_connection = 1;
    h2.build();
    EXPECT_EQ(h2.feed(kGet), Step::Kind::close);
    EXPECT_FALSE(h2.last.linger);
}

TEST(HttpSession, DrainClosesAfterTheBatch) {
    Harness h;
    h.build();
    h.draining = true;
    EXPECT_EQ(h.feed(std::string(kGet) + kGet), Step::Kind::close);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u) << "requests in flight are answered";
    EXPECT_FALSE(rs[0].header("Connection").has_value());
    EXPECT_EQ(rs[1].header("Connection").value_or(""), "close");
}

TEST(HttpSession, StreamingChunked) {
    Harness h;
    h.build();
    EXPECT_EQ(h.feed("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet)),
              Step::Kind::idle);
    EXPECT_GE(h.transport.sends.size(), 3u) << "each write goes out";
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_TRUE(rs[0].chunked);
    EXPECT_EQ(rs[0].body, "one two three");
    EXPECT_EQ(rs[1].body, "Hello, World!");
}

TEST(HttpSession, StreamingHttp10ClosesToEndTheBody) {
    Harness h;
    h.build();
    EXPECT_EQ(h.feed("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), Step::Kind::close);
    auto rs = read_responses(h.transport.all(), true);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_FALSE(rs[0].chunked);
    EXPECT_EQ(rs[0].body, "one two three");
    EXPECT_EQ(rs[0].header("Connection").value_or(""), "close");
}

TEST(HttpSession, StreamingFailureClosesOrAnswers500) {
    Harness h;
    h.build();
    EXPECT_EQ(h.feed("GET /stream-throw HTTP/1.1\r\nHost: h\r\n\r\n"), Step::Kind::close)
        << "bytes were out: the connection must close";
    Harness q;
    q.build();
    EXPECT_EQ(q.feed("GET /stream-quiet HTTP/1.1\r\nHost: h\r\n\r\n"), Step::Kind::idle);
    auto rs = read_responses(q.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 204);
}

// HEAD of a streaming route: the head goes out, and the first write with data fails (Go's
// ErrBodyNotAllowed), so that a stream that runs until a write fails ends at once; the
// connection goes on. (It used to stream into nothing, for ever for an event stream.)
TEST(HttpSession, AHeadOfAStreamEndsAtItsFirstWrite) {
    Harness h;
    h.build();
    EXPECT_EQ(h.feed("HEAD /stream-endless HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet)),
              Step::Kind::idle);
    EXPECT_EQ(h.endless_writes, 0);
    EXPECT_EQ(h.endless_stopped_by, weft::Errc::closed);
    const std::string all = h.transport.all();
    weft::http::testing::ParsedResponse head;
    const std::size_t n = weft::http::testing::read_response(all, head, true);
    ASSERT_GT(n, 0u) << all;
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.body.empty());
    auto rs = read_responses(std::string_view(all).substr(n));
    ASSERT_EQ(rs.size(), 1u) << all;
    EXPECT_EQ(rs[0].body, "Hello, World!");
    ASSERT_EQ(h.log.size(), 2u);
    EXPECT_EQ(h.log[1].status, 200);  // the GET after it was answered
    // A GET of it still streams.
    Harness g;
    g.build();
    g.endless_writes = 997;
    g.feed("GET /stream-endless HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(g.endless_writes, 1000);
    auto gs = read_responses(g.transport.all());
    ASSERT_EQ(gs.size(), 1u);
    EXPECT_EQ(gs[0].body, "data: tick\n\ndata: tick\n\ndata: tick\n\nx");
}

TEST(HttpSession, LargeBodyGoesOutIntact) {
    Harness h;
    h.build();
    h.feed("GET /big HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet));
    ASSERT_EQ(h.transport.sends.size(), 1u);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].body, std::string(100000, 'x'));
}

TEST(HttpSession, HeaderInjectionDropped) {
    Harness h;
    h.build();
    h.feed("GET /inject HTTP/1.1\r\nHost: h\r\n\r\n");
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].header("X-Good").value_or(""), "1");
    EXPECT_FALSE(rs[0].header("X-Bad").has_value());
    EXPECT_FALSE(rs[0].header("Set-Cookie").has_value());
    EXPECT_EQ(h.transport.all().find("Content-Length :"), std::string::npos) << h.transport.all();
    EXPECT_EQ(h.transport.all().find("X Spaced"), std::string::npos);
    EXPECT_EQ(rs[0].body, "ok");
}

TEST(HttpSession, SendFailureCloses) {
    Harness h;
    h.build();
    h.transport.fail = true;
    EXPECT_EQ(h.feed(kGet), Step::Kind::close);
    EXPECT_FALSE(h.last.linger);
}

// The server cut the connection while the handler ran (a hard stop, a reclaim): nothing it
// answers goes out, so it is logged and counted as 503 with no bytes, a stream included when
// none of its writes went out.
TEST(HttpSession, AnAnswerOnACutConnectionIsLogged503) {
    for (const char* path : {"/", "/stream"}) {
        Harness h;
        h.build();
        h.info.cut = true;
        h.transport.fail = true;  // as a cut connection's sends do
        EXPECT_EQ(h.feed(std::string("GET ") + path + " HTTP/1.1\r\nHost: h\r\n\r\n"),
                  Step::Kind::close);
        ASSERT_EQ(h.log.size(), 1u) << path;
        EXPECT_EQ(h.log[0].status, 503) << path;
        EXPECT_EQ(h.log[0].bytes, 0u) << path;
        EXPECT_FALSE(h.log[0].complete) << path;
    }
}

TEST(HttpSession, MetricsAndAccessLog) {
    Harness h;
    h.build();
    h.feed(
        "GET /users/5?x=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /users/6 HTTP/1.1\r\nHost: h\r\n\r\n"
        "GET /nope/123 HTTP/1.1\r\nHost: h\r\n\r\nPROPFIND /users/1 HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(h.log.size(), 4u);
    EXPECT_EQ(h.log_targets[0], "/users/5?x=1");
    EXPECT_EQ(h.log[0].status, 200);
    EXPECT_EQ(h.log[0].bytes, 6u);
    EXPECT_EQ(h.log[0].peer->port(), 4567);
    std::map<std::string, std::uint64_t> counts;
    h.metrics.for_each([&](const HubRequestMetrics::Series& s) {
        std::uint64_t n = 0;
        for (auto& b : s.duration.buckets)
            n += b.load();
        counts[std::string(method_label(s.method)) + " " + std::to_string(s.status) + " " +
               s.route] += n;
    });
    EXPECT_EQ(counts["GET 200 /users/{id}"], 2u);
    EXPECT_EQ(counts["GET 404 "], 1u) << "unmatched: empty route, never the raw path";
    EXPECT_EQ(counts["_OTHER 405 /users/{id}"], 1u);
    EXPECT_EQ(counts.size(), 3u);
    EXPECT_EQ(h.metrics.active(Method::get), 0);
}

// A request the server refuses is logged with its line as it came (parsed or not), the size of
// the error body it got, and a duration from its first byte; a served one has no line there.
TEST(HttpSession, RefusedRequestsAreLoggedWithTheirLine) {
    {
        Harness h;
        h.build();
        h.feed(std::string(kGet) + "\r\nGARBAGE \x01\r\n\r\n");
        ASSERT_EQ(h.log.size(), 2u);
        EXPECT_EQ(h.log[0].request_line, "");
        EXPECT_EQ(h.log[1].status, 400);
        EXPECT_EQ(h.log[1].request_line, "GARBAGE \x01");
        EXPECT_EQ(h.log[1].method, "");
        auto rs = read_responses(h.transport.all());
        ASSERT_EQ(rs.size(), 2u);
        EXPECT_EQ(h.log[1].bytes, rs[1].body.size());
        EXPECT_GT(h.log[1].bytes, 0u);
    }
    {
        // The line in three receives, 100 ms apart, refused at its header: the whole line, and
        // the time since its first byte.
        Harness h;
        h.build();
        h.feed("GET /a");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        h.feed("b?c=d HTTP/1.1\r");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        h.feed("\nHost: h\r\nContent-Length: nope\r\n\r\n");
        ASSERT_EQ(h.log.size(), 1u);
        EXPECT_EQ(h.log[0].status, 400);
        EXPECT_EQ(h.log[0].request_line, "GET /ab?c=d HTTP/1.1");
        EXPECT_GE(h.log[0].duration, std::chrono::milliseconds(200));
    }
    {
        // A line longer than the log keeps: its first 256 bytes.
        Harness h;
        h.build();
        h.feed("GET /" + std::string(300, 'x') + " HTTP/1.1\r\nHost: h\r\nX: \x01\r\n\r\n");
        ASSERT_EQ(h.log.size(), 1u);
        EXPECT_EQ(h.log[0].status, 400);
        EXPECT_EQ(h.log[0].request_line, "GET /" + std::string(251, 'x'));
    }
    {
        // A request served after arriving in two pieces: the log's duration from its first
        // byte, the metrics' from its last.
        Harness h;
        h.build();
        h.feed("GET / HTTP/1.1\r\nHo");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        h.feed("st: h\r\n\r\n");
        ASSERT_EQ(h.log.size(), 1u);
        EXPECT_EQ(h.log[0].status, 200);
        EXPECT_EQ(h.log[0].request_line, "");
        EXPECT_GE(h.log[0].duration, std::chrono::milliseconds(100));
    }
}

// A request's duration ends when its response's last byte is handed to the kernel, not when
// the handler returns: a response that waits 200 ms to go out took 200 ms.
TEST(HttpSession, DurationEndsWhenTheResponseIsSent) {
    Harness h;
    h.build();
    h.transport.delay = std::chrono::milliseconds(200);
    h.feed(std::string(kGet) + "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(h.log.size(), 2u);
    for (const AccessLogEntry& e : h.log)
        EXPECT_GE(e.duration, std::chrono::milliseconds(200)) << e.status;
    std::int64_t sum_ns = 0;
    h.metrics.for_each(
        [&](const HubRequestMetrics::Series& s) { sum_ns += s.duration.sum_ns.load(); });
    EXPECT_GE(sum_ns, 2 * 200'000'000);
    // An error answer too.
    Harness e;
    e.build();
    e.transport.delay = std::chrono::milliseconds(200);
    EXPECT_EQ(e.feed("GET / HTTP/1.1\r\n\r\n"), Step::Kind::close);
    ASSERT_EQ(e.log.size(), 1u);
    EXPECT_EQ(e.log[0].status, 400);
    EXPECT_GE(e.log[0].duration, std::chrono::milliseconds(200));
}

// Bodies being received or waiting for their handler take from a budget that every session of a
// server shares; beyond it a request gets 503 and its connection closes. A body's bytes go back
// when it is answered, or when its connection ends mid-upload.
TEST(HttpSession, BodiesShareOneBudget) {
    std::atomic<std::size_t> used{0}, peak{0};
    BodyBudget budget(256 * 1024, used, peak);
    Harness a, b;
    for (Harness* h : {&a, &b}) {
        h->opts.max_body_bytes = 1 << 20;
        h->bodies = &budget;
        h->build();
    }
    const std::string head = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n";
    EXPECT_EQ(a.feed(head + std::string(150000, 'a')), Step::Kind::read);
    EXPECT_GE(used.load(), 150000u);
    EXPECT_LE(used.load(), 2 * 150000u) << "storage grows by doubling";
    // The second upload does not fit beside the first.
    EXPECT_EQ(b.feed(head + std::string(150000, 'b')), Step::Kind::close);
    auto rs = read_responses(b.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 503);
    EXPECT_EQ(rs[0].header("Retry-After").value_or(""), "1");
    EXPECT_EQ(rs[0].header("Connection").value_or(""), "close");
    b.session->finish();
    // The first one completes; once answered its bytes are back.
    EXPECT_EQ(a.feed(std::string(50000, 'a')), Step::Kind::idle);
    rs = read_responses(a.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].body.size(), 200000u);
    EXPECT_EQ(used.load(), 0u);
    // A connection that ends mid-upload gives its bytes back too.
    Harness c;
    c.bodies = &budget;
    c.build();
    EXPECT_EQ(c.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 250000\r\n\r\n" +
                     std::string(100000, 'c')),
              Step::Kind::read);
    EXPECT_GT(used.load(), 0u);
    c.session->finish();
    EXPECT_EQ(used.load(), 0u);
    // One larger than the whole budget would never fit: 413 at once, not 503 (which asks to
    // come back), before any of it is read.
    Harness d;
    d.opts.max_body_bytes = 1 << 20;
    d.bodies = &budget;
    d.build();
    EXPECT_EQ(d.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 900000\r\n\r\n"),
              Step::Kind::close);
    rs = read_responses(d.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 413);
    EXPECT_EQ(used.load(), 0u);
}

// A request that announces a body takes nothing from the budget until its bytes come: requests
// announcing bodies they never send cannot use it up and have every upload refused.
TEST(HttpSession, AnAnnouncedBodyTakesFromTheBudgetOnlyWhatIsReceived) {
    std::atomic<std::size_t> used{0}, peak{0};
    BodyBudget budget(256 * 1024, used, peak);
    std::vector<std::unique_ptr<Harness>> idle;
    for (int i = 0; i < 8; ++i) {
        auto h = std::make_unique<Harness>();
        h->opts.max_body_bytes = 1 << 20;
        h->bodies = &budget;
        h->build();
        EXPECT_EQ(h->feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n"),
                  Step::Kind::read);
        idle.push_back(std::move(h));
    }
    EXPECT_EQ(used.load(), 0u) << "storage was reserved for bytes that have not come";
    // Those that come are charged at most twice, and never past what was announced.
    EXPECT_EQ(idle[0]->feed(std::string(3000, 'a')), Step::Kind::read);
    EXPECT_GE(used.load(), 3000u);
    EXPECT_LE(used.load(), 6000u);
    // 150000 bytes, then 50000 more: doubling would make 300000 of room; 200000 were
    // announced.
    EXPECT_EQ(idle[1]->feed(std::string(150000, 'b')), Step::Kind::read);
    EXPECT_EQ(idle[1]->feed(std::string(49000, 'b')), Step::Kind::read);
    EXPECT_LE(used.load(), 6000u + 200000u) << "room past the announced length";
    // Another client's upload still fits.
    Harness other;
    other.bodies = &budget;
    other.build();
    EXPECT_EQ(other.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"),
              Step::Kind::idle);
    auto rs = read_responses(other.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 200);
    EXPECT_EQ(rs[0].body, "hello");
    for (auto& h : idle)
        h->session->finish();
    other.session->finish();
    EXPECT_EQ(used.load(), 0u);
}

// A connection that ends with a request begun and unanswered (a client that gave up mid-head
// or mid-upload) leaves an access-log line and a metric, as nginx logs 400 for a client that
// "prematurely closed connection"; one that ends between requests leaves none.
TEST(HttpSession, ARequestTheClientAbandonedIsLogged) {
    Harness head;
    head.build();
    EXPECT_EQ(head.feed("GET /abandoned HTTP/1.1\r\nHost: h\r\nX-Half"), Step::Kind::read);
    head.session->finish();
    ASSERT_EQ(head.log.size(), 1u);
    EXPECT_EQ(head.log[0].status, 400);
    EXPECT_EQ(head.log[0].bytes, 0u);
    EXPECT_FALSE(head.log[0].complete) << "nothing was sent";
    EXPECT_EQ(head.log_lines[0], "GET /abandoned HTTP/1.1");

    Harness upload;
    upload.build();
    EXPECT_EQ(upload.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123"),
              Step::Kind::read);
    upload.session->finish();
    ASSERT_EQ(upload.log.size(), 1u);
    EXPECT_EQ(upload.log[0].status, 400);
    std::uint64_t counted = 0;
    upload.metrics.for_each([&](const HubRequestMetrics::Series& s) {
        if (s.status == 400)
            for (const auto& b : s.duration.buckets)
                counted += b.load();
    });
    EXPECT_EQ(counted, 1u);

    Harness between;
    between.build();
    EXPECT_EQ(between.feed(std::string(kGet)), Step::Kind::idle);
    between.session->finish();
    EXPECT_EQ(between.log.size(), 1u) << "only the request answered";
}

// With the budget for bodies full, a request that asks "100 Continue" gets its 503 at once,
// not an invitation to upload what would be refused on its way.
TEST(HttpSession, AFullBudgetAnswers503BeforeInvitingTheBody) {
    std::atomic<std::size_t> used{0}, peak{0};
    BodyBudget budget(100 * 1024, used, peak);
    ASSERT_TRUE(budget.take(90 * 1024));  // other uploads' bytes
    Harness h;
    h.bodies = &budget;
    h.build();
    EXPECT_EQ(h.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 50000\r\n"
                     "Expect: 100-continue\r\n\r\n"),
              Step::Kind::close);
    const std::string out = h.transport.all();
    EXPECT_EQ(out.find("100 Continue"), std::string::npos) << out;
    auto rs = read_responses(out);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 503);
    EXPECT_EQ(rs[0].header("Retry-After").value_or(""), "1");
    // One that fits is invited.
    Harness small;
    small.bodies = &budget;
    small.build();
    EXPECT_EQ(small.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                         "Expect: 100-continue\r\n\r\n"),
              Step::Kind::read);
    EXPECT_NE(small.transport.all().find("100 Continue"), std::string::npos);
    small.session->finish();
    budget.give_back(90 * 1024);
    // A chunked one, with a budget smaller than 64 KiB and nothing in use, is invited.
    std::atomic<std::size_t> used2{0}, peak2{0};
    BodyBudget tiny(32 * 1024, used2, peak2);
    Harness chunked;
    chunked.bodies = &tiny;
    chunked.build();
    EXPECT_EQ(chunked.feed("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                           "Expect: 100-continue\r\n\r\n"),
              Step::Kind::read);
    EXPECT_NE(chunked.transport.all().find("100 Continue"), std::string::npos)
        << chunked.transport.all();
    EXPECT_EQ(chunked.feed("5\r\nhello\r\n0\r\n\r\n"), Step::Kind::idle);
    chunked.session->finish();
}

TEST(HttpSession, HandlerAsksToClose) {
    Harness h;
    h.build();
    EXPECT_EQ(h.feed("GET /bye HTTP/1.1\r\nHost: h\r\n\r\n" + std::string(kGet)),
              Step::Kind::close);
    auto rs = read_responses(h.transport.all());
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].header("Connection").value_or(""), "close");
    EXPECT_EQ(rs[0].headers.size(), 5u) << "one Connection header, ours";
}

TEST(HttpResponse, BracesAreAnEmptyBody) {
    // `{}` picks the C string overload (an identity conversion beats std::string's): it must
    // be an empty body, not a std::string built from a null pointer (which throws).
    const Response none{204, {}};
    EXPECT_EQ(none.status(), 204);
    EXPECT_EQ(none.body(), "");
    const Response json(200, {}, "application/json");
    EXPECT_EQ(json.body(), "");
    EXPECT_EQ(json.content_type(), "application/json");
}
