// libFuzzer target: raw bytes through the whole request path of a connection — llhttp glue,
// limits, pipelining and batches, chunked decoding, routing, responses — without sockets.
// The first byte picks how the bytes arrive (whole, byte by byte, in odd pieces) and which
// limits and server states apply (small limits, an unlimited body, drain, a request cap, a
// read timeout, a failing socket); the rest is what the client sent. Besides the sanitizers,
// the output is checked: it must be a well-formed sequence of responses, one per logged
// request, in order.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "metrics_table.hpp"
#include "session.hpp"
#include "weft/core/log.hpp"

using namespace weft::http;
using namespace weft::http::detail;

namespace {

[[noreturn]] void violated(const char* what) {
    std::fprintf(stderr, "http fuzz invariant violated: %s\n", what);
    std::abort();
}

class BufferTransport final : public Transport {
  public:
    weft::Result<void> send(std::span<const iovec> bufs) override {
        if (fail_after >= 0 && sends >= fail_after) {
            failed = true;
            return weft::Errc::connection_reset;
        }
        ++sends;
        for (const iovec& v : bufs)
            out.append(static_cast<const char*>(v.iov_base), v.iov_len);
        return {};
    }
    std::string out;
    int sends = 0;
    int fail_after = -1;
    bool failed = false;
};

const Router& router() {
    static const Router r = [] {
        Router x;
        x.get("/", [](Request&) { return Response(200, "Hello, World!", "text/plain"); });
        x.post("/echo", [](Request& q) {
            return Response(200, q.take_body(),
                            q.header("Content-Type").value_or("application/octet-stream"));
        });
        x.get("/users/{id}", [](Request& q) {
            std::string s(q.param("id").value_or(""));
            for (const Param& p : q.query_params())
                s += std::string(p.name) + "=" + std::string(p.value);
            return Response(200, s);
        });
        x.get("/files/{path...}",
              [](Request& q) { return Response(200, std::string(q.param("path").value_or(""))); });
        x.get("/big", [](Request&) { return Response(200, std::string(9000, 'b')); });
        x.get("/empty", [](Request&) { return Response(204); });
        x.get("/throw", [](Request&) -> Response { throw std::runtime_error("fuzz"); });
        x.add_stream("GET", "/stream", [](Request&, ResponseStream& s) {
            (void)s.write("ab");
            (void)s.write("");
            (void)s.write("cde");
        });
        x.put("/echo", [](Request& q) { return Response(201, std::string(q.body())); });
        return x;
    }();
    return r;
}

struct Logged {
    bool head = false;
    int status = 0;
    bool complete = true;
    std::uint64_t bytes = 0;
};

/// Checks `out` is exactly: 100 Continue interim responses and one final response per entry of
/// `log`, in order, each well-formed. A body without length may only end the output.
void check_output(std::string_view out, const std::vector<Logged>& log) {
    std::size_t i = 0;
    while (!out.empty()) {
        constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        if (out.substr(0, kContinue.size()) == kContinue) {
            out.remove_prefix(kContinue.size());
            continue;
        }
        if (i >= log.size()) violated("more responses than logged requests");
        std::size_t end = out.find("\r\n\r\n");
        if (end == std::string_view::npos) violated("response head not terminated");
        std::string_view head = out.substr(0, end + 2);
        out.remove_prefix(end + 4);
        if (head.substr(0, 9) != "HTTP/1.1 " || head.size() < 14) violated("bad status line");
        int status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
        if (status != log[i].status) violated("status differs from the logged one");
        std::size_t line_end = head.find("\r\n");
        std::string_view rest = head.substr(line_end + 2);
        long length = -1;
        bool chunked = false;
        while (!rest.empty()) {
            std::size_t e = rest.find("\r\n");
            std::string_view line = rest.substr(0, e);
            rest.remove_prefix(e + 2);
            std::size_t colon = line.find(": ");
            if (colon == std::string_view::npos || colon == 0) violated("malformed header line");
            if (line.find('\r') != std::string_view::npos ||
                line.find('\n') != std::string_view::npos)
                violated("CR or LF inside a header line");
            std::string_view name = line.substr(0, colon);
            std::string_view value = line.substr(colon + 2);
            if (iequals(name, "Content-Length")) {
                if (length >= 0) violated("two Content-Lengths");
                length = std::strtol(std::string(value).c_str(), nullptr, 10);
            }
            if (iequals(name, "Transfer-Encoding")) chunked = value == "chunked";
        }
        if (length >= 0 && chunked) violated("Content-Length with chunked");
        bool bodiless = log[i].head || status < 200 || status == 204 || status == 304;
        if (bodiless) {
            if (status == 204 || status == 304) {
                if (length >= 0) violated("Content-Length on a bodiless status");
            }
        } else if (length >= 0) {
            if (out.size() < static_cast<std::size_t>(length)) violated("body shorter than length");
            out.remove_prefix(static_cast<std::size_t>(length));
        } else if (chunked) {
            for (;;) {
                std::size_t le = out.find("\r\n");
                if (le == std::string_view::npos) violated("chunk size line not terminated");
                std::size_t n = std::strtoul(std::string(out.substr(0, le)).c_str(), nullptr, 16);
                out.remove_prefix(le + 2);
                if (n == 0) {
                    if (out.substr(0, 2) != "\r\n") violated("last chunk not terminated");
                    out.remove_prefix(2);
                    break;
                }
                if (out.size() < n + 2 || out.substr(n, 2) != "\r\n") violated("bad chunk");
                out.remove_prefix(n + 2);
            }
        } else {
            out = {};  // delimited by the connection's close: must be the last response
        }
        ++i;
    }
    if (i != log.size()) violated("fewer responses than logged requests");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static bool quiet = [] {
        weft::logger("http")->set_level(spdlog::level::off);
        return true;
    }();
    (void)quiet;
    if (size < 1) return 0;
    const std::uint8_t mode = data[0];
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

    ServerOptions opts;
    if (mode & 0x04) {
        opts.max_header_bytes = 200;
        opts.max_uri_bytes = 40;
        opts.max_headers = 4;
        opts.max_body_bytes = 64;
    }
    if (mode & 0x10) opts.max_requests_per_connection = 3;
    if (mode & 0x80) opts.max_body_bytes = 0;  // unlimited
    std::vector<Logged> log;
    opts.access_log = [&log](const AccessLogEntry& e) {
        log.push_back({e.method == "HEAD", e.status, e.complete, e.bytes});
    };
    bool draining = (mode & 0x08) != 0;
    DateCache date{server_header_line(opts)};
    HubRequestMetrics metrics;
    const SessionContext ctx = make_session_context(opts, router(), &metrics, date, draining, 0);
    Http1Session session(ctx);
    weft::SocketAddress peer = *weft::SocketAddress::parse("127.0.0.1:9");
    ConnectionInfo info;
    info.peer = &peer;
    info.peer_text = "127.0.0.1:9";
    BufferTransport transport;
    if (mode & 0x40) transport.fail_after = 1;
    session.start(info, transport);

    // How the bytes arrive: all at once, one by one, 7 at a time, or in sizes the input picks.
    std::size_t pos = 0;
    std::size_t k = 0;
    auto next_piece = [&]() -> std::size_t {
        switch (mode & 0x03) {
            case 0:
                return input.size();
            case 1:
                return 1;
            case 2:
                return 7;
            default: {
                std::size_t n =
                    1 + (static_cast<unsigned char>(input[(k++ * 31) % input.size()]) % 64);
                return n;
            }
        }
    };
    auto now = weft::Clock::now();
    Step step;
    while (pos < input.size()) {
        std::size_t n = std::min(next_piece(), input.size() - pos);
        step = session.on_bytes(input.substr(pos, n), now);
        pos += n;
        if (step.kind == Step::Kind::close) break;
    }
    if (step.kind == Step::Kind::read && (mode & 0x20)) step = session.on_timeout();
    // The end of the connection logs the request it cut short, if one was begun and not
    // answered: one entry at most, 400 or 503, nothing sent, and no response to match.
    const std::size_t answered = log.size();
    session.finish();
    if (log.size() > answered + 1) violated("more than one request logged at the end");
    if (log.size() == answered + 1) {
        const Logged& cut = log.back();
        if ((cut.status != 400 && cut.status != 503) || cut.complete || cut.bytes != 0)
            violated("a request cut short by the end was logged as answered");
        log.pop_back();
    }
    if (!transport.failed) check_output(transport.out, log);
    return 0;
}
