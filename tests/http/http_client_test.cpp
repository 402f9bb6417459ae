// weft::http::Client against scripted servers in the same runtime (a fiber per connection that
// reads a request and writes canned bytes): framing (Content-Length, chunked with extensions and
// trailers, close-delimited, 1xx, HEAD), keep-alive reuse counted by accepts, the retry of an
// idempotent request on a connection the server had closed, redirects, limits, timeouts, the
// fiber's deadline, errors that say what went wrong, and URL parsing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "client_conn.hpp"
#include "client_proxy.hpp"
#include "fiber_test.hpp"
#include "weft/core/weft.hpp"
#include "weft/http/client.hpp"

using namespace std::chrono_literals;
using weft::http::Client;
using weft::http::ClientErrc;
using weft::http::ClientOptions;
using weft::http::ClientRequest;

namespace {

// This process's many test servers, each on a port of its own, have their series read by
// port: name them all (a hub names 64 servers, then counts the others as _OTHER).
[[maybe_unused]] const std::size_t kServersNamedBefore =
    weft::http::detail::set_client_metric_servers(std::size_t{1} << 20);

// Reads one request head (and a Content-Length body) from `s`; false at EOF.
bool read_request(weft::TcpStream& s, std::string& buf, std::string* head_out = nullptr) {
    char tmp[4096];
    for (;;) {
        const auto end = buf.find("\r\n\r\n");
        if (end != std::string::npos) {
            std::string head = buf.substr(0, end);
            std::size_t len = 0;
            if (auto cl = head.find("Content-Length: "); cl != std::string::npos)
                len = std::stoul(head.substr(cl + 16));
            while (buf.size() < end + 4 + len) {
                auto n = s.recv(std::span<char>(tmp, sizeof tmp), 5s);
                if (!n || *n == 0) return false;
                buf.append(tmp, *n);
            }
            if (head_out) *head_out = head;
            buf.erase(0, end + 4 + len);
            return true;
        }
        auto n = s.recv(std::span<char>(tmp, sizeof tmp), 5s);
        if (!n || *n == 0) return false;
        buf.append(tmp, *n);
    }
}

// A server on 127.0.0.1:0 whose connections run `script(stream, connection_number)`.
class ScriptedServer {
  public:
    using Script = std::function<void(weft::TcpStream&, int)>;
    explicit ScriptedServer(Script script)
        : listener_(*weft::TcpListener::bind(*weft::SocketAddress::parse("127.0.0.1:0"))),
          script_(std::move(script)) {
        acceptor_ = weft::spawn("scripted-accept", [this] {
            for (;;) {
                auto s = listener_.accept();
                if (!s) return;
                const int n = ++accepts_;
                weft::spawn("scripted-conn", [this, n, st = std::move(*s)]() mutable {
                    script_(st, n);
                }).detach();
            }
        });
    }
    ~ScriptedServer() {
        listener_.close();
        acceptor_.join();
    }
    std::string url(std::string_view path = "/") const {
        return "http://127.0.0.1:" + std::to_string(listener_.local_address()->port()) +
               std::string(path);
    }
    int accepts() const { return accepts_; }

  private:
    weft::TcpListener listener_;
    Script script_;
    int accepts_ = 0;
    weft::Fiber<void> acceptor_;
};

// Answers every request on a connection with `response` (keep-alive).
ScriptedServer::Script always(std::string response) {
    return [response](weft::TcpStream& s, int) {
        std::string buf;
        while (read_request(s, buf))
            if (!s.send(response)) return;
    };
}

}  // namespace

TEST(ClientUrl, ParsesAndResolves) {
    using weft::http::detail::parse_url;
    auto u = parse_url("https://Example.COM/a/b?x=1#frag");
    ASSERT_TRUE(u);
    EXPECT_TRUE(u->https);
    EXPECT_EQ(u->host, "example.com");
    EXPECT_EQ(u->port, 443);
    EXPECT_EQ(u->target, "/a/b?x=1");
    EXPECT_EQ(u->host_header, "example.com");
    EXPECT_EQ(u->origin, "https://example.com:443");
    auto v6 = parse_url("http://[::1]:8080");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->port, 8080);
    EXPECT_EQ(v6->target, "/");
    EXPECT_EQ(v6->host_header, "[::1]:8080");
    EXPECT_EQ(parse_url("http://h?q")->target, "/?q");
    // A request-target is ASCII: other bytes go percent-encoded, those already escaped as they
    // are.
    EXPECT_EQ(parse_url("http://h/caf\xc3\xa9/%C0?q=\xff")->target, "/caf%C3%A9/%C0?q=%FF");
    for (const char* bad : {"ftp://x/", "http://", "http://a b/", "http://h:0/", "http://h:99999/",
                            "http://u@h/", "http://h/a b", "http://[::1/", "//h/"}) {
        EXPECT_FALSE(parse_url(bad)) << bad;
    }
    auto base = *parse_url("http://h:81/dir/page?x");
    EXPECT_EQ(weft::http::detail::resolve_location(base, "/abs")->to_string(), "http://h:81/abs");
    EXPECT_EQ(weft::http::detail::resolve_location(base, "rel")->to_string(),
              "http://h:81/dir/rel");
    EXPECT_EQ(weft::http::detail::resolve_location(base, "https://o/x")->to_string(),
              "https://o/x");
    EXPECT_EQ(weft::http::detail::resolve_location(base, "?page=2")->to_string(),
              "http://h:81/dir/page?page=2");
    // RFC 3986 5.2: dot segments resolved, the scheme's case ignored, an empty reference is
    // the base document, fragments dropped, and a scheme that is not HTTP refused.
    using weft::http::detail::resolve_location;
    EXPECT_EQ(resolve_location(base, "../up?a=1")->to_string(), "http://h:81/up?a=1");
    EXPECT_EQ(resolve_location(base, "./same/./x/../y")->to_string(), "http://h:81/dir/same/y");
    EXPECT_EQ(resolve_location(base, "/a/b/../../../c")->to_string(), "http://h:81/c");
    EXPECT_EQ(resolve_location(base, "HTTPS://O/x")->to_string(), "https://o/x");
    EXPECT_EQ(resolve_location(base, "")->to_string(), "http://h:81/dir/page?x");
    EXPECT_EQ(resolve_location(base, "other#frag")->to_string(), "http://h:81/dir/other");
    auto ftp = resolve_location(base, "ftp://files/x");
    ASSERT_FALSE(ftp);
    EXPECT_EQ(ftp.error(), "a redirect to a 'ftp:' URL, which is not HTTP");
}

FIBER_TEST(Client, LengthChunkedAndCloseDelimitedBodies) {
    Client c;
    ScriptedServer length(always("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
    auto r = c.get(length.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->reason, "OK");
    EXPECT_EQ(r->body, "hello");
    EXPECT_EQ(r->header("content-length"), "5");

    ScriptedServer chunked(
        always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "4;ext=1\r\nwe f\r\n1\r\nt\r\n0\r\nX-Trailer: yes\r\n\r\n"));
    r = c.get(chunked.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "we ft");

    ScriptedServer closing([](weft::TcpStream& s, int) {
        std::string buf;
        if (read_request(s, buf)) (void)s.send("HTTP/1.0 200 OK\r\n\r\nuntil the end");
    });
    r = c.get(closing.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->version_minor, 0);
    EXPECT_EQ(r->body, "until the end");

    // A 100 Continue before the answer is skipped; HEAD and 204 have no body.
    ScriptedServer interim(
        always("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"));
    r = c.get(interim.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 204);
    EXPECT_EQ(r->header("x-a"), "b");
    ClientRequest head;
    head.method = "HEAD";
    head.url = length.url();
    r = c.request(head);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "");
}

FIBER_TEST(Client, AHeadWhoseLinesEndWithABareLfIsRead) {
    // RFC 9112 §2.2 lets a recipient take a lone LF for a line end; curl, Go and Python do.
    Client c;
    ScriptedServer lf(always("HTTP/1.1 200 OK\nContent-Length: 2\nX-A:  b \n\nok"));
    for (int i = 0; i < 2; ++i) {
        auto r = c.get(lf.url());
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->reason, "OK");
        EXPECT_EQ(r->header("x-a"), "b");
        EXPECT_EQ(r->body, "ok");
    }
    EXPECT_EQ(lf.accepts(), 1) << "the body was framed right: the connection was reused";
    ScriptedServer mixed(always("HTTP/1.1 201 Created\r\nContent-Length: 3\nX-B: c\r\n\nyes"));
    auto r = c.get(mixed.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->header("x-b"), "c");
    EXPECT_EQ(r->body, "yes");
    // A CR alone is not a line end: still refused.
    ScriptedServer cr(always("HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok"));
    r = c.get(cr.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::protocol) << r.error().message();
}

FIBER_TEST(Client, AFoldedHeaderLineIsReadAsASpace) {
    // RFC 9112 §5.2: a user agent replaces an obs-fold with a space in the field it continues.
    Client c;
    ScriptedServer folded(
        always("HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\n\tc \r\nContent-Length: 2\r\n\r\nok"));
    auto r = c.get(folded.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->header("x-long"), "a b c");
    EXPECT_EQ(r->header("content-length"), "2");
    EXPECT_EQ(r->body, "ok");
    // A fold with no field before it continues nothing.
    ScriptedServer first(always("HTTP/1.1 200 OK\r\n x\r\nContent-Length: 2\r\n\r\nok"));
    r = c.get(first.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::protocol) << r.error().message();
}

FIBER_TEST(Client, ChunkedFramingWhoseLinesEndWithABareLfIsRead) {
    Client c;
    ScriptedServer lf(
        always("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n3;x=1\r\n!!!\n0\nT: 1\n\n"));
    for (int i = 0; i < 2; ++i) {
        auto r = c.get(lf.url());
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->body, "ok!!!");
    }
    EXPECT_EQ(lf.accepts(), 1) << "the body's end was found: the connection was reused";
}

FIBER_TEST(Client, ATlsHandshakeThatNeverEndsSaysSo) {
    // A server that takes the connection and never answers the ClientHello.
    ScriptedServer silent([](weft::TcpStream& s, int) {
        char b[4096];
        while (s.recv(std::span<char>(b, sizeof b), 2s).value_or(0) > 0) {
        }
    });
    ClientOptions o;
    o.connect_timeout = 200ms;
    Client c(o);
    auto r = c.get("https://" + silent.url().substr(7));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::timed_out);
    EXPECT_NE(r.error().message().find("the TLS handshake with 127.0.0.1 did not end in time"),
              std::string::npos)
        << r.error().message();
}

FIBER_TEST(Client, KeepAliveReusesOneConnectionAndStreams) {
    Client c;
    ScriptedServer s(always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    for (int i = 0; i < 5; ++i) {
        auto r = c.get(s.url());
        ASSERT_TRUE(r) << r.error().message();
    }
    EXPECT_EQ(s.accepts(), 1) << "the pool did not keep the connection";
    // Streaming: the body in pieces; read to the end, the connection goes back to the pool.
    ScriptedServer big(
        always("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'b')));
    for (int i = 0; i < 2; ++i) {
        ClientRequest req;
        req.url = big.url();
        auto st = c.stream(req);
        ASSERT_TRUE(st) << st.error().message();
        EXPECT_EQ(st->status(), 200);
        std::size_t total = 0, pieces = 0;
        char buf[4096];
        for (;;) {
            auto n = st->read(buf);
            ASSERT_TRUE(n);
            if (*n == 0) break;
            total += *n;
            ++pieces;
        }
        EXPECT_EQ(total, 100000u);
        EXPECT_GT(pieces, 10u);
    }
    EXPECT_EQ(big.accepts(), 1);
}

FIBER_TEST(Client, RetriesAnIdempotentRequestOnAConnectionTheServerClosed) {
    Client c;
    // Each connection answers one request, then the server closes it without saying so.
    std::atomic<int> requests{0};
    ScriptedServer s([&](weft::TcpStream& st, int) {
        std::string buf;
        if (!read_request(st, buf)) return;
        ++requests;
        (void)st.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
        (void)weft::sleep_for(20ms);  // the client has pooled it by now
    });
    ASSERT_TRUE(c.get(s.url()));
    (void)weft::sleep_for(50ms);  // the server has closed the pooled connection
    auto again = c.get(s.url());
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->body, "x");
    // The dead connection was noticed (before sending, or by the failed attempt).
    EXPECT_EQ(s.accepts(), 2);
    EXPECT_EQ(requests.load(), 2);

    // A server that closes after reading the request, without answering: a POST is not
    // retried (it may have had an effect), and the error says the server closed.
    std::atomic<int> posts{0};
    ScriptedServer rude([&](weft::TcpStream& st, int) {
        std::string buf;
        if (read_request(st, buf)) ++posts;
    });
    ClientRequest post;
    post.method = "POST";
    post.url = rude.url();
    post.body = "data";
    auto r = c.request(post);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::closed);
    EXPECT_EQ(posts.load(), 1);
    // The error names the server it came from: a handler calling several says which failed.
    EXPECT_NE(r.error().message().find("(" + rude.url().substr(0, rude.url().size() - 1) + ")"),
              std::string::npos)
        << r.error().message();

    // A POST its caller marks safe to repeat (Idempotency-Key, as Go's transport reads it) is
    // retried as a GET is. The server answers a connection's first request, then closes it
    // when the next one has come (a keep-alive timeout that fell as it was sent): the client
    // sees no sign of it before sending.
    for (const bool key : {false, true}) {
        std::atomic<int> answered{0};
        ScriptedServer once([&](weft::TcpStream& st, int) {
            std::string buf;
            if (!read_request(st, buf)) return;
            ++answered;
            (void)st.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            buf.clear();
            (void)read_request(st, buf);  // then closes, unanswered
        });
        Client fresh;
        ASSERT_TRUE(fresh.get(once.url()));
        ClientRequest p;
        p.method = "POST";
        p.url = once.url();
        p.body = "data";
        if (key) p.headers = {{"Idempotency-Key", "abc123"}};
        auto r = fresh.request(p);
        if (!key) {
            ASSERT_FALSE(r) << "a POST without a key is not sent twice";
            EXPECT_EQ(r.error().code, ClientErrc::closed) << r.error().message();
            EXPECT_EQ(once.accepts(), 1);
            continue;
        }
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->body, "ok");
        EXPECT_EQ(answered.load(), 2);
        EXPECT_EQ(once.accepts(), 2);
    }
}

FIBER_TEST(Client, RedirectsAreOffByDefaultAndBounded) {
    ScriptedServer target(always("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"));
    const std::string loc = target.url("/final");
    ScriptedServer hop(
        always("HTTP/1.1 302 Found\r\nLocation: " + loc + "\r\nContent-Length: 0\r\n\r\n"));
    Client plain;
    auto r = plain.get(hop.url());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 302);
    ClientOptions o;
    o.max_redirects = 3;
    Client follow(o);
    r = follow.get(hop.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "done");
    ScriptedServer loop(
        always("HTTP/1.1 301 Moved\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"));
    r = follow.get(loop.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::too_many_redirects);
}

FIBER_TEST(Client, AStreamFollowsRedirectsAsARequestDoes) {
    // The final hop's body is read in pieces, from the stream.
    std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n";
    ok.append(20000, 't');
    ScriptedServer target(always(ok));
    // A short redirect body is read to its end: the hop's connection is reused.
    ScriptedServer hop(always("HTTP/1.1 302 Found\r\nLocation: " + target.url("/final") +
                              "\r\nContent-Length: 5\r\n\r\nmoved"));
    ClientOptions o;
    o.max_redirects = 3;
    Client c(o);
    auto read_all = [](weft::http::ClientStream& st) {
        std::string body;
        char buf[4096];
        for (;;) {
            auto n = st.read(buf);
            if (!n || *n == 0) break;
            body.append(buf, *n);
        }
        return body;
    };
    for (int i = 0; i < 2; ++i) {
        ClientRequest req;
        req.url = hop.url("/start");
        auto st = c.stream(req);
        ASSERT_TRUE(st) << st.error().message();
        EXPECT_EQ(st->status(), 200);
        const std::string body = read_all(*st);
        EXPECT_EQ(body.size(), 20000u);
        EXPECT_EQ(body.find_first_not_of('t'), std::string::npos) << "not the final hop's body";
    }
    EXPECT_EQ(hop.accepts(), 1) << "the redirect's connection was not kept";
    EXPECT_EQ(target.accepts(), 1);

    // Off by default: the redirect itself comes back, its body readable.
    Client plain;
    ClientRequest req;
    req.url = hop.url("/start");
    auto st = plain.stream(req);
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->status(), 302);
    EXPECT_EQ(read_all(*st), "moved");

    // A long redirect body is not read: its connection closes. A loop is bounded.
    std::string long_redirect = "HTTP/1.1 307 Temporary Redirect\r\nLocation: ";
    long_redirect += target.url("/final");
    long_redirect += "\r\nContent-Length: 100000\r\n\r\n";
    long_redirect.append(100000, 'x');
    ScriptedServer long_hop(always(long_redirect));
    for (int i = 0; i < 2; ++i) {
        req.url = long_hop.url();
        st = c.stream(req);
        ASSERT_TRUE(st) << st.error().message();
        EXPECT_EQ(st->status(), 200);
    }
    EXPECT_EQ(long_hop.accepts(), 2);
    ScriptedServer loop(
        always("HTTP/1.1 301 Moved\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"));
    req.url = loop.url();
    st = c.stream(req);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ClientErrc::too_many_redirects);
}

FIBER_TEST(Client, ARedirectKeepsCredentialsToTheirOriginAndBodyFieldsToTheirBody) {
    std::vector<std::string> heads;  // what the final hop received
    ScriptedServer target([&heads](weft::TcpStream& s, int) {
        std::string buf, head;
        while (read_request(s, buf, &head)) {
            heads.push_back(head);
            if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return;
        }
    });
    // Another origin (another port): 303 after a POST, to the target.
    ScriptedServer hop(always("HTTP/1.1 303 See Other\r\nLocation: " + target.url("/final") +
                              "\r\nContent-Length: 0\r\n\r\n"));
    ClientOptions o;
    o.max_redirects = 3;
    Client c(o);
    ClientRequest req;
    req.method = "POST";
    req.url = hop.url("/form");
    req.body = "a=1";
    req.headers = {{"Authorization", "Bearer secret"},
                   {"Cookie", "s=1"},
                   {"Content-Type", "application/x-www-form-urlencoded"},
                   {"X-Trace", "t1"}};
    auto r = c.request(req);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_TRUE(heads[0].starts_with("GET /final ")) << heads[0];
    for (const char* gone : {"Authorization", "Cookie", "Content-Type", "Content-Length"})
        EXPECT_EQ(heads[0].find(gone), std::string::npos) << gone << " in:\n" << heads[0];
    EXPECT_NE(heads[0].find("X-Trace: t1"), std::string::npos) << heads[0];

    // Within one origin the credentials stay; a HEAD answered with 303 stays a HEAD.
    ScriptedServer self([](weft::TcpStream& s, int) {
        std::string buf, head;
        while (read_request(s, buf, &head)) {
            const bool first = head.find(" /start ") != std::string::npos;
            const bool auth = head.find("Authorization: Bearer secret") != std::string::npos;
            const std::string method = head.substr(0, head.find(' '));
            const std::string answer =
                first
                    ? "HTTP/1.1 303 See Other\r\nLocation: /end\r\nContent-Length: 0\r\n\r\n"
                    : "HTTP/1.1 200 OK\r\nX-Method: " + method +
                          "\r\nX-Auth: " + (auth ? "yes" : "no") + "\r\nContent-Length: 0\r\n\r\n";
            if (!s.send(answer)) return;
        }
    });
    ClientRequest same;
    same.method = "HEAD";
    same.url = self.url("/start");
    same.headers = {{"Authorization", "Bearer secret"}};
    r = c.request(same);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->header("x-method").value_or(""), "HEAD");
    EXPECT_EQ(r->header("x-auth").value_or(""), "yes");
}

FIBER_TEST(Client, OneHostOnTwoPortsIsTwoServers) {
    // The name's lookup is cached, not its port: each URL reaches its own port.
    ScriptedServer a(always("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"));
    ScriptedServer b(always("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"));
    auto port_of = [](const std::string& url) { return url.substr(url.rfind(':')); };
    Client c;
    auto ra = c.get("http://localhost" + port_of(a.url()));
    ASSERT_TRUE(ra) << ra.error().message();
    EXPECT_EQ(ra->body, "a");
    auto rb = c.get("http://localhost" + port_of(b.url()));
    ASSERT_TRUE(rb) << rb.error().message();
    EXPECT_EQ(rb->body, "b");
}

FIBER_TEST(Client, AnAnswerWithoutABodyThatClosesIsNotPooled) {
    // 204 with Connection: close, the close itself a moment later: the next request (a POST,
    // which is never retried) must not go out on that connection.
    ScriptedServer closing([](weft::TcpStream& s, int) {
        std::string buf;
        if (!read_request(s, buf)) return;
        (void)s.send("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        (void)weft::sleep_for(300ms);
    });
    Client c;
    for (int i = 0; i < 2; ++i) {
        ClientRequest post;
        post.method = "POST";
        post.url = closing.url();
        post.body = "x";
        auto r = c.request(post);
        ASSERT_TRUE(r) << i << ": " << r.error().message();
        EXPECT_EQ(r->status, 204);
    }
    EXPECT_EQ(closing.accepts(), 2);
}

FIBER_TEST(Client, IdleConnectionsOfOriginsNotCalledAgainStillClose) {
    // A program that calls many hosts: an origin it does not call again must not keep its
    // idle connection open for good.
    bool a_closed = false;
    ScriptedServer a([&a_closed](weft::TcpStream& s, int) {
        std::string buf;
        while (read_request(s, buf))
            if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")) break;
        a_closed = true;  // the client closed it
    });
    ScriptedServer b(always("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"));
    ClientOptions o;
    o.idle_timeout = 50ms;
    Client c(o);
    ASSERT_TRUE(c.get(a.url()));
    (void)weft::sleep_for(1100ms);  // past the idle timeout, and past the sweeps' period
    ASSERT_TRUE(c.get(b.url()));
    for (int i = 0; i < 100 && !a_closed; ++i)
        (void)weft::sleep_for(10ms);
    EXPECT_TRUE(a_closed);
}

FIBER_TEST(Client, ASwitchedConnectionIsNotPooled) {
    // After a 101 the connection speaks another protocol: the next request (a POST, never
    // retried) must not go out on it.
    ScriptedServer upgrading([](weft::TcpStream& s, int) {
        std::string buf;
        if (!read_request(s, buf)) return;
        (void)s.send(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n");
        (void)weft::sleep_for(300ms);
    });
    Client c;
    for (int i = 0; i < 2; ++i) {
        ClientRequest post;
        post.method = "POST";
        post.url = upgrading.url();
        auto r = c.request(post);
        ASSERT_TRUE(r) << i << ": " << r.error().message();
        EXPECT_EQ(r->status, 101);
    }
    EXPECT_EQ(upgrading.accepts(), 2);
}

FIBER_TEST(Client, TheRetryAfterAStaleConnectionDials) {
    // Two connections pooled; then the server drops each of them at its next request without
    // an answer (as after a firewall dropped the flow). The retry must not take the other
    // pooled one, as dead: it dials a third, which answers.
    ScriptedServer flaky([](weft::TcpStream& s, int n) {
        std::string buf;
        if (!read_request(s, buf)) return;
        if (n <= 2) (void)weft::sleep_for(50ms);  // both first requests at once: two connections
        if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return;
        if (n <= 2)
            (void)read_request(s, buf);  // the next request: dropped unanswered
        else
            while (read_request(s, buf) &&
                   s.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) {
            }
    });
    Client c;
    auto first = weft::spawn("first", [&] { return c.get(flaky.url()).ok(); });
    auto second = weft::spawn("second", [&] { return c.get(flaky.url()).ok(); });
    ASSERT_TRUE(first.join());
    ASSERT_TRUE(second.join());
    ASSERT_EQ(flaky.accepts(), 2);
    auto r = c.get(flaky.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "ok");
    EXPECT_EQ(flaky.accepts(), 3);
}

FIBER_TEST(Client, AHeadJustOverTheLimitIsTooLarge) {
    ClientOptions o;
    o.max_header_bytes = 100;
    o.read_timeout = 2s;
    Client c(o);
    for (std::size_t over : {1, 2, 3, 4}) {
        // A head (its blank line included) of exactly 100 + `over` bytes, then a body.
        std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Pad: ";
        head += std::string(100 + over - head.size() - 4, 'p');
        head += "\r\n\r\n";
        ASSERT_EQ(head.size(), 100 + over);
        ScriptedServer s(always(head + "body"));
        auto r = c.get(s.url());
        ASSERT_FALSE(r) << over;
        EXPECT_EQ(r.error().code, ClientErrc::too_large) << over << ": " << r.error().message();
    }
}

FIBER_TEST(Client, LimitsTimeoutsAndClearErrors) {
    ClientOptions o;
    o.max_response_bytes = 1000;
    o.max_header_bytes = 2048;
    o.read_timeout = 100ms;
    Client c(o);
    ScriptedServer big(
        always("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x')));
    auto r = c.get(big.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::too_large);
    // Refused at its head, by its Content-Length: no body read for nothing.
    EXPECT_NE(r.error().message().find("response body of 5000 bytes (Content-Length) over 1000 "
                                       "bytes"),
              std::string::npos)
        << r.error().message();
    // A body in a transfer coding the client does not decode is refused, not handed over
    // still encoded.
    ScriptedServer gzipped(
        always("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"));
    r = c.get(gzipped.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::protocol);
    EXPECT_NE(r.error().message().find("unsupported transfer coding 'gzip'"), std::string::npos)
        << r.error().message();
    ScriptedServer twice(always(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"));
    r = c.get(twice.url());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("chunked applied more than once"), std::string::npos)
        << r.error().message();
    ScriptedServer fat_head(always("HTTP/1.1 200 OK\r\nX-Big: " + std::string(4000, 'h') +
                                   "\r\nContent-Length: 0\r\n\r\n"));
    r = c.get(fat_head.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::too_large);

    // A server that stalls mid-body hits the read timeout.
    ScriptedServer stall([](weft::TcpStream& s, int) {
        std::string buf;
        if (!read_request(s, buf)) return;
        (void)s.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
        (void)weft::sleep_for(2s);
    });
    const auto t0 = weft::Clock::now();
    r = c.get(stall.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::timed_out);
    EXPECT_LT(weft::Clock::now() - t0, 1500ms);
    EXPECT_NE(r.error().message().find(
                  "reading the body: no data from the server for read_timeout (100 ms)"),
              std::string::npos)
        << r.error().message();
    // A server that keeps sending, too slowly for the call's own deadline: it is the deadline
    // that passed, not read_timeout.
    ScriptedServer drip([](weft::TcpStream& s, int) {
        std::string buf;
        if (!read_request(s, buf)) return;
        (void)s.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        for (int i = 0; i < 90 && s.send("x"); ++i)
            (void)weft::sleep_for(20ms);
    });
    ClientOptions patient = o;
    patient.read_timeout = 1s;  // far more than the drip's gaps, even on a loaded machine
    Client pc(patient);
    ClientRequest dripping;
    dripping.url = drip.url();
    dripping.deadline = weft::Deadline(300ms);
    r = pc.request(dripping);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::timed_out);
    EXPECT_NE(r.error().message().find("reading the body: the call's deadline passed"),
              std::string::npos)
        << r.error().message();

    // Garbage is a protocol error; a bad chunk size too.
    ScriptedServer garbage(always("SSH-2.0-OpenSSH\r\n\r\n"));
    r = c.get(garbage.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::protocol);
    ScriptedServer bad_chunk(
        always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n"));
    r = c.get(bad_chunk.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::protocol);

    // Nothing listens; a name that does not resolve; not a URL.
    r = c.get("http://127.0.0.1:1/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::connect);
    EXPECT_NE(r.error().message().find("127.0.0.1"), std::string::npos) << r.error().message();
    r = c.get("http://no-such-host.invalid/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::dns);
    r = c.get("mailto:x@y");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::bad_url);
    // A password in a refused URL is not repeated (the message ends in 502 bodies and logs).
    r = c.get("http://user:s3cret@127.0.0.1:1/a@b?c=d@e");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::bad_url);
    EXPECT_EQ(r.error().message(),
              "bad_url: user information in a URL is not supported: "
              "http://***@127.0.0.1:1/a@b?c=d@e");
    ClientRequest evil;
    evil.url = big.url();
    evil.headers = {{"X-A", "1\r\nInjected: yes"}};
    r = c.request(evil);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::bad_request) << r.error().message();
    // The scheme is case-insensitive, as curl and Go read it.
    r = c.get("HTTP://" + big.url().substr(7));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::too_large) << r.error().message();
    // A CA file that cannot be read says why, in the system's words.
    ClientOptions missing_ca;
    missing_ca.ca_file = "/nonexistent-weft-test/ca.pem";
    Client ca_client(missing_ca);
    r = ca_client.get("https://" + big.url().substr(7));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("'/nonexistent-weft-test/ca.pem': No such file or "
                                       "directory"),
              std::string::npos)
        << r.error().message();
}

// Interim responses are bounded (a server that sends 103s without end would hold the call),
// and so is a chunked body's trailer section as a whole, not line by line.
FIBER_TEST(Client, InterimResponsesAndTrailersAreBounded) {
    ClientOptions o;
    o.max_header_bytes = 1024;
    Client c(o);
    std::string hints;
    for (int i = 0; i < 5; ++i)
        hints += "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n";
    ScriptedServer five(always(hints + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    auto r = c.get(five.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "ok");
    ScriptedServer six(always(hints + "HTTP/1.1 103 Early Hints\r\n\r\n" +
                              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    r = c.get(six.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::protocol);
    EXPECT_NE(r.error().message().find("interim"), std::string::npos) << r.error().message();

    std::string trailers;
    for (int i = 0; i < 200; ++i)
        trailers += "X-T" + std::to_string(i) + ": v\r\n";  // short lines, 2 KiB in all
    ScriptedServer long_trailer(
        always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "2\r\nok\r\n0\r\n" +
               trailers + "\r\n"));
    r = c.get(long_trailer.url());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::too_large);
}

// Transfer-Encoding in an HTTP/1.0 answer, or beside a Content-Length, is faulty framing: the
// body is read by its chunks, and the connection is not used again.
FIBER_TEST(Client, FaultyFramingIsReadButNotPooled) {
    Client c;
    for (const char* head :
         {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n",
          "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"}) {
        ScriptedServer s(always(std::string(head) + "\r\n2\r\nok\r\n0\r\n\r\n"));
        for (int i = 0; i < 2; ++i) {
            auto r = c.get(s.url());
            ASSERT_TRUE(r) << r.error().message();
            EXPECT_EQ(r->body, "ok");
        }
        EXPECT_EQ(s.accepts(), 2) << head;
    }
}

// A request that cannot be sent (a bad method or field) is refused before any connection is
// dialled for it; zero connect and read timeouts mean no bound of their own.
FIBER_TEST(Client, ABadRequestDialsNothingAndZeroTimeoutsAreNoBound) {
    ScriptedServer s(always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    Client c;
    ClientRequest bad;
    bad.url = s.url();
    bad.headers = {{"X-A", "1\r\nInjected: yes"}};
    auto r = c.request(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::bad_request);
    bad.headers.clear();
    bad.method = "GET /x";
    r = c.request(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::bad_request);
    EXPECT_EQ(s.accepts(), 0);
    ClientOptions o;
    o.connect_timeout = std::chrono::nanoseconds::zero();
    o.read_timeout = std::chrono::nanoseconds::zero();
    Client unbounded(o);
    r = unbounded.get(s.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "ok");
}

// A server that answers an upload before taking all of it (413, 401) and closes: the upload
// fails (the close resets the connection), but the answer that came is the response.
FIBER_TEST(Client, AnAnswerBeforeTheUploadEndsIsTheResponse) {
    ScriptedServer s([](weft::TcpStream& st, int) {
        std::string buf;
        char tmp[4096];
        while (buf.find("\r\n\r\n") == std::string::npos) {
            auto n = st.recv(std::span<char>(tmp, sizeof tmp), 5s);
            if (!n || *n == 0) return;
            buf.append(tmp, *n);
        }
        (void)st.send(
            "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
            "too large");
        (void)weft::sleep_for(50ms);  // the answer is on its way; then close with bytes unread
    });
    Client c;
    ClientRequest req;
    req.method = "POST";
    req.url = s.url();
    req.body.assign(32u << 20, 'u');  // more than the socket buffers take
    auto r = c.request(req);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->body, "too large");
}

// An idempotent upload on a pooled connection the server resets as it arrives is retried on a
// new connection, and that one, healthy, goes back to the pool.
FIBER_TEST(Client, TheConnectionOfARetriedUploadIsPooled) {
    ScriptedServer s([](weft::TcpStream& st, int n) {
        std::string buf;
        if (n == 1) {
            if (!read_request(st, buf)) return;
            (void)st.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            // The next request's head, then a reset (closed with its body unread).
            char tmp[4096];
            while (buf.find("\r\n\r\n") == std::string::npos) {
                auto r = st.recv(std::span<char>(tmp, sizeof tmp), 5s);
                if (!r || *r == 0) return;
                buf.append(tmp, *r);
            }
            return;
        }
        while (read_request(st, buf))
            (void)st.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    Client c;
    ASSERT_TRUE(c.get(s.url()));
    ClientRequest put;
    put.method = "PUT";
    put.url = s.url();
    put.body.assign(16u << 20, 'p');
    auto r = c.request(put);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "ok");
    EXPECT_EQ(s.accepts(), 2);
    r = c.get(s.url());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(s.accepts(), 2) << "the retried upload's connection was not pooled";
}

FIBER_TEST(Client, TheFibersDeadlineBoundsTheCall) {
    Client c;
    ScriptedServer slow([](weft::TcpStream& s, int) {
        std::string buf;
        if (!read_request(s, buf)) return;
        (void)weft::sleep_for(2s);
        (void)s.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    });
    const auto t0 = weft::Clock::now();
    weft::http::ClientResult<weft::http::ClientResponse> r = weft::http::ClientError{};
    {
        weft::ScopedDeadline d(80ms);
        r = c.get(slow.url());
    }
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::timed_out);
    EXPECT_LT(weft::Clock::now() - t0, 1500ms);
    EXPECT_NE(r.error().message().find("waiting for the response head: the calling fiber's "
                                       "deadline passed"),
              std::string::npos)
        << r.error().message();
    // Cancelled while waiting.
    weft::http::ClientResult<weft::http::ClientResponse> cr = weft::http::ClientError{};
    auto f = weft::spawn("caller", [&] { cr = c.get(slow.url()); });
    (void)weft::sleep_for(30ms);
    f.cancel();
    f.join();
    ASSERT_FALSE(cr);
    EXPECT_EQ(cr.error().code, ClientErrc::cancelled);
}

FIBER_TEST(Client, AtMostNConnectionsPerHost) {
    ClientOptions o;
    o.max_connections_per_host = 2;
    Client c(o);
    std::atomic<int> open{0}, most{0};
    ScriptedServer s([&](weft::TcpStream& st, int) {
        int now = ++open;
        most = std::max(most.load(), now);
        std::string buf;
        while (read_request(st, buf)) {
            (void)weft::sleep_for(10ms);
            if (!st.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) break;
        }
        --open;
    });
    std::vector<weft::Fiber<void>> fs;
    int ok = 0;
    for (int i = 0; i < 8; ++i)
        fs.push_back(weft::spawn("get", [&] { ok += c.get(s.url()).ok(); }));
    for (auto& f : fs)
        f.join();
    EXPECT_EQ(ok, 8);
    EXPECT_LE(s.accepts(), 2);
    EXPECT_LE(most.load(), 2);
}

FIBER_TEST(Client, TheBodySetsContentLengthWhateverTheCallerSaid) {
    // A proxy that forwards an inbound request's fields with another body: a stale
    // Content-Length would leave the rest of the body to be read as a second request.
    std::string head;
    ScriptedServer s([&](weft::TcpStream& st, int) {
        std::string buf;
        if (read_request(st, buf, &head)) {
            const std::string answer =
                "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(buf.size()) + "\r\n\r\n" +
                buf;
            (void)st.send(answer);  // what followed the body the server framed
        }
    });
    Client c;
    ClientRequest req;
    req.method = "POST";
    req.url = s.url();
    req.headers = {{"Content-Length", "2"}, {"X-Kept", "yes"}};
    req.body = "hello";
    auto r = c.request(req);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "") << "bytes beyond the framed body reached the server";
    EXPECT_NE(head.find("Content-Length: 5"), std::string::npos) << head;
    EXPECT_EQ(head.find("Content-Length: 2"), std::string::npos) << head;
    EXPECT_NE(head.find("X-Kept: yes"), std::string::npos) << head;
}

FIBER_TEST(Client, AnyConnectionCloseFieldKeepsTheConnectionOutOfThePool) {
    ScriptedServer s(
        always("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: "
               "0\r\n\r\n"));
    Client c;
    for (int i = 0; i < 2; ++i) {
        auto r = c.get(s.url());
        ASSERT_TRUE(r) << r.error().message();
    }
    EXPECT_EQ(s.accepts(), 2) << "a connection the server said it closes was reused";
}

FIBER_TEST(Client, AStreamThatFailedNeverEndsCleanly) {
    // 10 of 100 promised bytes, then silence: the read times out, and reading again must not
    // look like the end of the body.
    ScriptedServer s([](weft::TcpStream& st, int) {
        std::string buf;
        if (!read_request(st, buf)) return;
        (void)st.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        (void)weft::sleep_for(2s);
    });
    ClientOptions o;
    o.read_timeout = 100ms;
    Client c(o);
    ClientRequest req;
    req.url = s.url();
    auto st = c.stream(req);
    ASSERT_TRUE(st) << st.error().message();
    char buf[64];
    std::size_t got = 0;
    weft::http::ClientResult<std::size_t> n = std::size_t{0};
    while ((n = st->read(buf)) && *n > 0)
        got += *n;
    EXPECT_EQ(got, 10u);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, ClientErrc::timed_out);
    for (int i = 0; i < 2; ++i) {
        auto again = st->read(buf);
        ASSERT_FALSE(again) << "read " << *again << " after a timeout";
        EXPECT_EQ(again.error().code, ClientErrc::timed_out);
    }
}

// The series name a bounded number of servers: past the limit a new server's requests are
// counted under "_OTHER" and port 0 (URLs a handler's callers choose cannot add series without
// end); servers named already keep their series.
FIBER_TEST(Client, MetricSeriesNameABoundedNumberOfServers) {
    // Ports bound without a listener: every connect to them is refused at once.
    // Each port must be new to the series: an earlier test of this process may have named a
    // server on the same port number (the kernel hands ephemeral ports out again), and a
    // server named already keeps its series whatever the limit.
    auto named = [](std::uint16_t port) {
        bool found = false;
        weft::http::for_each_client_series([&](const weft::http::ClientSeries& x) {
            if (x.server_address == "127.0.0.1" && x.server_port == port) found = true;
        });
        return found;
    };
    std::vector<int> fds;
    std::vector<std::uint16_t> ports;
    while (ports.size() < 4) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        socklen_t len = sizeof a;
        ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
        fds.push_back(fd);  // kept bound (even when skipped): not handed out again meanwhile
        if (!named(ntohs(a.sin_port))) ports.push_back(ntohs(a.sin_port));
        ASSERT_LT(fds.size(), 1000u);
    }
    auto refused = [](std::string_view address, std::uint16_t port) {
        std::uint64_t n = 0;
        weft::http::for_each_client_series([&](const weft::http::ClientSeries& x) {
            if (x.server_address != address || x.server_port != port || x.error_type != "connect")
                return;
            for (const auto& b : x.duration->buckets)
                n += b.load();
        });
        return n;
    };
    auto get = [](std::uint16_t port) {
        Client c;
        auto r = c.get("http://127.0.0.1:" + std::to_string(port) + "/");
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ClientErrc::connect);
    };
    const std::uint64_t other_before = refused("_OTHER", 0);
    get(ports[0]);  // named while the limit allows
    const std::size_t limit = weft::http::detail::set_client_metric_servers(0);
    get(ports[1]);
    get(ports[2]);
    get(ports[0]);  // named already: its own series
    weft::http::detail::set_client_metric_servers(limit);
    get(ports[3]);
    EXPECT_EQ(refused("127.0.0.1", ports[0]), 2u);
    EXPECT_EQ(refused("127.0.0.1", ports[1]), 0u);
    EXPECT_EQ(refused("127.0.0.1", ports[2]), 0u);
    EXPECT_EQ(refused("_OTHER", 0) - other_before, 2u);
    EXPECT_EQ(refused("127.0.0.1", ports[3]), 1u);
    for (int fd : fds)
        ::close(fd);
}

FIBER_TEST(Client, AStreamIsTimedToTheEndOfItsBodyAndAFailedBodyKeepsItsStatus) {
    // Connection 1: the head at once, the body 300 ms later. Connection 2: half a body, then
    // silence until the read times out.
    ScriptedServer s([](weft::TcpStream& st, int n) {
        std::string buf;
        if (!read_request(st, buf)) return;
        (void)st.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
        if (n == 1) {
            (void)weft::sleep_for(300ms);
            (void)st.send("done");
        } else {
            (void)st.send("ha");
        }
        (void)weft::sleep_for(2s);
    });
    const std::string url = s.url();
    const auto port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
    // This server's series with status 200 and `error`: {count, seconds}. The series are the
    // process's, keyed by port, and an earlier test's server may have had this port: the figures
    // are taken from what this test adds.
    auto totals = [port](std::string_view error) {
        std::pair<std::uint64_t, double> found{0, 0};
        weft::http::for_each_client_series([&](const weft::http::ClientSeries& x) {
            if (x.server_port != port || x.status != 200 || x.error_type != error) return;
            for (const auto& b : x.duration->buckets)
                found.first += b.load();
            found.second += static_cast<double>(x.duration->sum_ns.load()) / 1e9;
        });
        return found;
    };
    const auto ok_before = totals("");
    const auto timed_out_before = totals("timed_out");
    auto series = [&](std::string_view error) {
        auto now = totals(error);
        const auto& before = error.empty() ? ok_before : timed_out_before;
        now.first -= before.first;
        now.second -= before.second;
        return now;
    };
    ClientRequest req;
    req.url = url;
    char buf[16];
    {
        Client c;
        auto st = c.stream(req);
        ASSERT_TRUE(st) << st.error().message();
        EXPECT_EQ(series("").first, 0u) << "counted when its head came";
        std::string body;
        weft::http::ClientResult<std::size_t> n = std::size_t{0};
        while ((n = st->read(buf)) && *n > 0)
            body.append(buf, *n);
        ASSERT_TRUE(n) << n.error().message();
        EXPECT_EQ(body, "done");
        const auto [count, seconds] = series("");
        EXPECT_EQ(count, 1u);
        EXPECT_GE(seconds, 0.29) << "the body's 300 ms are part of the exchange";
    }
    {
        ClientOptions o;
        o.read_timeout = 100ms;
        Client c(o);
        auto st = c.stream(req);
        ASSERT_TRUE(st) << st.error().message();
        weft::http::ClientResult<std::size_t> n = std::size_t{0};
        while ((n = st->read(buf)) && *n > 0) {
        }
        ASSERT_FALSE(n);
        (void)st->read(buf);  // the same failure again: counted once
        EXPECT_EQ(series("timed_out").first, 1u);
        // request() too: a body that fails keeps the status its head gave.
        auto r = c.request(req);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ClientErrc::timed_out);
        EXPECT_EQ(series("timed_out").first, 2u);
    }
    EXPECT_EQ(series("").first, 1u) << "a failed stream was counted again when dropped";
}

// A stream may outlive the Client that opened it (returned from a helper that made a Client of
// its own): its body still reads to the end, and dropping it is safe. (Under ASan, the old code
// read the freed client here.)
FIBER_TEST(Client, AStreamOutlivesItsClient) {
    ScriptedServer s(always("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
    auto open_one = [&] {
        Client c;
        ClientRequest req;
        req.url = s.url();
        return c.stream(req);
    };
    auto st = open_one();
    ASSERT_TRUE(st) << st.error().message();
    std::string body;
    char buf[16];
    for (;;) {
        auto n = st->read(buf);
        ASSERT_TRUE(n) << n.error().message();
        if (*n == 0) break;
        body.append(buf, *n);
    }
    EXPECT_EQ(body, "hello");
    auto dropped = open_one();  // dropped unread, after its client
    ASSERT_TRUE(dropped);
}

FIBER_TEST(Client, AStreamDroppedOnAnotherThreadGivesItsPermitBack) {
    // With one connection per host, a stream holds the only permit; dropped on a plain thread
    // (not the hub that lent it), its connection closes and the permit comes back.
    ScriptedServer s(always("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
    ClientOptions o;
    o.max_connections_per_host = 1;
    Client c(o);
    ClientRequest req;
    req.url = s.url();
    auto st = c.stream(req);
    ASSERT_TRUE(st) << st.error().message();
    std::thread([moved = std::move(*st)]() mutable { moved = weft::http::ClientStream(); }).join();
    auto r = c.get(s.url(), weft::Deadline(2s));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "hello");
    EXPECT_EQ(s.accepts(), 2) << "the dropped stream's connection was pooled";
}

FIBER_TEST(Client, AStreamIsReadOnlyOnTheHubThatOpenedIt) {
    // Its connection is that hub's: elsewhere the read is refused, and the stream still reads
    // back on its hub.
    ScriptedServer s(always("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
    Client c;
    ClientRequest req;
    req.url = s.url();
    auto st = c.stream(req);
    ASSERT_TRUE(st) << st.error().message();
    weft::http::ClientStream moved = std::move(*st);
    std::optional<ClientErrc> off_hub;
    std::thread([&] {
        char buf[8];
        auto n = moved.read(buf);
        if (!n) off_hub = n.error().code;
    }).join();
    EXPECT_EQ(off_hub, ClientErrc::bad_request);
    char buf[8];
    auto n = moved.read(buf);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(std::string(buf, *n), "hello");
    // At its end the connection is back in the pool: reading on, anywhere, gives 0.
    n = moved.read(buf);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, 0u);
    std::optional<std::size_t> off_hub_at_end;
    std::thread([&] {
        char b[8];
        if (auto m = moved.read(b)) off_hub_at_end = *m;
    }).join();
    EXPECT_EQ(off_hub_at_end, 0u);
}

FIBER_TEST(Client, AnUploadLastsAsLongAsItMoves) {
    // 24 MiB to a server that takes 64 KiB every 10 ms for the first 16 MiB (then the rest at
    // once, and answers): longer than read_timeout in all, never stalled that long.
    std::size_t got = 0;
    ScriptedServer s([&](weft::TcpStream& st, int) {
        std::string buf;
        std::vector<char> tmp(64 * 1024);
        std::size_t want = 0;
        for (;;) {
            auto n = st.recv(std::span<char>(tmp.data(), tmp.size()), 5s);
            if (!n || *n == 0) return;
            buf.append(tmp.data(), *n);
            if (want == 0) {
                const auto end = buf.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                const auto cl = buf.find("Content-Length: ");
                want = end + 4 + std::stoul(buf.substr(cl + 16));
            }
            got = buf.size();
            if (got >= want) break;
            if (got < (16u << 20)) (void)weft::sleep_for(10ms);
        }
        (void)st.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    ClientOptions o;
    o.read_timeout = 1s;
    Client c(o);
    ClientRequest req;
    req.method = "PUT";
    req.url = s.url();
    req.body.assign(24u << 20, 'u');
    const auto t0 = weft::Clock::now();
    auto r = c.request(req);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "ok");
    EXPECT_GT(weft::Clock::now() - t0, 1s) << "the upload was not slowed: the test shows nothing";
}

FIBER_TEST(Client, AStreamWithoutABodyGivesItsConnectionBackAtOnce) {
    // A 204 needs no read: the stream must not hold the origin's only connection.
    ScriptedServer s(always("HTTP/1.1 204 No Content\r\n\r\n"));
    ClientOptions o;
    o.max_connections_per_host = 1;
    Client c(o);
    ClientRequest req;
    req.url = s.url();
    auto st = c.stream(req);
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->status(), 204);
    auto r = c.get(s.url(), weft::Deadline(1s));  // the stream is still alive, unread
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 204);
    EXPECT_EQ(s.accepts(), 1) << "the second request did not reuse the connection";
    char buf[8];
    auto n = st->read(buf);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0u);
}

FIBER_TEST(Client, IdleConnectionsCloseWithoutAnotherRequest) {
    // A hub that stops calling: its idle connection still closes at its idle timeout (a sweep
    // once a second), instead of waiting for the next request.
    bool closed = false;
    ScriptedServer a([&closed](weft::TcpStream& s, int) {
        std::string buf;
        while (read_request(s, buf))
            if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")) break;
        closed = true;  // the client closed it
    });
    ClientOptions o;
    o.idle_timeout = 50ms;
    Client c(o);
    ASSERT_TRUE(c.get(a.url()));
    for (int i = 0; i < 300 && !closed; ++i)
        (void)weft::sleep_for(10ms);
    EXPECT_TRUE(closed) << "the idle connection was still open 3 s later";
}

FIBER_TEST(Client, IdleConnectionsOverEveryOriginAreBounded) {
    // At max_idle_total, the connection idle the longest closes to make room, whatever its
    // origin; the others stay pooled.
    bool first_closed = false;
    ScriptedServer a([&first_closed](weft::TcpStream& s, int) {
        std::string buf;
        while (read_request(s, buf))
            if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")) break;
        first_closed = true;
    });
    ScriptedServer b(always("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"));
    ScriptedServer c3(always("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc"));
    ClientOptions o;
    o.max_idle_total = 2;
    Client c(o);
    ASSERT_TRUE(c.get(a.url()));
    ASSERT_TRUE(c.get(b.url()));
    EXPECT_FALSE(first_closed);
    ASSERT_TRUE(c.get(c3.url()));
    for (int i = 0; i < 200 && !first_closed; ++i)
        (void)weft::sleep_for(5ms);
    EXPECT_TRUE(first_closed) << "three idle connections kept with max_idle_total = 2";
    ASSERT_TRUE(c.get(b.url()));
    ASSERT_TRUE(c.get(c3.url()));
    EXPECT_EQ(b.accepts(), 1);
    EXPECT_EQ(c3.accepts(), 1);
}

FIBER_TEST(Client, TheIdleSweepOutlivesTheDeadlineOfTheRequestThatStartedIt) {
    // A handler's fiber has its request's deadline: the sweeper its call starts is the
    // client's, not the request's, and keeps closing idle connections after that deadline.
    bool closed = false;
    ScriptedServer a([&closed](weft::TcpStream& s, int) {
        std::string buf;
        while (read_request(s, buf))
            if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")) break;
        closed = true;
    });
    ClientOptions o;
    o.idle_timeout = 1500ms;
    Client c(o);
    auto caller = weft::spawn("handler", [&] {
        weft::ScopedDeadline request(weft::Deadline::after(200ms));
        return static_cast<bool>(c.get(a.url()));
    });
    ASSERT_TRUE(caller.join());
    // (Within the scripted server's own 5 s read timeout, which would close it too.)
    for (int i = 0; i < 350 && !closed; ++i)
        (void)weft::sleep_for(10ms);
    EXPECT_TRUE(closed) << "the idle connection was still open 3.5 s later";
}

// --- forward proxies ---------------------------------------------------------------------------

TEST(ClientProxy, SettingsParseAsCurlAndGoReadThem) {
    using weft::http::detail::parse_proxy;
    auto p = parse_proxy("http://proxy.example:3128");
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p->url.host, "proxy.example");
    EXPECT_EQ(p->url.port, 3128);
    EXPECT_EQ(p->authorization, "");
    EXPECT_EQ(p->display, "http://proxy.example:3128");
    // No scheme: http://; no port: 80; a trailing '/' is allowed; credentials are decoded.
    p = parse_proxy(" Proxy.Example ");
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p->url.origin, "http://proxy.example:80");
    p = parse_proxy("HTTP://svc:s%40cret@[::1]:8080/");
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p->url.host, "::1");
    EXPECT_EQ(p->authorization, "Basic c3ZjOnNAY3JldA==");  // base64("svc:s@cret")
    EXPECT_EQ(p->display.find("cret"), std::string::npos);
    for (const char* bad : {"", "https://p:1", "socks4://p:1", "ftp://p", "http://p:0",
                            "http://p/proxy.pac", "http://p?x", "http://a b", "http://u:%zz@p"})
        EXPECT_FALSE(parse_proxy(bad)) << bad;
    EXPECT_NE(parse_proxy("https://p").error().find("tunnel"), std::string::npos);
    // SOCKS5: port 1080 unless named; a login of RFC 1929's sizes, never shown.
    p = parse_proxy("SOCKS5H://svc:s%40cret@proxy.example");
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p->kind, weft::http::detail::Proxy::Kind::socks5h);
    EXPECT_EQ(p->url.port, 1080);
    EXPECT_EQ(p->display, "socks5h://proxy.example:1080");
    EXPECT_TRUE(p->has_login);
    EXPECT_EQ(p->user, "svc");
    EXPECT_EQ(p->password, "s@cret");
    EXPECT_EQ(p->authorization, "");
    p = parse_proxy("socks5://[::1]:9050");
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p->kind, weft::http::detail::Proxy::Kind::socks5);
    EXPECT_EQ(p->url.port, 9050);
    EXPECT_EQ(p->display, "socks5://[::1]:9050");
    EXPECT_FALSE(p->has_login);
    EXPECT_EQ(parse_proxy("socks5://[::1]")->url.port, 1080);
    EXPECT_EQ(parse_proxy("socks5://p:")->url.port, 1080);
    for (const std::string& bad :
         {std::string("socks5://:pw@p"), "socks5://" + std::string(256, 'u') + "@p",
          "socks5://u:" + std::string(256, 'p') + "@p", std::string("socks4a://p"),
          std::string("socks5://p/x")})
        EXPECT_FALSE(parse_proxy(bad)) << bad;
    EXPECT_NE(parse_proxy("socks4://p").error().find("socks5h://"), std::string::npos);
    EXPECT_EQ(weft::http::redact_proxy_setting("http://u:secret@p:1/"), "http://***@p:1/");
    EXPECT_EQ(weft::http::redact_proxy_setting("u:secret@p:1"), "***@p:1");
    EXPECT_EQ(weft::http::redact_proxy_setting("http://TOKEN@p:1"), "http://***@p:1");
    EXPECT_EQ(weft::http::redact_proxy_setting("http://u:pa/ss#x@p:1"), "http://***@p:1");
    EXPECT_EQ(weft::http::redact_proxy_setting("http://p:3128"), "http://p:3128");
}

TEST(ClientProxy, NoProxyCoversNamesAddressesBlocksAndPorts) {
    using weft::http::detail::NoProxy;
    using weft::http::detail::parse_url;
    std::vector<std::string> ignored;
    const NoProxy n = NoProxy::parse(
        "Example.com, .corp,*.svc.local  10.0.0.0/8,192.168.1.5,"
        "[fd00::1]:8443, fe80::/10, api.test:8080, 192.168.*",
        &ignored);
    EXPECT_EQ(ignored, std::vector<std::string>{"192.168.*"});
    auto covers = [&](const char* url) { return n.covers(*parse_url(url)); };
    EXPECT_TRUE(covers("http://example.com/"));
    EXPECT_TRUE(covers("https://a.b.EXAMPLE.com/"));
    EXPECT_FALSE(covers("http://badexample.com/"));
    EXPECT_FALSE(covers("http://corp/")) << ".corp is for subdomains only";
    EXPECT_TRUE(covers("http://x.corp/"));
    EXPECT_FALSE(covers("http://svc.local/"));
    EXPECT_TRUE(covers("http://a.svc.local/"));
    EXPECT_TRUE(covers("http://10.200.0.1/"));
    EXPECT_FALSE(covers("http://11.0.0.1/"));
    EXPECT_TRUE(covers("http://192.168.1.5:9/"));
    EXPECT_FALSE(covers("http://192.168.1.6/"));
    EXPECT_TRUE(covers("https://[fd00::1]:8443/"));
    EXPECT_FALSE(covers("https://[fd00::1]/")) << "another port";
    EXPECT_TRUE(covers("http://[fe80::1234]/"));
    EXPECT_TRUE(covers("http://api.test:8080/"));
    EXPECT_FALSE(covers("http://api.test/"));
    EXPECT_TRUE(NoProxy::parse("*").covers(*parse_url("http://anything/")));
    EXPECT_FALSE(NoProxy::parse("").covers(*parse_url("http://anything/")));
    // As in Go and curl, an entry that names no host is skipped; the others still count.
    for (const char* bad :
         {"10.0.0.0/33", "a/8", "host:", "host:99999", "[::1", "x!y", "<local>", "fe80::1%eth0"}) {
        std::vector<std::string> skipped;
        const NoProxy one = NoProxy::parse(std::string(bad) + ",ok.example", &skipped);
        EXPECT_EQ(skipped, std::vector<std::string>{bad});
        EXPECT_TRUE(one.covers(*parse_url("http://ok.example/"))) << bad;
        EXPECT_FALSE(one.covers(*parse_url("http://host/"))) << bad;
    }
    EXPECT_EQ(weft::http::no_proxy_ignored(" a.example, 10.1.2.3/99 ,b"),
              std::vector<std::string>{"10.1.2.3/99"});
}

TEST(ClientProxy, ThePolicyKeepsLoopbackDirectAndRefusesWhatItCannotRead) {
    using weft::http::detail::parse_url;
    using weft::http::detail::ProxyPolicy;
    const ProxyPolicy p("http://p.example:3128", "", "direct.example");
    auto via = [&](const ProxyPolicy& policy, const char* url) {
        auto r = policy.for_url(*parse_url(url));
        EXPECT_TRUE(r) << url;
        return r ? *r : nullptr;
    };
    ASSERT_NE(via(p, "http://api.example/"), nullptr);
    EXPECT_EQ(via(p, "http://api.example/")->url.port, 3128);
    EXPECT_EQ(via(p, "https://api.example/"), nullptr) << "no https_proxy";
    EXPECT_EQ(via(p, "http://direct.example/"), nullptr);
    for (const char* loop :
         {"http://localhost/", "http://127.0.0.1:8080/", "http://127.9.9.9/", "http://[::1]/"})
        EXPECT_EQ(via(p, loop), nullptr) << loop;
    // A setting that cannot be read fails the requests it would have carried, saying why;
    // the other scheme is not touched.
    const ProxyPolicy bad("", "socks4://p:1", "");
    auto r = bad.for_url(*parse_url("https://api.example/"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::connect);
    EXPECT_NE(r.error().message().find("socks4"), std::string::npos) << r.error().message();
    EXPECT_EQ(via(bad, "http://api.example/"), nullptr);
    EXPECT_EQ(via(bad, "https://localhost/"), nullptr);
}

TEST(ClientProxy, TheEnvironmentFillsOnlyEmptyOptions) {
    ASSERT_EQ(::setenv("HTTP_PROXY", "", 1), 0);
    ASSERT_EQ(::setenv("http_proxy", "http://lower.example:1", 1), 0);
    ASSERT_EQ(::setenv("HTTPS_PROXY", "http://upper.example:2", 1), 0);
    ASSERT_EQ(::setenv("https_proxy", "http://lower.example:2", 1), 0);
    ASSERT_EQ(::setenv("NO_PROXY", ".corp", 1), 0);
    const ClientOptions from_env = weft::http::with_environment_proxies(ClientOptions{});
    ClientOptions mine;
    mine.no_proxy = "*";
    const ClientOptions kept = weft::http::with_environment_proxies(mine);
    for (const char* v : {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY"})
        ::unsetenv(v);
    EXPECT_EQ(from_env.http_proxy, "http://lower.example:1") << "an empty HTTP_PROXY is unset";
    EXPECT_EQ(from_env.https_proxy, "http://upper.example:2") << "upper case first, as Go";
    EXPECT_EQ(from_env.no_proxy, ".corp");
    EXPECT_EQ(kept.http_proxy, "");
    EXPECT_EQ(kept.no_proxy, "*");
}

// The proxy gets the request in absolute form, with Proxy-Authorization and the server's Host;
// the client never resolves the server's name (it does not exist), and the connection to the
// proxy is reused.
FIBER_TEST(ClientProxy, AnHttpRequestGoesToTheProxyInAbsoluteForm) {
    std::vector<std::string> heads;
    ScriptedServer proxy([&heads](weft::TcpStream& s, int) {
        std::string buf;
        std::string head;
        while (read_request(s, buf, &head)) {
            heads.push_back(head);
            if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return;
        }
    });
    const std::string proxy_url = proxy.url();  // "http://127.0.0.1:PORT/"
    ClientOptions o;
    o.http_proxy = "http://svc:pw@" + proxy_url.substr(7);
    o.no_proxy = "direct.invalid";
    Client c(o);
    for (int i = 0; i < 2; ++i) {
        auto r = c.get("http://service.invalid:8080/a/b?x=1");
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->body, "ok");
    }
    ASSERT_EQ(heads.size(), 2u);
    EXPECT_TRUE(heads[0].starts_with("GET http://service.invalid:8080/a/b?x=1 HTTP/1.1\r\n"))
        << heads[0];
    EXPECT_NE(heads[0].find("\r\nHost: service.invalid:8080\r\n"), std::string::npos);
    EXPECT_NE(heads[0].find("\r\nProxy-Authorization: Basic c3ZjOnB3\r\n"), std::string::npos)
        << heads[0];
    EXPECT_EQ(proxy.accepts(), 1) << "the connection to the proxy was not reused";
    // A host on the no_proxy list is the client's to resolve: it does not exist.
    auto direct = c.get("http://direct.invalid/");
    ASSERT_FALSE(direct);
    EXPECT_EQ(direct.error().code, ClientErrc::dns) << direct.error().message();
    EXPECT_EQ(heads.size(), 2u);
}

// An https:// URL opens a CONNECT tunnel; a proxy that refuses it is a connect error that says
// what the proxy answered. One that accepts gets the TLS handshake inside (here it is not TLS
// that answers: the handshake fails, which shows the tunnel was used for it).
FIBER_TEST(ClientProxy, AnHttpsRequestOpensATunnelAndARefusalSaysWhy) {
    std::vector<std::string> heads;
    ScriptedServer proxy([&heads](weft::TcpStream& s, int n) {
        std::string buf;
        std::string head;
        if (!read_request(s, buf, &head)) return;
        heads.push_back(head);
        if (n == 1) {
            (void)s.send("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        // Lines that end with a bare LF: read as Go reads them.
        (void)s.send("HTTP/1.1 200 Connection established\nVia: 1.1 test\n\n");
        char tmp[512];
        auto got = s.recv(std::span<char>(tmp, sizeof tmp), 5s);  // the ClientHello
        if (got && *got > 0 && tmp[0] == 0x16) (void)s.send("not TLS at all\r\n");
    });
    ClientOptions o;
    o.https_proxy = proxy.url().substr(7);  // "127.0.0.1:PORT/": no scheme, taken as http://
    Client c(o);
    auto r = c.get("https://service.invalid/x");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::connect);
    EXPECT_NE(r.error().message().find("CONNECT service.invalid:443"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("407 Proxy Authentication Required"), std::string::npos)
        << r.error().message();
    r = c.get("https://service.invalid/x");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::tls) << r.error().message();
    ASSERT_EQ(heads.size(), 2u);
    EXPECT_TRUE(heads[1].starts_with("CONNECT service.invalid:443 HTTP/1.1\r\n")) << heads[1];
    EXPECT_NE(heads[1].find("\r\nHost: service.invalid:443"), std::string::npos);
    EXPECT_EQ(heads[1].find("/x"), std::string::npos) << "the path went to the proxy";
}

namespace {

// `n` bytes from `s` (fewer when it ends first).
std::string read_exactly(weft::TcpStream& s, std::size_t n) {
    std::string out;
    char tmp[512];
    while (out.size() < n) {
        auto got = s.recv(std::span<char>(tmp, std::min(sizeof tmp, n - out.size())), 5s);
        if (!got || *got == 0) break;
        out.append(tmp, *got);
    }
    return out;
}

// What a scripted SOCKS5 proxy saw of one connection.
struct SocksSeen {
    std::string greeting;  // VER NMETHODS METHODS
    std::string login;     // RFC 1929's request, if any
    std::string connect;   // VER CMD RSV ATYP DST.ADDR DST.PORT
    std::string head;      // the first HTTP request through the tunnel
};

// Reads a CONNECT request after the greeting (and login) the script chose to take.
std::string read_socks_connect(weft::TcpStream& s) {
    std::string req = read_exactly(s, 4);
    if (req.size() < 4) return req;
    const auto atyp = static_cast<unsigned char>(req[3]);
    if (atyp == 1) return req + read_exactly(s, 4 + 2);
    if (atyp == 4) return req + read_exactly(s, 16 + 2);
    std::string len = read_exactly(s, 1);
    if (len.empty()) return req;
    return req + len + read_exactly(s, static_cast<unsigned char>(len[0]) + 2u);
}

const std::string kSocksGranted("\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38", 10);

}  // namespace

// socks5h://: the proxy gets the host name, and the login when the URL has one; an http://
// request then goes through the tunnel in origin form (the proxy is not an HTTP proxy), and the
// tunnel is reused.
FIBER_TEST(ClientProxy, ASocks5hProxyGetsTheNameAndTheLogin) {
    std::vector<SocksSeen> seen;
    ScriptedServer proxy([&seen](weft::TcpStream& s, int) {
        SocksSeen c;
        c.greeting = read_exactly(s, 4);
        if (!s.send(std::string("\x05\x02", 2))) return;
        c.login = read_exactly(s, 2);
        if (c.login.size() == 2) c.login += read_exactly(s, static_cast<unsigned char>(c.login[1]));
        std::string plen = read_exactly(s, 1);
        c.login += plen;
        if (!plen.empty()) c.login += read_exactly(s, static_cast<unsigned char>(plen[0]));
        if (!s.send(std::string("\x01\x00", 2))) return;
        c.connect = read_socks_connect(s);
        if (!s.send(kSocksGranted)) return;
        std::string buf;
        std::string head;
        while (read_request(s, buf, &head)) {
            c.head = head;
            if (!s.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) break;
        }
        seen.push_back(c);
    });
    {
        ClientOptions o;
        o.http_proxy = "socks5h://svc:p%40ss@" + proxy.url().substr(7);
        Client c(o);
        for (int i = 0; i < 2; ++i) {
            auto r = c.get("http://service.invalid:8080/a/b?x=1");
            ASSERT_TRUE(r) << r.error().message();
            EXPECT_EQ(r->body, "ok");
        }
        EXPECT_EQ(proxy.accepts(), 1) << "the tunnel was not reused";
    }  // the client closes the tunnel: the script records what it saw
    for (int i = 0; i < 500 && seen.empty(); ++i)
        (void)weft::sleep_for(10ms);
    ASSERT_EQ(seen.size(), 1u) << "the tunnel did not end";
    EXPECT_EQ(seen[0].greeting, std::string("\x05\x02\x00\x02", 4));
    EXPECT_EQ(seen[0].login, std::string("\x01\x03svc\x04p@ss", 10));
    EXPECT_EQ(seen[0].connect, std::string("\x05\x01\x00\x03\x0fservice.invalid\x1f\x90", 22));
    EXPECT_TRUE(seen[0].head.starts_with("GET /a/b?x=1 HTTP/1.1\r\n")) << seen[0].head;
    EXPECT_NE(seen[0].head.find("\r\nHost: service.invalid:8080\r\n"), std::string::npos);
    EXPECT_EQ(seen[0].head.find("Proxy-Authorization"), std::string::npos);
}

// socks5://: the client resolves the name itself (here it cannot: the proxy is never asked),
// and gives the proxy an address; an https:// URL's TLS runs inside the tunnel.
FIBER_TEST(ClientProxy, ASocks5ProxyGetsAnAddressAndCarriesTls) {
    std::vector<std::string> connects;
    ScriptedServer proxy([&connects](weft::TcpStream& s, int) {
        if (read_exactly(s, 3) != std::string("\x05\x01\x00", 3)) return;
        if (!s.send(std::string("\x05\x00", 2))) return;
        connects.push_back(read_socks_connect(s));
        if (!s.send(kSocksGranted)) return;
        char tmp[512];
        auto got = s.recv(std::span<char>(tmp, sizeof tmp), 5s);  // the ClientHello
        if (got && *got > 0 && tmp[0] == 0x16) (void)s.send("not TLS at all\r\n");
    });
    ClientOptions o;
    o.http_proxy = "socks5://" + proxy.url().substr(7);
    o.https_proxy = o.http_proxy;
    Client c(o);
    auto r = c.get("http://service.invalid/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::dns) << r.error().message();
    EXPECT_EQ(proxy.accepts(), 0);
    r = c.get("https://192.0.2.7:8443/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::tls) << r.error().message();
    r = c.get("https://[2001:db8::5]/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::tls) << r.error().message();
    ASSERT_EQ(connects.size(), 2u);
    EXPECT_EQ(connects[0], std::string("\x05\x01\x00\x01\xc0\x00\x02\x07\x20\xfb", 10));
    EXPECT_EQ(connects[1], std::string("\x05\x01\x00\x04", 4) +
                               std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x05", 16) +
                               std::string("\x01\xbb", 2));
}

// Each way a SOCKS5 proxy can say no is a connect error that says which.
FIBER_TEST(ClientProxy, ASocks5RefusalSaysWhy) {
    ScriptedServer proxy([](weft::TcpStream& s, int n) {
        const std::string greeting = read_exactly(s, 3);
        if (n == 1) {
            (void)s.send(std::string("\x05\xff", 2));  // no acceptable method
            return;
        }
        if (n == 2) {  // a login, refused
            (void)read_exactly(s, 1);
            (void)s.send(std::string("\x05\x02", 2));
            const std::string head = read_exactly(s, 2);  // VER ULEN
            if (head.size() < 2) return;
            (void)read_exactly(s, static_cast<unsigned char>(head[1]));
            const std::string plen = read_exactly(s, 1);
            if (plen.empty()) return;
            (void)read_exactly(s, static_cast<unsigned char>(plen[0]));
            (void)s.send(std::string("\x01\x01", 2));
            return;
        }
        if (n == 3) {
            (void)s.send("HTTP/1.1 400 Bad Request\r\n\r\n");  // not a SOCKS proxy at all
            return;
        }
        (void)s.send(std::string("\x05\x00", 2));
        (void)read_socks_connect(s);
        (void)s.send(std::string("\x05\x05", 2));  // refused, and nothing more
    });
    const std::string where = proxy.url().substr(7, proxy.url().size() - 8);
    auto fails = [&](const std::string& setting, ClientErrc code, const char* words) {
        ClientOptions o;
        o.https_proxy = setting;
        Client c(o);
        auto r = c.get("https://service.invalid/");
        ASSERT_FALSE(r) << setting;
        EXPECT_EQ(r.error().code, code) << r.error().message();
        EXPECT_NE(r.error().message().find(words), std::string::npos) << r.error().message();
        EXPECT_NE(r.error().message().find("CONNECT service.invalid:443"), std::string::npos)
            << r.error().message();
        EXPECT_EQ(r.error().message().find("secret"), std::string::npos) << r.error().message();
    };
    fails("socks5h://" + where, ClientErrc::connect, "asks for authentication");
    fails("socks5h://u:secret@" + where, ClientErrc::connect, "wrong user name or password");
    fails("socks5h://" + where, ClientErrc::protocol, "not SOCKS5");
    fails("socks5h://" + where, ClientErrc::connect, "refused by the proxy: connection refused");
    EXPECT_EQ(proxy.accepts(), 4);
}

FIBER_TEST(ClientProxy, AProxyThatIsNotThereIsNamedInTheError) {
    ClientOptions o;
    o.http_proxy = "http://127.0.0.1:1";
    Client c(o);
    auto r = c.get("http://service.invalid/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ClientErrc::connect);
    EXPECT_NE(r.error().message().find("proxy http://127.0.0.1:1"), std::string::npos)
        << r.error().message();
}
