// HTTPS listeners with real clients: OpenSSL as a raw client (the malformed-request table over
// TLS, pipelining, large bodies, session resumption), curl (keep-alive, TLS 1.2 and 1.3, ALPN),
// plain HTTP sent to the TLS port, a handshake that never ends, and a certificate reloaded under
// open connections. Certificates are made by the `openssl` command in a temporary directory.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "demo_routes.hpp"
#include "http_test_util.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/weft.hpp"
#include "weft/http/client.hpp"
#include "weft/http/http.hpp"

using namespace std::chrono_literals;
using namespace weft::http;
using weft::http::testing::eventually;
using weft::http::testing::ParsedResponse;
using weft::http::testing::RawClient;

namespace {

std::string sh(const std::string& cmd, int* code = nullptr) {
    std::string out;
    FILE* f = ::popen(("timeout 60 " + cmd + " 2>&1").c_str(), "r");
    if (!f) return out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    const int st = ::pclose(f);
    if (code) *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/// A temporary directory with self-signed ECDSA P-256 certificates for 127.0.0.1 and localhost,
/// each its own trust anchor: `v1` and `v2` (for the reload).
struct Certs {
    Certs() {
        char tmpl[] = "/tmp/weft-tls-test-XXXXXX";
        dir = ::mkdtemp(tmpl);
        for (const char* name : {"v1", "v2"}) {
            int code = -1;
            std::string out =
                sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                   "-nodes -days 2 -subj /CN=weft-test-" +
                       std::string(name) +
                       " -addext "
                       "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
                       path(name, "key") + " -out " + path(name, "pem"),
                   &code);
            if (code != 0) throw std::runtime_error("openssl req failed: " + out);
        }
        // What the server serves: copies it can be pointed at and that a test may replace.
        std::filesystem::copy_file(path("v1", "pem"), cert());
        std::filesystem::copy_file(path("v1", "key"), key());
        // A client trusts both.
        std::ofstream(ca()) << slurp(path("v1", "pem")) << slurp(path("v2", "pem"));
    }
    ~Certs() { std::filesystem::remove_all(dir); }
    std::string path(const std::string& name, const std::string& ext) const {
        return dir + "/" + name + "." + ext;
    }
    std::string cert() const { return dir + "/server.pem"; }
    std::string key() const { return dir + "/server.key"; }
    std::string ca() const { return dir + "/ca.pem"; }
    static std::string slurp(const std::string& p) {
        std::ifstream f(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    }
    void serve(const std::string& name) const {
        std::filesystem::copy_file(path(name, "pem"), cert(),
                                   std::filesystem::copy_options::overwrite_existing);
        std::filesystem::copy_file(path(name, "key"), key(),
                                   std::filesystem::copy_options::overwrite_existing);
    }
    std::string dir;
};

struct TlsServer {
    explicit TlsServer(const Certs& certs, ServerOptions o = {}) {
        o.max_header_bytes = 4096;
        o.max_uri_bytes = 1024;
        o.max_body_bytes = 256 * 1024;
        // 1 s, unless the test chose another.
        if (o.header_timeout == ServerOptions{}.header_timeout) o.header_timeout = 1s;
        o.body_timeout = 2s;
        o.linger_timeout = 500ms;
        o.tls_cert = certs.cert();
        o.tls_key = certs.key();
        weft::RuntimeOptions ro;
        ro.hubs = 2;
        ro.name = "t";
        rt = std::make_unique<weft::Runtime>(ro);
        weft::demo::register_demo_routes(router);
        router.get("/big", [](Request& r) {
            return Response(200,
                            std::string(std::stoul(std::string(r.query("n").value_or("0"))), 'x'));
        });
        // A fiber sends 16 messages of 256 KiB while the handler echoes what the client sends:
        // sends and receives of one TLS connection in two fibers at once.
        router.websocket("/ws/flood", [](Request&, WebSocket& ws) {
            auto flood = weft::spawn("flood", [&] {
                for (int i = 0; i < 16; ++i)
                    if (!ws.send_binary(std::string(256 * 1024, static_cast<char>('a' + i))))
                        return;
            });
            while (auto m = ws.recv())
                if (!ws.send_text(m->data)) break;
            flood.join();
        });
        server = std::make_unique<Server>(*rt, router, std::move(o));
        auto a = server->listen(*weft::SocketAddress::parse("127.0.0.1:0"));
        if (!a) throw std::runtime_error("listen: " + a.error().message());
        port = a->port();
    }
    ~TlsServer() {
        server.reset();
        rt.reset();
    }
    const ConnectionCounters& counts() const { return server->metrics().connections(); }
    std::string url(std::string_view p) const {
        return "https://127.0.0.1:" + std::to_string(port) + std::string(p);
    }
    std::unique_ptr<weft::Runtime> rt;
    Router router;
    std::unique_ptr<Server> server;
    std::uint16_t port = 0;
};

struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

CtxPtr client_ctx(const Certs& certs, int max_version = 0) {
    CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_load_verify_locations(ctx.get(), certs.ca().c_str(), nullptr);
    if (max_version) SSL_CTX_set_max_proto_version(ctx.get(), max_version);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
    return ctx;
}

/// A RawClient speaking TLS (blocking OpenSSL on its socket).
struct TlsClient {
    TlsClient(std::uint16_t port, SSL_CTX* ctx, SSL_SESSION* resume = nullptr) : raw(port) {
        if (!raw.ok()) return;
        ssl.reset(SSL_new(ctx));
        SSL_set_fd(ssl.get(), raw.fd());
        SSL_set1_host(ssl.get(), "127.0.0.1");
        static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof kAlpn);
        if (resume) SSL_set_session(ssl.get(), resume);
        if (SSL_connect(ssl.get()) != 1) {
            char e[256];
            ERR_error_string_n(ERR_get_error(), e, sizeof e);
            error = e;
            ssl.reset();
            return;
        }
        SSL* s = ssl.get();
        raw.set_io(
            {[s](const char* p, std::size_t n) -> long {
                 return SSL_write(s, p, static_cast<int>(n));
             },
             [s](char* p, std::size_t n) -> long { return SSL_read(s, p, static_cast<int>(n)); },
             [s]() { return SSL_pending(s) > 0; }});
    }
    ~TlsClient() {
        if (ssl) SSL_shutdown(ssl.get());  // else OpenSSL marks the session not resumable
    }
    TlsClient(const TlsClient&) = delete;
    bool ok() const { return ssl != nullptr; }
    std::string subject() const {
        X509* c = SSL_get1_peer_certificate(ssl.get());
        if (!c) return "";
        char buf[256];
        X509_NAME_oneline(X509_get_subject_name(c), buf, sizeof buf);
        X509_free(c);
        return buf;
    }
    std::string alpn() const {
        const unsigned char* p = nullptr;
        unsigned int n = 0;
        SSL_get0_alpn_selected(ssl.get(), &p, &n);
        return std::string(reinterpret_cast<const char*>(p), n);
    }
    ParsedResponse get(const std::string& request) {
        raw.send(request);
        auto rs = raw.read_responses(1);
        return rs.empty() ? ParsedResponse{} : rs[0];
    }
    RawClient raw;
    std::unique_ptr<SSL, SslFree> ssl;
    std::string error;
};

constexpr const char* kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

TEST(HttpTls, MalformedRequestsGetTheSameAnswersOverTls) {
    Certs certs;
    TlsServer s(certs);
    auto ctx = client_ctx(certs);
    for (const auto& c : weft::http::testing::malformed_request_cases()) {
        TlsClient cl(s.port, ctx.get());
        ASSERT_TRUE(cl.ok()) << cl.error;
        cl.raw.send(c.request);
        auto rs = cl.raw.read_responses(1);
        ASSERT_EQ(rs.size(), 1u) << c.what;
        EXPECT_EQ(rs[0].status, c.status) << c.what << ": " << rs[0].body;
        if (std::string_view(c.what) != "bad escape in param") {
            EXPECT_EQ(rs[0].header("Connection").value_or(""), "close") << c.what;
            EXPECT_TRUE(cl.raw.wait_closed(3s)) << c.what << ": the connection must close";
        }
    }
    TlsClient after(s.port, ctx.get());
    ASSERT_TRUE(after.ok()) << after.error;
    EXPECT_EQ(after.get(kGet).status, 200);
}

TEST(HttpTls, KeepAlivePipeliningAndLargeBodies) {
    Certs certs;
    TlsServer s(certs);
    auto ctx = client_ctx(certs);
    TlsClient cl(s.port, ctx.get());
    ASSERT_TRUE(cl.ok()) << cl.error;
    EXPECT_EQ(cl.alpn(), "http/1.1");
    EXPECT_EQ(cl.subject(), "/CN=weft-test-v1");
    // Three requests in one record.
    cl.raw.send(std::string(kGet) + kGet + kGet);
    auto rs = cl.raw.read_responses(3);
    ASSERT_EQ(rs.size(), 3u);
    for (const auto& r : rs)
        EXPECT_EQ(r.status, 200);
    // A 200 KB upload echoed back, then a 3 MB response, on the same connection.
    std::string body(200 * 1024, 'u');
    for (std::size_t i = 0; i < body.size(); i += 97)
        body[i] = static_cast<char>('a' + i % 26);
    auto echo =
        cl.get("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body);
    EXPECT_EQ(echo.status, 200);
    EXPECT_EQ(echo.body, body);
    auto big = cl.get("GET /big?n=3000000 HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(big.status, 200);
    EXPECT_EQ(big.body.size(), 3000000u);
    // Idle after large records (its memory buffers made anew), the connection goes on.
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(cl.get(kGet).status, 200);
    EXPECT_EQ(s.counts().tls_handshakes.load(), 1u);
}

TEST(HttpTls, CurlKeepAliveTls12And13) {
    Certs certs;
    TlsServer s(certs);
    const std::string curl = "curl --noproxy '*' -sS --max-time 20 --cacert " + certs.ca();
    int code = -1;
    std::string out = sh(curl + " -v " + s.url("/") + " " + s.url("/hello"), &code);
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("SSL connection using TLSv1.3"), std::string::npos) << out;
    EXPECT_NE(out.find("ALPN: server accepted http/1.1"), std::string::npos) << out;
    EXPECT_NE(out.find("Re-using existing connection"), std::string::npos) << out;
    out = sh(curl + " -v --tlsv1.2 --tls-max 1.2 " + s.url("/"), &code);
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("SSL connection using TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256"),
              std::string::npos)
        << out;
    // Below TLS 1.2: refused.
    out = sh(curl + " --tlsv1.1 --tls-max 1.1 --ciphers DEFAULT@SECLEVEL=0 " + s.url("/"), &code);
    EXPECT_NE(code, 0) << out;
}

TEST(HttpTls, PlainHttpToTheTlsPortGetsAClearAnswerAndClose) {
    Certs certs;
    TlsServer s(certs);
    RawClient cl(s.port);
    ASSERT_TRUE(cl.ok());
    cl.send(kGet);
    auto rs = cl.read_responses(1);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].status, 400);
    EXPECT_EQ(rs[0].body, "The plain HTTP request was sent to an HTTPS port\n");
    // The Server and Date fields every answer carries.
    std::set<std::string> names;
    for (const auto& [n, v] : rs[0].headers)
        names.insert(n);
    EXPECT_TRUE(names.count("Date") && names.count("Server")) << rs[0].headers.size();
    EXPECT_TRUE(cl.wait_closed(3s));
    EXPECT_TRUE(cl.buffer().empty()) << "bytes after the answer: " << cl.buffer();
    EXPECT_EQ(s.counts().tls_failed_plain_http.load(), 1u);
    // Bytes that are neither TLS nor HTTP: closed without an answer.
    RawClient junk(s.port);
    junk.send(std::string("\x01\x02\x03\x04", 4));
    EXPECT_TRUE(junk.wait_closed(3s));
    EXPECT_TRUE(junk.buffer().empty());
    EXPECT_TRUE(weft::http::testing::RawClient(s.port).ok());
}

TEST(HttpTls, AHandshakeThatNeverEndsMeetsTheHeaderTimeout) {
    Certs certs;
    TlsServer s(certs);  // header_timeout 1 s
    auto ctx = client_ctx(certs);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<RawClient> slow;
    for (int i = 0; i < 20; ++i) {
        slow.emplace_back(s.port);
        slow.back().send(std::string("\x16\x03\x01\x02", 4));  // a ClientHello's first bytes
    }
    // Meanwhile others are served.
    TlsClient ok(s.port, ctx.get());
    ASSERT_TRUE(ok.ok()) << ok.error;
    EXPECT_EQ(ok.get(kGet).status, 200);
    for (auto& c : slow)
        EXPECT_TRUE(c.wait_closed(4s));
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(took, 3s);
    EXPECT_GE(took, 900ms);
    EXPECT_EQ(s.counts().tls_failed_timeout.load(), 20u);
    // A connection that never sends a byte closes at the same deadline, uncounted.
    RawClient silent(s.port);
    EXPECT_TRUE(silent.wait_closed(3s));
}

TEST(HttpTls, ReloadServesTheNewCertificateAndKeepsOpenConnections) {
    Certs certs;
    TlsServer s(certs);
    auto ctx = client_ctx(certs);
    TlsClient before(s.port, ctx.get());
    ASSERT_TRUE(before.ok()) << before.error;
    EXPECT_EQ(before.subject(), "/CN=weft-test-v1");
    EXPECT_NE(s.server->tls_summary().find("CN=weft-test-v1, valid until "), std::string::npos)
        << s.server->tls_summary();

    certs.serve("v2");
    ASSERT_TRUE(s.server->reload_tls());
    EXPECT_EQ(before.get(kGet).status, 200);  // the open connection keeps going
    TlsClient after(s.port, ctx.get());
    ASSERT_TRUE(after.ok()) << after.error;
    EXPECT_EQ(after.subject(), "/CN=weft-test-v2");

    // A broken file: the error says which and why; the certificate in use stays.
    std::ofstream(certs.cert()) << "not a certificate\n";
    auto bad = s.server->reload_tls();
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find(certs.cert()), std::string::npos) << bad.error();
    // A key that does not match the certificate.
    certs.serve("v1");
    std::filesystem::copy_file(certs.path("v2", "key"), certs.key(),
                               std::filesystem::copy_options::overwrite_existing);
    bad = s.server->reload_tls();
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find("does not match"), std::string::npos) << bad.error();
    TlsClient still(s.port, ctx.get());
    ASSERT_TRUE(still.ok()) << still.error;
    EXPECT_EQ(still.subject(), "/CN=weft-test-v2");
    EXPECT_EQ(still.get(kGet).status, 200);
}

// Files that are not what they should be: the error names what they hold instead.
TEST(HttpTls, AWrongFileSaysWhatItHolds) {
    Certs certs;
    TlsServer s(certs);
    auto reload_error = [&] {
        auto r = s.server->reload_tls();
        return r ? std::string("(loaded)") : r.error();
    };
    auto expect_in = [](const std::string& text, const std::string& part) {
        EXPECT_NE(text.find(part), std::string::npos) << text;
    };
    int code = -1;
    const std::string csr = certs.dir + "/req.pem", pub = certs.dir + "/pub.pem";
    sh("openssl req -new -key " + certs.path("v1", "key") + " -subj /CN=x -out " + csr, &code);
    ASSERT_EQ(code, 0);
    sh("openssl pkey -in " + certs.path("v1", "key") + " -pubout -out " + pub, &code);
    ASSERT_EQ(code, 0);
    auto put = [](const std::string& from, const std::string& to) {
        std::filesystem::remove_all(to);
        std::filesystem::copy_file(from, to);
    };
    // A certificate signing request as the certificate.
    put(csr, certs.cert());
    expect_in(reload_error(), "holds a certificate signing request, not a certificate");
    // A public key as the key.
    certs.serve("v1");
    put(pub, certs.key());
    expect_in(reload_error(), "holds a public key; tls_key needs the private key");
    // A directory.
    certs.serve("v1");
    std::filesystem::remove(certs.cert());
    std::filesystem::create_directory(certs.cert());
    expect_in(reload_error(), "it is a directory, not a file");
    std::filesystem::remove(certs.cert());
    // A chain whose leaf comes second: the key matches certificate 2.
    std::ofstream(certs.cert()) << Certs::slurp(certs.path("v2", "pem"))
                                << Certs::slurp(certs.path("v1", "pem"));
    put(certs.path("v1", "key"), certs.key());
    const std::string order = reload_error();
    expect_in(order, "does not match the certificate");
    expect_in(order,
              "it matches certificate 2 of the file; the chain must start with the "
              "server's own (leaf) certificate");
    // A key that matches none says only that.
    put(certs.path("v2", "key"), certs.key());
    std::ofstream(certs.cert(), std::ios::trunc) << Certs::slurp(certs.path("v1", "pem"));
    const std::string none = reload_error();
    expect_in(none, "does not match the certificate");
    EXPECT_EQ(none.find("it matches"), std::string::npos) << none;
    // And the server still serves what it had.
    auto ctx = client_ctx(certs);
    TlsClient still(s.port, ctx.get());
    ASSERT_TRUE(still.ok()) << still.error;
    EXPECT_EQ(still.get(kGet).status, 200);
}

TEST(HttpTls, SessionsResume) {
    Certs certs;
    TlsServer s(certs);
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        auto ctx = client_ctx(certs, version);
        SSL_SESSION* sess = nullptr;
        {
            TlsClient first(s.port, ctx.get());
            ASSERT_TRUE(first.ok()) << first.error;
            // TLS 1.3 tickets come after the handshake: read a response first.
            EXPECT_EQ(first.get(kGet).status, 200);
            sess = SSL_get1_session(first.ssl.get());
            ASSERT_NE(sess, nullptr);
        }
        TlsClient second(s.port, ctx.get(), sess);
        SSL_SESSION_free(sess);
        ASSERT_TRUE(second.ok()) << second.error;
        EXPECT_EQ(SSL_session_reused(second.ssl.get()), 1) << "TLS version " << version;
        EXPECT_EQ(second.get(kGet).status, 200);
    }
}

// `openssl s_server -www` for TLS 1.2 only, on a free port of 127.0.0.1: it answers each
// request with a page that says whether the session was "New" or "Reused".
struct OpensslServer {
    explicit OpensslServer(const Certs& certs) {
        for (int attempt = 0; attempt < 5 && pid <= 0; ++attempt) {
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t len = sizeof a;
            if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
                ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
                ::close(fd);
                continue;
            }
            ::close(fd);
            port = ntohs(a.sin_port);
            const std::string accept = "127.0.0.1:" + std::to_string(port);
            pid = ::fork();
            if (pid == 0) {
                const int null = ::open("/dev/null", O_RDWR);
                ::dup2(null, 0);
                ::dup2(null, 1);
                ::dup2(null, 2);
                ::execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept.c_str(),
                         "-cert", certs.cert().c_str(), "-key", certs.key().c_str(), "-tls1_2",
                         "-www", static_cast<char*>(nullptr));
                ::_exit(127);
            }
            // Listening once a connection is accepted (it exits at once if the port was taken).
            for (int i = 0; i < 100; ++i) {
                RawClient probe(port);
                if (probe.ok()) return;
                if (::waitpid(pid, nullptr, WNOHANG) == pid) {
                    pid = -1;
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    }
    ~OpensslServer() {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            ::waitpid(pid, nullptr, 0);
        }
    }
    pid_t pid = -1;
    std::uint16_t port = 0;
};

// Weft's client resumes the session an origin gave its last connection: under TLS 1.3 (the
// server's tickets come after the handshake: weft's server counts the resumptions) and under
// TLS 1.2 (openssl s_server's page says "Reused"). Another origin gets a full handshake.
TEST(HttpTls, TheClientResumesTheSessionAnOriginGaveIt) {
    Certs certs;
    TlsServer s(certs);
    OpensslServer tls12(certs);
    ASSERT_GT(tls12.pid, 0) << "openssl s_server did not start";
    weft::http::ClientOptions o;
    o.ca_file = certs.ca();
    o.max_idle_per_host = 0;  // a new connection for every request
    std::vector<std::string> pages;
    weft::run([&] {
        weft::http::Client c(o);
        for (int i = 0; i < 3; ++i) {
            auto r = c.get(s.url("/"));
            ASSERT_TRUE(r) << r.error().message();
            EXPECT_EQ(r->status, 200);
        }
        // The same server by another name: another origin, nothing to resume.
        auto r = c.get("https://localhost:" + std::to_string(s.port) + "/");
        ASSERT_TRUE(r) << r.error().message();
        for (int i = 0; i < 2; ++i) {
            r = c.get("https://127.0.0.1:" + std::to_string(tls12.port) + "/");
            ASSERT_TRUE(r) << r.error().message();
            pages.push_back(r->body);
        }
    });
    EXPECT_EQ(s.counts().tls_handshakes.load(), 4u);
    EXPECT_EQ(s.counts().tls_resumed.load(), 2u);
    ASSERT_EQ(pages.size(), 2u);
    EXPECT_NE(pages[0].find("New, TLSv1.2"), std::string::npos) << pages[0];
    EXPECT_NE(pages[1].find("Reused, TLSv1.2"), std::string::npos) << pages[1];
}

TEST(HttpTls, CertificateWithoutKeyIsRefused) {
    Certs certs;
    weft::RuntimeOptions ro;
    ro.hubs = 1;
    weft::Runtime rt(ro);
    Router router;
    ServerOptions o;
    o.tls_cert = certs.cert();
    EXPECT_THROW(Server(rt, router, o), std::invalid_argument);
    o.tls_key = certs.dir + "/missing.key";
    try {
        Server srv(rt, router, o);
        ADD_FAILURE() << "a missing key file must be refused";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos) << e.what();
    }
}

}  // namespace

// At max_connections, handshakes that keep arriving (one byte of a ClientHello each) are
// closed to make room after a quarter of header_timeout, as slow request heads are, not left
// to run out their whole header_timeout while real clients wait.
TEST(HttpTls, SlowHandshakesMakeRoomAtTheLimit) {
    Certs certs;
    ServerOptions o;
    o.max_connections = 10;
    // A quarter of it, 1 s, apart from the whole by enough for a loaded machine to tell.
    o.header_timeout = 4s;
    TlsServer s(certs, o);
    std::vector<std::unique_ptr<RawClient>> slow;
    const auto sent = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) {
        slow.push_back(std::make_unique<RawClient>(s.port));
        ASSERT_TRUE(slow.back()->send(std::string("\x16", 1)));
    }
    ASSERT_TRUE(eventually([&] { return s.server->connections() == 10u; }))
        << s.server->connections() << " connections";
    // Time for the hubs to read the first bytes: a connection that sent nothing yet is idle,
    // and would be the one closed instead.
    std::this_thread::sleep_until(sent + 150ms);
    auto ctx = client_ctx(certs);
    const auto t0 = std::chrono::steady_clock::now();
    TlsClient cl(s.port, ctx.get());
    ASSERT_TRUE(cl.ok()) << cl.error;
    EXPECT_EQ(cl.get(kGet).status, 200);
    // Served about 1 s after the slow handshakes began (0.85 s after t0), not 4 s.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms)
        << "the newcomer waited for the slow handshakes' header_timeout";
    EXPECT_GE(s.counts().reclaimed_slow_head.load(), 1u);
}

TEST(HttpTls, APartialRecordDrippedWhileIdleDoesNotPostponeTheIdleTimeout) {
    Certs certs;
    ServerOptions o;
    o.idle_timeout = 1s;
    TlsServer s(certs, o);
    auto ctx = client_ctx(certs);
    TlsClient cl(s.port, ctx.get());
    ASSERT_TRUE(cl.ok()) << cl.error;
    ASSERT_EQ(cl.get(kGet).status, 200);
    const auto answered = std::chrono::steady_clock::now();
    // The header of a 16 KiB application-data record, then its first bytes, one every 200 ms:
    // ciphertext keeps coming, but no request. Before, every byte restarted the idle timeout.
    const std::string record("\x17\x03\x03\x40\x00", 5);
    const int fd = cl.raw.fd();
    bool closed = false;
    for (std::size_t i = 0; i < 20 && !closed; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) > 0) {
            closed = true;  // close_notify, or the end of the stream
            break;
        }
        const char byte = i < record.size() ? record[i] : 'x';
        if (::send(fd, &byte, 1, MSG_NOSIGNAL) != 1) closed = true;
    }
    const auto took = std::chrono::steady_clock::now() - answered;
    EXPECT_TRUE(closed) << "the connection was still open after 4 s of dripped ciphertext";
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 2500ms);
}

namespace {

// A masked client frame with FIN set (payloads under 126 bytes).
std::string small_client_frame(int opcode, std::string_view payload) {
    std::string f;
    f += static_cast<char>(0x80 | opcode);
    f += static_cast<char>(0x80 | payload.size());
    const char mask[4] = {0x21, 0x43, 0x65, 0x07};
    f.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        f += static_cast<char>(payload[i] ^ mask[i % 4]);
    return f;
}

// Takes the first whole server frame (unmasked) off `b`: {opcode, payload}, or opcode -1.
std::pair<int, std::string> take_frame(std::string& b) {
    if (b.size() < 2) return {-1, {}};
    const auto len7 = static_cast<unsigned char>(b[1]) & 0x7f;
    std::size_t head = 2, n = len7;
    if (len7 == 126) {
        if (b.size() < 4) return {-1, {}};
        head = 4;
        n = (static_cast<unsigned char>(b[2]) << 8) | static_cast<unsigned char>(b[3]);
    } else if (len7 == 127) {
        if (b.size() < 10) return {-1, {}};
        head = 10;
        n = 0;
        for (int i = 2; i < 10; ++i)
            n = (n << 8) | static_cast<unsigned char>(b[i]);
    }
    if (b.size() < head + n) return {-1, {}};
    std::pair<int, std::string> f{static_cast<unsigned char>(b[0]) & 0x0f, b.substr(head, n)};
    b.erase(0, head + n);
    return f;
}

}  // namespace

// Over TLS a fiber's send and the handler's receive each need their own buffer: they share a
// connection, and the receive's bytes must not land in ciphertext still being sent.
TEST(HttpTls, AWebSocketSendsFromAnotherFiberWhileItsHandlerReceives) {
    Certs certs;
    TlsServer s(certs);
    auto ctx = client_ctx(certs);
    TlsClient cl(s.port, ctx.get());
    ASSERT_TRUE(cl.ok()) << cl.error;
    ASSERT_TRUE(cl.raw.send(
        "GET /ws/flood HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    std::string& in = cl.raw.buffer();
    ASSERT_TRUE(cl.raw.read_until(
        [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }, 5s));
    ASSERT_EQ(in.rfind("HTTP/1.1 101 ", 0), 0u) << in;
    in.erase(0, in.find("\r\n\r\n") + 4);
    // The client reads slowly (the flood's sends wait for room) and keeps sending meanwhile.
    int binaries = 0, echoes = 0, sent = 0;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while ((binaries < 16 || echoes < sent) && std::chrono::steady_clock::now() < until &&
           !cl.raw.eof()) {
        if (sent < 200) {
            ASSERT_TRUE(cl.raw.send(small_client_frame(1, "m" + std::to_string(sent++))));
        }
        const std::size_t had = in.size();
        cl.raw.read_until([had](const std::string& b) { return b.size() > had; }, 200ms);
        for (auto f = take_frame(in); f.first != -1; f = take_frame(in)) {
            if (f.first == 2) {
                EXPECT_EQ(f.second, std::string(256 * 1024, static_cast<char>('a' + binaries)));
                ++binaries;
            } else if (f.first == 1) {
                EXPECT_EQ(f.second, "m" + std::to_string(echoes));
                ++echoes;
            } else {
                ADD_FAILURE() << "frame with opcode " << f.first;
            }
        }
        std::this_thread::sleep_for(2ms);
    }
    EXPECT_FALSE(cl.raw.eof()) << "the connection broke (a corrupted TLS record?)";
    EXPECT_EQ(binaries, 16);
    EXPECT_EQ(echoes, sent);
    cl.raw.send(small_client_frame(8, std::string("\x03\xe8", 2)));
}
