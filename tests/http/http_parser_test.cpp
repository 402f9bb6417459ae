// The llhttp glue: requests copied out correctly whatever the receive boundaries, limits with
// their statuses, and the malformed or ambiguous inputs strict parsing must refuse.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "request_parser.hpp"
#include "weft/http/request.hpp"

using weft::http::Method;
using weft::http::Request;
using weft::http::ServerOptions;
using weft::http::detail::RequestParser;

namespace {

struct Parsed {
    std::vector<std::unique_ptr<Request>> reqs;
    int error = 0;
    std::string reason;
    bool partial = false;
};

const weft::SocketAddress& test_peer() {
    static weft::SocketAddress a = *weft::SocketAddress::parse("127.0.0.1:1234");
    return a;
}

/// Feeds `in` in pieces of `chunk` bytes, like receives of that size.
Parsed parse_all(std::string_view in, std::size_t chunk = std::string::npos,
                 ServerOptions limits = {}, bool fast = true) {
    Parsed out;
    RequestParser p(limits);
    p.set_fast_path(fast);
    auto cur = std::make_unique<Request>();
    std::size_t pos = 0;
    while (pos < in.size()) {
        std::size_t n = std::min(chunk, in.size() - pos);
        std::size_t off = 0;
        while (off < n) {
            auto st = p.feed(in.data() + pos + off, n - off, *cur, &test_peer());
            off += st.consumed;
            if (st.kind == RequestParser::Kind::complete) {
                out.reqs.push_back(std::move(cur));
                cur = std::make_unique<Request>();
                continue;
            }
            if (st.kind == RequestParser::Kind::error) {
                out.error = p.error_status();
                out.reason = p.error_reason();
                return out;
            }
            EXPECT_EQ(off, n) << "need_more must consume everything";
            break;
        }
        pos += n;
    }
    out.partial = p.in_message();
    return out;
}

int status_of(std::string_view in, ServerOptions limits = {}) {
    Parsed p = parse_all(in, std::string::npos, limits);
    return p.error ? p.error : (p.reqs.empty() ? 0 : 200);
}

}  // namespace

TEST(HttpParser, SimpleGet) {
    auto p = parse_all("GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: h\r\nX-Thing:  v1 \r\n\r\n");
    ASSERT_EQ(p.error, 0) << p.reason;
    ASSERT_EQ(p.reqs.size(), 1u);
    const Request& r = *p.reqs[0];
    EXPECT_EQ(r.method(), Method::get);
    EXPECT_EQ(r.method_name(), "GET");
    EXPECT_EQ(r.target(), "/a/b?x=1&y=%20z");
    EXPECT_EQ(r.path(), "/a/b");
    EXPECT_EQ(r.raw_query(), "x=1&y=%20z");
    EXPECT_EQ(r.query("y").value_or("?"), " z");
    EXPECT_EQ(r.query("x").value_or("?"), "1");
    EXPECT_FALSE(r.query("nope").has_value());
    EXPECT_EQ(r.header("host").value_or(""), "h");
    EXPECT_EQ(r.header("X-THING").value_or(""), "v1");
    EXPECT_EQ(r.version_major(), 1);
    EXPECT_EQ(r.version_minor(), 1);
    EXPECT_TRUE(r.keep_alive());
    EXPECT_TRUE(r.body().empty());
    EXPECT_EQ(r.peer().port(), 1234);
}

// RFC 9110 §2.5: a later minor version of HTTP/1 is processed as HTTP/1.1, the highest this
// server speaks (nginx and Go's net/http do the same); only another major version gets 505.
TEST(HttpParser, ALaterMinorVersionIsReadAsHttp11) {
    for (std::size_t chunk : {std::string::npos, std::size_t{1}}) {
        auto p = parse_all(
            "GET /a HTTP/1.2\r\nHost: h\r\n\r\n"
            "POST /b HTTP/1.9\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
            "GET /c HTTP/1.1\r\nHost: h\r\n\r\n",
            chunk);
        ASSERT_EQ(p.error, 0) << p.reason;
        ASSERT_EQ(p.reqs.size(), 3u);
        for (const auto& r : p.reqs) {
            EXPECT_EQ(r->version_major(), 1);
            EXPECT_EQ(r->version_minor(), 1);
            EXPECT_TRUE(r->keep_alive());
        }
        EXPECT_EQ(p.reqs[1]->body(), "hi");
        EXPECT_EQ(p.reqs[2]->path(), "/c");
    }
    auto closing = parse_all("GET / HTTP/1.3\r\nHost: h\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(closing.error, 0) << closing.reason;
    ASSERT_EQ(closing.reqs.size(), 1u);
    EXPECT_FALSE(closing.reqs[0]->keep_alive());
}

TEST(HttpParser, RepeatedHeadersKept) {
    auto p = parse_all("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\nACCEPT: c\r\n\r\n");
    ASSERT_EQ(p.reqs.size(), 1u);
    const auto& h = p.reqs[0]->headers();
    EXPECT_EQ(h.count("Accept"), 3u);
    EXPECT_EQ(h.get_all("accept"), (std::vector<std::string_view>{"a", "b", "c"}));
    EXPECT_EQ(h.size(), 4u);
    EXPECT_EQ(h[1].name, "Accept");
}

TEST(HttpParser, ContentLengthBody) {
    auto p = parse_all("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
    ASSERT_EQ(p.reqs.size(), 1u);
    EXPECT_EQ(p.reqs[0]->body(), "hello world");
    EXPECT_EQ(p.reqs[0]->method(), Method::post);
}

TEST(HttpParser, ChunkedBodyDecoded) {
    std::string in =
        "POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
    for (std::size_t chunk : {std::string::npos, std::size_t(1), std::size_t(7)}) {
        auto p = parse_all(in, chunk);
        ASSERT_EQ(p.error, 0) << p.reason;
        ASSERT_EQ(p.reqs.size(), 1u) << "chunk " << chunk;
        EXPECT_EQ(p.reqs[0]->body(), "hello 0123456789");
        EXPECT_FALSE(p.reqs[0]->header("Trailer").has_value()) << "trailers are not headers";
    }
}

TEST(HttpParser, ByteByByteEqualsWhole) {
    std::string in =
        "GET /one?a=b HTTP/1.1\r\nHost: h\r\nLong-Header-Name: some longer value here\r\n\r\n"
        "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        "GET /three HTTP/1.0\r\n\r\n";
    auto whole = parse_all(in);
    auto bytes = parse_all(in, 1);
    ASSERT_EQ(whole.reqs.size(), 3u);
    ASSERT_EQ(bytes.reqs.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(whole.reqs[i]->target(), bytes.reqs[i]->target());
        EXPECT_EQ(whole.reqs[i]->body(), bytes.reqs[i]->body());
        EXPECT_EQ(whole.reqs[i]->headers().size(), bytes.reqs[i]->headers().size());
    }
    EXPECT_EQ(bytes.reqs[0]->header("long-header-name").value_or(""), "some longer value here");
    EXPECT_EQ(bytes.reqs[2]->version_minor(), 0);
    EXPECT_FALSE(bytes.reqs[2]->keep_alive()) << "HTTP/1.0 without keep-alive closes";
}

TEST(HttpParser, KeepAliveRules) {
    auto ka = [](std::string_view in) {
        auto p = parse_all(in);
        EXPECT_EQ(p.reqs.size(), 1u) << in;
        return !p.reqs.empty() && p.reqs[0]->keep_alive();
    };
    EXPECT_TRUE(ka("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    EXPECT_FALSE(ka("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_TRUE(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    EXPECT_FALSE(
        ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
    // Tabs are whitespace around a token too (llhttp 8 trims only spaces).
    EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\t\r\n\r\n"));
    EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: \tkeep-alive, close\r\n\r\n"));
    EXPECT_TRUE(ka("GET / HTTP/1.0\r\nConnection: keep-alive\t\r\n\r\n"));
    EXPECT_FALSE(
        ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\t\r\nUpgrade: websocket\r\n\r\n"));
    EXPECT_FALSE(
        ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c, "
           "WebSocket/13\r\n\r\n"));
    // An upgrade to what no route speaks (curl --http2 on http://) is ignored: the connection
    // goes on in HTTP/1.1 (RFC 9110 section 7.8), as nginx and Go have it.
    EXPECT_TRUE(
        ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"));
    // The obsolete Proxy-Connection is nobody's business here (as in nginx and Go).
    EXPECT_TRUE(ka("GET / HTTP/1.1\r\nHost: h\r\nProxy-Connection: close\r\n\r\n"));
}

// A declined upgrade (with a body, as an h2c upgrade may have) leaves the connection to HTTP/1.1:
// the request after it parses. One to WebSocket ends the parsing (its route may switch).
TEST(HttpParser, ARequestAfterADeclinedUpgradeParses) {
    for (bool fast : {true, false}) {
        auto p = parse_all(
            "POST /e HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: "
            "h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello"
            "GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
            std::string::npos, {}, fast);
        ASSERT_EQ(p.error, 0) << p.reason;
        ASSERT_EQ(p.reqs.size(), 2u);
        EXPECT_EQ(p.reqs[0]->body(), "hello");
        EXPECT_TRUE(p.reqs[0]->keep_alive());
        EXPECT_EQ(p.reqs[1]->path(), "/b");
        auto w = parse_all(
            "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            "GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
            std::string::npos, {}, fast);
        ASSERT_GE(w.reqs.size(), 1u);
        EXPECT_FALSE(w.reqs[0]->keep_alive());
        EXPECT_EQ(w.reqs.size(), 1u);
    }
}

// After a request we keep the connection for, whatever llhttp made of it, the next one parses.
TEST(HttpParser, AKeptHttp10ConnectionParsesItsNextRequest) {
    for (bool fast : {true, false}) {
        auto p = parse_all(
            "GET /a HTTP/1.0\r\nConnection: keep-alive\t\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
            std::string::npos, {}, fast);
        ASSERT_EQ(p.error, 0) << p.reason;
        ASSERT_EQ(p.reqs.size(), 2u);
        EXPECT_EQ(p.reqs[1]->path(), "/b");
        // And after one that closes it, llhttp refuses what follows, as before.
        auto c = parse_all(
            "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\t\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
            std::string::npos, {}, fast);
        ASSERT_GE(c.reqs.size(), 1u);
        EXPECT_FALSE(c.reqs[0]->keep_alive());
    }
}

// A chunked body's trailer section: its lines end in CRLF like the header section's. llhttp 8
// takes a bare LF for its empty line, which would end the request where a front end that reads
// CRLF alone does not.
TEST(HttpParser, TrailerLinesMustEndInCrlf) {
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    for (std::size_t chunk :
         {std::string::npos, std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
        SCOPED_TRACE(chunk);
        // Good: no trailer, a trailer field, extensions; then a pipelined request.
        for (const std::string& body :
             {std::string("3\r\nabc\r\n0\r\n\r\n"), std::string("1\r\nx\r\n0\r\nT: 1\r\n\r\n"),
              std::string("2;e=1\r\nhi\r\n0;last\r\nA: b\r\nC: d\r\n\r\n")}) {
            auto p = parse_all(head + body + next, chunk);
            ASSERT_EQ(p.error, 0) << p.reason << " " << ::testing::PrintToString(body);
            ASSERT_EQ(p.reqs.size(), 2u) << ::testing::PrintToString(body);
            EXPECT_EQ(p.reqs[1]->path(), "/next");
        }
        // Bad: the empty line, or a trailer field's line, ended by a bare LF.
        for (const std::string& body :
             {std::string("3\r\nabc\r\n0\r\n\n"), std::string("0\r\nT: 1\n\r\n")}) {
            auto p = parse_all(head + body + next, chunk);
            EXPECT_EQ(p.error, 400) << ::testing::PrintToString(body);
            EXPECT_TRUE(p.reqs.empty()) << ::testing::PrintToString(body);
        }
    }
}

// The trailer section is held to the header section's rules and limits: no obs-fold, at most
// max_headers fields and max_header_bytes (line ends counted).
TEST(HttpParser, TheTrailerSectionHasTheHeaderSectionsLimits) {
    ServerOptions limits;
    limits.max_headers = 10;
    limits.max_header_bytes = 4096;
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto fields = [](int n, std::size_t value) {
        std::string t;
        for (int i = 0; i < n; ++i)
            t += "T" + std::to_string(i) + ": " + std::string(value, 'v') + "\r\n";
        return t;
    };
    auto parse = [&](const std::string& trailer, std::size_t chunk) {
        Parsed p = parse_all(head + "1\r\nx\r\n0\r\n" + trailer + "\r\n", chunk, limits);
        return p;
    };
    for (std::size_t chunk : {std::string::npos, std::size_t{1}, std::size_t{5}}) {
        SCOPED_TRACE(chunk);
        EXPECT_EQ(parse(fields(10, 10), chunk).error, 0) << parse(fields(10, 10), chunk).reason;
        Parsed many = parse(fields(11, 1), chunk);
        EXPECT_EQ(many.error, 431);
        EXPECT_EQ(many.reason, "too many chunked trailer fields");
        // Names and values of 4070 bytes, 4110 with ": " and the line ends: over 4096.
        Parsed big = parse(fields(10, 405), chunk);
        EXPECT_EQ(big.error, 431);
        EXPECT_EQ(big.reason, "chunked trailer section too large");
        Parsed fold = parse("T: 1\r\n  more\r\n", chunk);
        EXPECT_EQ(fold.error, 400);
        EXPECT_EQ(fold.reason, "obsolete line folding (obs-fold) in the chunked trailer");
    }
}

// A chunk extension llhttp refuses is named as such, not as a line-end problem.
TEST(HttpParser, ARefusedChunkExtensionIsNamed) {
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto p = parse_all(head + "5;a@b=1\r\nhello\r\n0\r\n\r\n");
    EXPECT_EQ(p.error, 400);
    EXPECT_EQ(p.reason, "invalid chunk extension");
    // A quoted value with a quoted-pair: RFC 9112 allows it, llhttp 8 does not (a known limit).
    auto quoted = parse_all(head + "5;a=\"x\\\"y\"\r\nhello\r\n0\r\n\r\n");
    EXPECT_EQ(quoted.error, 400);
    EXPECT_EQ(quoted.reason, "invalid chunk extension");
    auto crlf = parse_all(head + "5\r\nhelloX\r\n0\r\n\r\n");
    EXPECT_EQ(crlf.error, 400);
    EXPECT_EQ(crlf.reason, "lines must end with CRLF");
}

// Smuggling vectors llhttp 8 lets through: a Transfer-Encoding without a coding, and a header
// section ended by a bare LF.
TEST(HttpParser, BlankTransferEncodingAndBareLfEndingTheHeadersAreRefused) {
    for (const char* in :
         {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\nContent-Length: 3\r\n\r\nabc",
          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n"}) {
        for (std::size_t chunk : {std::string::npos, std::size_t{1}}) {
            auto p = parse_all(in, chunk);
            EXPECT_EQ(p.error, 400) << ::testing::PrintToString(in);
            EXPECT_EQ(p.reason, "Transfer-Encoding without chunked last");
        }
    }
    for (const char* in : {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\nabc",
                           "GET / HTTP/1.1\r\nHost: a\r\n\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
                           "GET / HTTP/1.1\n\n"}) {
        for (std::size_t chunk : {std::string::npos, std::size_t{1}, std::size_t{7}}) {
            for (bool fast : {true, false}) {
                auto p = parse_all(in, chunk, {}, fast);
                EXPECT_EQ(p.error, 400) << ::testing::PrintToString(in) << " chunk " << chunk;
                EXPECT_TRUE(p.reqs.empty()) << ::testing::PrintToString(in);
            }
        }
    }
}

TEST(HttpParser, TargetForms) {
    auto p = parse_all("GET http://example.com/x/y?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_EQ(p.reqs.size(), 1u);
    EXPECT_EQ(p.reqs[0]->path(), "/x/y");
    EXPECT_EQ(p.reqs[0]->raw_query(), "q=1");
    p = parse_all("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_EQ(p.reqs.size(), 1u);
    EXPECT_EQ(p.reqs[0]->path(), "/");
    p = parse_all("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(p.reqs.size(), 1u);
    EXPECT_EQ(p.reqs[0]->path(), "*");
    EXPECT_EQ(status_of("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    // RFC 9112 §3.2.2: an absolute-form target's authority replaces the Host field; user info
    // there is an error, as in a Host.
    p = parse_all("GET http://b.example:8080/x HTTP/1.1\r\nHost: a.example\r\n\r\n");
    ASSERT_EQ(p.reqs.size(), 1u) << p.reason;
    EXPECT_EQ(p.reqs[0]->header("host").value_or(""), "b.example:8080");
    EXPECT_EQ(status_of("GET http://user@b/x HTTP/1.1\r\nHost: b\r\n\r\n"), 400);
    // Said of the target, not of the Host field the client wrote right.
    EXPECT_EQ(parse_all("GET http://u@other/d HTTP/1.1\r\nHost: h\r\n\r\n").reason,
              "invalid request-target");
}

TEST(HttpParser, Limits) {
    ServerOptions l;
    l.max_header_bytes = 256;
    l.max_uri_bytes = 64;
    l.max_headers = 4;
    l.max_body_bytes = 10;
    std::string ok = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    EXPECT_EQ(status_of(ok, l), 200);
    EXPECT_EQ(status_of("GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", l), 414);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'v') + "\r\n\r\n", l),
              431);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", l),
              431);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", l), 413)
        << "refused from Content-Length, before any body byte";
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n",
                        l),
              413);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", l),
              200);
    // The header limit holds whatever the receive size: byte by byte, too.
    auto p =
        parse_all("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'v') + "\r\n\r\n", 1, l);
    EXPECT_EQ(p.error, 431);
    // A header section of exactly the limit passes.
    std::string exact = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    std::string tail = "\r\n\r\n";
    exact += std::string(256 - exact.size() - tail.size(), 'v') + tail;
    ASSERT_EQ(exact.size(), 256u);
    EXPECT_EQ(status_of(exact, l), 200);
    EXPECT_EQ(status_of(exact.substr(0, exact.size() - 4) + "v\r\n\r\n", l), 431);
}

TEST(HttpParser, MalformedAndAmbiguous) {
    struct Case {
        const char* what;
        std::string in;
        int status;
    };
    const std::vector<Case> cases = {
        {"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
        {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"CL with TE",
         "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"TE with CL",
         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         400},
        {"two differing CL",
         "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
        {"negative CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        {"non-numeric CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1a\r\n\r\n", 400},
        {"overflowing CL",
         "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        {"bad chunk size",
         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n", 400},
        {"chunk size overflow",
         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n",
         400},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
        {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"bad header name", "GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n", 400},
        {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35), 400},
        {"control char in target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
        {"HTTP/0.9 simple request", "GET /\r\nHost: h\r\n\r\n", 505},
        {"bad version token", "GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400},
        // llhttp takes these protocols as it takes HTTP's; this server speaks HTTP only.
        {"RTSP", "GET / RTSP/1.0\r\nHost: h\r\n\r\n", 400},
        {"RTSP method", "OPTIONS / RTSP/1.0\r\nCSeq: 1\r\n\r\n", 400},
        {"ICE", "SOURCE / ICE/1.0\r\nHost: h\r\n\r\n", 400},
        {"RTSP after spaces", "GET /  RTSP/1.0\r\nHost: h\r\n\r\n", 400},
        {"malformed method", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"unknown method", "FROB / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
        {"unknown transfer coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
         501},
        {"gzip then chunked",
         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"HTTP/1.2 without Host", "GET / HTTP/1.2\r\n\r\n", 400},  // read as 1.1
        {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
        {"two-digit minor", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
        {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
        {"lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
        {"bare LF line ends", "GET / HTTP/1.1\nHost: h\n\n", 400},
        {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400},
        {"obs-fold of empty value", "GET / HTTP/1.1\r\nHost: h\r\nX-A:\r\n b\r\n\r\n", 400},
        // Empty lines before the request line (skipped) must not end the scan for folds.
        {"obs-fold after empty lines",
         "\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nX: 1\r\n Content-Length: 5\r\n\r\nhello", 400},
        {"obs-fold after bare empty lines", "\n\nGET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
         400},
        {"chunked twice",
         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
        {"chunked then gzip headers",
         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "gzip\r\n\r\n",
         400},
        {"CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        {"junk after version", "GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", 400},
        {"TLS handshake", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11), 400},
        {"unknown expectation",
         "POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx", 417},
    };
    for (const Case& c : cases) {
        auto p = parse_all(c.in);
        EXPECT_EQ(p.error, c.status) << c.what << " (reason: " << p.reason << ")";
        auto bytes = parse_all(c.in, 1);
        EXPECT_EQ(bytes.error, c.status) << c.what << ", byte by byte";
    }
}

TEST(HttpParser, FramingConflictsSayWhichOne) {
    auto twice =
        parse_all("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx");
    EXPECT_EQ(twice.error, 400);
    EXPECT_EQ(twice.reason, "more than one Content-Length");
    auto both = parse_all(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nx");
    EXPECT_EQ(both.error, 400);
    EXPECT_EQ(both.reason, "both Content-Length and Transfer-Encoding");
}

TEST(HttpParser, OtherProtocolsSayWhy) {
    for (std::size_t chunk : {std::string::npos, std::size_t{1}, std::size_t{7}}) {
        auto rtsp = parse_all("GET / RTSP/1.0\r\nHost: h\r\n\r\n", chunk);
        EXPECT_EQ(rtsp.error, 400) << chunk;
        EXPECT_EQ(rtsp.reason, "malformed HTTP version") << chunk;
        // The same request line over HTTP, on llhttp's path (a body), is taken.
        auto http = parse_all("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", chunk);
        EXPECT_EQ(http.error, 0) << chunk;
        ASSERT_EQ(http.reqs.size(), 1u) << chunk;
        EXPECT_EQ(http.reqs[0]->body(), "x");
    }
}

// An HTTP/0.9 request line ("GET /" and CRLF, or a bare LF) is all its client sends: it is
// refused at its line end, not left waiting for a byte that never comes (then a 408).
TEST(HttpParser, AnHttp09LineIsRefusedAtItsEnd) {
    for (const char* line : {"GET /\r\n", "GET /index.html\n", "HEAD /a?b=c\r\n"}) {
        for (std::size_t chunk : {std::string::npos, std::size_t{1}, std::size_t{5}}) {
            auto p = parse_all(line, chunk);
            EXPECT_EQ(p.error, 505) << line << " in pieces of " << chunk;
            EXPECT_EQ(p.reason, "HTTP/0.9 is not supported (the request line has no HTTP version)")
                << line << " in pieces of " << chunk;
        }
    }
    // A target that ends with a space still waits for its protocol.
    auto partial = parse_all("GET / ");
    EXPECT_EQ(partial.error, 0);
}

// A connection that ended just after a request-target (its protocol name not seen yet) leaves
// nothing behind for the next connection the parser serves.
// The protocol name in receives of their own (separate buffers, as the server's are): the
// check reads only the bytes being parsed.
TEST(HttpParser, TheProtocolNameIsCheckedAcrossReceives) {
    const ServerOptions options;
    for (const char* second : {"RTSP/1.0\r\nHost: h\r\n\r\n", " RTSP/1.0\r\nHost: h\r\n\r\n",
                               "HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"}) {
        RequestParser p(options);
        Request r;
        auto first = std::make_unique<std::string>("POST / ");
        auto st = p.feed(first->data(), first->size(), r, &test_peer());
        ASSERT_EQ(st.kind, RequestParser::Kind::need_more);
        first.reset();  // that receive's buffer is gone
        const std::string rest = second;
        st = p.feed(rest.data(), rest.size(), r, &test_peer());
        if (rest.find("RTSP") != std::string::npos) {
            EXPECT_EQ(st.kind, RequestParser::Kind::error) << second;
            EXPECT_STREQ(p.error_reason(), "malformed HTTP version");
        } else {
            EXPECT_EQ(st.kind, RequestParser::Kind::complete) << p.error_reason();
            EXPECT_EQ(r.body(), "x");
        }
    }
}

TEST(HttpParser, AResetForgetsAProtocolNameNotSeenYet) {
    const ServerOptions options;
    RequestParser p(options);
    Request r;
    const std::string partial = "GET /  ";  // llhttp looks past the first space
    auto st = p.feed(partial.data(), partial.size(), r, &test_peer());
    EXPECT_EQ(st.kind, RequestParser::Kind::need_more);
    p.reset();
    const std::string post = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx";
    Request r2;
    st = p.feed(post.data(), post.size(), r2, &test_peer());
    EXPECT_EQ(st.kind, RequestParser::Kind::complete) << p.error_reason();
    EXPECT_EQ(r2.body(), "x");
}

TEST(HttpParser, ExpectContinue) {
    const ServerOptions options;
    RequestParser p(options);
    Request r;
    std::string head =
        "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    auto st = p.feed(head.data(), head.size(), r, &test_peer());
    EXPECT_EQ(st.kind, RequestParser::Kind::need_more);
    EXPECT_TRUE(p.headers_done());
    EXPECT_TRUE(p.wants_continue());
    st = p.feed("abc", 3, r, &test_peer());
    EXPECT_EQ(st.kind, RequestParser::Kind::complete);
    EXPECT_EQ(r.body(), "abc");
    EXPECT_FALSE(p.wants_continue());
}

TEST(HttpParser, PipelinedStopsAfterEachRequest) {
    const ServerOptions options;
    RequestParser p(options);
    std::string in =
        "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 "
        "HTTP/1.1\r\nHost: h\r\n\r\n";
    std::size_t pos = 0;
    std::vector<std::string> paths;
    while (pos < in.size()) {
        Request r;
        auto st = p.feed(in.data() + pos, in.size() - pos, r, &test_peer());
        ASSERT_EQ(st.kind, RequestParser::Kind::complete);
        pos += st.consumed;
        paths.emplace_back(r.path());
    }
    EXPECT_EQ(paths, (std::vector<std::string>{"/1", "/2", "/3"}));
}

TEST(HttpParser, UnlimitedBodyDoesNotTrustContentLength) {
    // max_body_bytes may be "unlimited" (the server maps 0 to SIZE_MAX): a huge announced
    // length must not be reserved up front, and sizes must not wrap.
    ServerOptions l;
    l.max_body_bytes = SIZE_MAX;
    auto p =
        parse_all("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\nabc",
                  std::string::npos, l);
    EXPECT_EQ(p.error, 0) << p.reason;
    EXPECT_TRUE(p.partial);
    p = parse_all(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "ffffffffffffffff\r\nabc",
        std::string::npos, l);
    EXPECT_EQ(p.error, 0) << p.reason;
    EXPECT_TRUE(p.partial);
    ServerOptions small;
    small.max_body_bytes = 4;
    p = parse_all(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nab\r\nffffffffffffffff\r\nabc",
        std::string::npos, small);
    EXPECT_EQ(p.error, 413);
}

namespace {
std::string chunked_post(std::string_view chunks) {
    return "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(chunks);
}
}  // namespace

// Chunk framing costs bytes, CPU and time without adding to the body: a chunk-size line and the
// framing of a whole body are bounded (Node's CVE-2024-22019 is this bug class).
TEST(HttpParser, ChunkFramingIsBounded) {
    const std::size_t line = RequestParser::kMaxChunkLineBytes;
    struct Case {
        const char* what;
        std::string in;
        int status;  // 0: accepted; -1: 400 or 413 (which limit trips first depends on the reads)
    };
    const std::vector<Case> cases = {
        {"long extension",
         chunked_post("5;x=" + std::string(100000, 'a') + "\r\nhello\r\n0\r\n\r\n"), 400},
        {"leading zeros", chunked_post(std::string(100000, '0') + "5\r\nhello\r\n0\r\n\r\n"), 400},
        {"leading zeros of the last chunk", chunked_post(std::string(100000, '0') + "\r\n\r\n"),
         -1},
        {"extension just under the line limit",
         chunked_post("5;x=" + std::string(line - 16, 'a') + "\r\nhello\r\n0\r\n\r\n"), 0},
        {"extension just over the line limit",
         chunked_post("5;x=" + std::string(line, 'a') + "\r\nhello\r\n0\r\n\r\n"), 400},
        {"a trailer section",
         chunked_post("5\r\nhello\r\n0\r\nX-T: " + std::string(8000, 't') + "\r\n\r\n"), 0},
    };
    auto expect = [](const Case& c, int got, const std::string& how) {
        if (c.status < 0)
            EXPECT_TRUE(got == 400 || got == 413) << c.what << how << ": " << got;
        else
            EXPECT_EQ(got, c.status) << c.what << how;
    };
    for (const Case& c : cases) {
        auto p = parse_all(c.in);
        expect(c, p.error, " (reason: " + p.reason + ")");
        EXPECT_EQ(p.reqs.size(), c.status ? 0u : 1u) << c.what;
        expect(c, parse_all(c.in, 1000).error, ", in 1000-byte receives");
    }
    // Many chunks, each of one byte and a long extension: every line is under the limit, the
    // framing of the whole body is not.
    std::string many;
    for (int i = 0; i < 100; ++i)
        many += "1;e=" + std::string(line - 16, 'e') + "\r\nx\r\n";
    auto p = parse_all(chunked_post(many + "0\r\n\r\n"));
    EXPECT_EQ(p.error, 413) << p.reason;
    // Small chunks of ordinary size pass: 2,000 of 100 bytes.
    std::string honest;
    for (int i = 0; i < 2000; ++i)
        honest += "64\r\n" + std::string(100, 'd') + "\r\n";
    ServerOptions big;
    big.max_body_bytes = 1 << 20;
    p = parse_all(chunked_post(honest + "0\r\n\r\n"), 16384, big);
    EXPECT_EQ(p.error, 0) << p.reason;
    ASSERT_EQ(p.reqs.size(), 1u);
    EXPECT_EQ(p.reqs[0]->body().size(), 200000u);
}

// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (nginx: 400).
TEST(HttpParser, Http10WithTransferEncodingIsRefused) {
    EXPECT_EQ(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: "
                        "keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
              400);
    EXPECT_EQ(
        status_of("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        400);
    EXPECT_EQ(status_of("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"), 200);
}

// RFC 9112 §3.2: a Host field with an invalid value gets 400.
TEST(HttpParser, HostMustBeValid) {
    for (const char* bad : {"a b", "a/b@c", "../../etc", "a@b", "[::1", "[::1]x", "[]", "h:8x",
                            "h:80:80", "a%zz", "a%4", "\"q\"", "a\\b", "a?b", "a#b"})
        EXPECT_EQ(status_of(std::string("GET / HTTP/1.1\r\nHost: ") + bad + "\r\n\r\n"), 400)
            << "Host: " << bad;
    for (const char* good :
         {"", "example.com", "example.com:8080", "EXAMPLE.com:", "127.0.0.1", "[::1]", "[::1]:80",
          "[v1.x]", "xn--bcher-kva.example", "a%20b", "under_score.example", "a-b.c~d!$&'()*+,;="})
        EXPECT_EQ(status_of(std::string("GET / HTTP/1.1\r\nHost: ") + good + "\r\n\r\n"), 200)
            << "Host: " << good;
}

TEST(HttpParser, EmptyFieldNameIsRefused) {
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\n: x\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(parse_all("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", 1).error, 400);
    EXPECT_EQ(status_of(chunked_post("0\r\n: x\r\n\r\n")), 400) << "in a trailer too";
}

// 501 is for a well-formed request line whose method we do not implement; anything else that
// llhttp stops at in the method is a malformed request line (400).
TEST(HttpParser, RequestLineDecidesBetween501And400) {
    struct Case {
        std::string in;
        int status;
    };
    const std::vector<Case> cases = {
        {"HELLO\r\n\r\n", 400},
        {"HELLO\r\nHost: h\r\n\r\n", 400},
        {"BREW / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
        {"BREW /pot?milk=1 HTTP/1.0\r\n\r\n", 501},
        {"BREW /\r\n\r\n", 400},
        {"BREW  / HTTP/1.1\r\n\r\n", 400},
        {"BREW / HTTP/1.1 \r\n\r\n", 400},
        {"BREW / HTTQ/1.1\r\n\r\n", 400},
        {"BREW / HTTP/1.1\n\n", 400},
        {"BR(W / HTTP/1.1\r\n\r\n", 400},
        {"BREW /\x01 HTTP/1.1\r\n\r\n", 400},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(parse_all(c.in).error, c.status) << c.in;
        EXPECT_EQ(parse_all(c.in, 1).error, c.status) << c.in << " byte by byte";
    }
    // An incomplete line waits for more (the header timeout ends it).
    auto p = parse_all("BREW / HTTP/1");
    EXPECT_EQ(p.error, 0);
    EXPECT_TRUE(p.partial);
}

// The reasons in error answers are Weft's own words, never llhttp's internal messages (which
// are capitalized: "Pause on PRI/Upgrade", "Invalid method encountered").
TEST(HttpParser, ErrorReasonsAreWeftsOwn) {
    auto pri = parse_all("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    EXPECT_EQ(pri.error, 505);
    EXPECT_EQ(pri.reason, "this server speaks HTTP/1.1, not HTTP/2");
    for (const char* in :
         {"GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n", "G@T / HTTP/1.1\r\n\r\n",
          "GET / HTTX/1.1\r\n\r\n", "GET /a\x01 HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\nHost: h\n\n",
          "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1a\r\n\r\n",
          "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
          "\x16\x03\x01\x02\x00\x01"}) {
        auto p = parse_all(in);
        EXPECT_EQ(p.error, 400) << in;
        ASSERT_FALSE(p.reason.empty()) << in;
        EXPECT_TRUE(p.reason[0] >= 'a' && p.reason[0] <= 'z') << in << ": " << p.reason;
    }
}

// The fast path (whole GET/HEAD requests without a body, parsed without llhttp) must give
// exactly what llhttp gives, or decline: the same requests, fields, statuses and reasons, over
// hand-picked inputs and thousands of mutations of them, whole and byte by byte.
namespace {

std::string describe(const Parsed& p) {
    std::string out = "error " + std::to_string(p.error) + " (" + p.reason + ")" +
                      (p.partial ? " partial" : "") + "\n";
    for (const auto& r : p.reqs) {
        out += std::string(r->method_name()) + " [" + std::string(r->target()) + "] path [" +
               std::string(r->path()) + "] query [" + std::string(r->raw_query()) + "] 1." +
               std::to_string(r->version_minor()) + (r->keep_alive() ? " keep" : " close") +
               " method " + std::to_string(static_cast<int>(r->method())) + "\n";
        for (const auto& h : r->headers())
            out += "  [" + std::string(h.name) + "]=[" + std::string(h.value) + "]\n";
        out += "  body " + std::to_string(r->body().size()) + "\n";
    }
    return out;
}

}  // namespace

TEST(HttpParser, FastPathAgreesWithLlhttp) {
    const std::vector<std::string> seeds = {
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        "HEAD /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nUser-Agent: t/1.0\r\n\r\n",
        "GET /x HTTP/1.0\r\n\r\nGET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A:  spaced \t \r\nX-B:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1]:80\r\nConnection: Keep-Alive\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /%zz HTTP/1.1\r\nHost: h bad\r\n\r\n",
        "GET /q?a=1?b HTTP/1.0\r\nHost: h%41:8x\r\nConnection: keep-alive\r\n\r\n",
        "HEAD /? HTTP/1.1\r\nHost: h:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
    };
    // Bytes a mutation puts in: the ones that separate, end, fold or smuggle.
    const std::string alphabet = std::string(" \t\r\n:/?#%@\"<>{}|\\^`\x7f\x80\xff\x01", 24) +
                                 std::string(1, '\0') + "aZ9-.";
    std::mt19937 rng(20261204);
    auto check = [&](const std::string& in) {
        for (std::size_t chunk : {std::string::npos, std::size_t{1}, std::size_t{7}}) {
            const std::string fast = describe(parse_all(in, chunk, {}, true));
            const std::string slow = describe(parse_all(in, chunk, {}, false));
            ASSERT_EQ(fast, slow) << "input: " << ::testing::PrintToString(in) << " chunk "
                                  << chunk;
        }
    };
    for (const std::string& s : seeds)
        check(s);
    for (int i = 0; i < 20000; ++i) {
        std::string in = seeds[rng() % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits && !in.empty(); ++e) {
            const std::size_t at = rng() % in.size();
            const char c = alphabet[rng() % alphabet.size()];
            switch (rng() % 3) {
                case 0:
                    in[at] = c;
                    break;
                case 1:
                    in.insert(in.begin() + static_cast<std::ptrdiff_t>(at), c);
                    break;
                default:
                    in.erase(at, 1);
                    break;
            }
        }
        check(in);
        if (::testing::Test::HasFatalFailure()) return;
    }
    // Limits: a request over them is llhttp's to refuse, with its status.
    ServerOptions tight;
    tight.max_headers = 2;
    tight.max_uri_bytes = 8;
    tight.max_header_bytes = 64;
    for (const std::string& in :
         {std::string("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"),
          std::string("GET /123456789 HTTP/1.1\r\nHost: h\r\n\r\n"),
          std::string("GET / HTTP/1.1\r\nHost: h\r\nA: ") + std::string(60, 'x') + "\r\n\r\n"}) {
        EXPECT_EQ(describe(parse_all(in, std::string::npos, tight, true)),
                  describe(parse_all(in, std::string::npos, tight, false)))
            << in;
        EXPECT_NE(parse_all(in, std::string::npos, tight, true).error, 0) << in;
    }
}
