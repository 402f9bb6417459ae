// The user-space cost of the HTTP session per request, without sockets and without the kernel:
// a batch of pipelined "GET /" requests (as bench/http/pipeline.lua sends them) goes through
// Http1Session::on_bytes() inside a fiber, against the demo routes and a transport that drops
// what it is given. The server's figure under wrk (bench/http/run.sh) adds the kernel, the
// event loop and the cache misses that the kernel's work between batches causes; this one
// shows what a change to parsing, routing, the handler call or serialization saves.
//
//   build/bench/http/session_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "demo_routes.hpp"
#include "metrics_table.hpp"
#include "session.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/runtime.hpp"

namespace {

using namespace weft::http;
using namespace weft::http::detail;

class DropTransport final : public Transport {
  public:
    weft::Result<void> send(std::span<const iovec> bufs) override {
        for (const iovec& v : bufs)
            bytes += v.iov_len;
        return {};
    }
    weft::Result<void> send_buffer(ByteBuffer& out) override {
        bytes += out.size();
        out.clear();
        return {};
    }
    std::uint64_t bytes = 0;
};

void BM_PipelinedBatch(benchmark::State& st) {
    const auto depth = static_cast<int>(st.range(0));
    weft::run([&] {
        ServerOptions opts;
        Router router;
        weft::demo::register_demo_routes(router);
        DateCache date(server_header_line(opts));
        bool draining = false;
        HubRequestMetrics metrics;
        const SessionContext ctx = make_session_context(opts, router, &metrics, date, draining, 0);
        Http1Session session(ctx);
        const weft::SocketAddress peer = *weft::SocketAddress::parse("127.0.0.1:40000");
        // A socket, as a connection has: with one, a handler that never waits is timed by the
        // coarse clock (see RequestLife::deadline_passed), as in the server.
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
            st.SkipWithError("socketpair failed");
            return;
        }
        ConnectionInfo info;
        info.fd = fds[0];
        info.peer = &peer;
        info.peer_text = "127.0.0.1:40000";
        DropTransport transport;
        std::string batch;
        for (int i = 0; i < depth; ++i)
            batch += "GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";
        session.start(info, transport);
        for (auto _ : st) {
            const Step s = session.on_bytes(batch, weft::Clock::now());
            benchmark::DoNotOptimize(s);
        }
        session.finish();
        ::close(fds[0]);
        ::close(fds[1]);
        if (transport.bytes == 0) st.SkipWithError("no response was sent");
    });
    st.SetItemsProcessed(st.iterations() * depth);
    st.counters["ns_per_request"] =
        benchmark::Counter(static_cast<double>(st.iterations() * depth),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PipelinedBatch)->Arg(1)->Arg(16)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
