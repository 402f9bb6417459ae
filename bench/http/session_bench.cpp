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

#include <memory>
#include <string>
#include <vector>

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

// `sessions` sessions, each with its own batch of `depth` pipelined requests, fed in turn.
void run_sessions(benchmark::State& st, std::size_t sessions, int depth) {
    weft::run([&] {
        ServerOptions opts;
        Router router;
        weft::demo::register_demo_routes(router);
        DateCache date(server_header_line(opts));
        bool draining = false;
        HubRequestMetrics metrics;
        const SessionContext ctx = make_session_context(opts, router, &metrics, date, draining, 0);
        const weft::SocketAddress peer = *weft::SocketAddress::parse("127.0.0.1:40000");
        // A socket, as a connection has: with one, a handler that never waits is timed by the
        // coarse clock (see RequestLife::deadline_passed), as in the server.
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
            st.SkipWithError("socketpair failed");
            return;
        }
        struct One {
            explicit One(const SessionContext& c) : session(c) {}
            Http1Session session;
            ConnectionInfo info;
            DropTransport transport;
            std::string batch;
        };
        std::vector<std::unique_ptr<One>> all;
        for (std::size_t i = 0; i < sessions; ++i) {
            auto o = std::make_unique<One>(ctx);
            o->info.fd = fds[0];
            o->info.peer = &peer;
            o->info.peer_text = "127.0.0.1:40000";
            for (int k = 0; k < depth; ++k)
                o->batch += "GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";
            o->session.start(o->info, o->transport);
            all.push_back(std::move(o));
        }
        std::size_t next = 0;
        for (auto _ : st) {
            One& o = *all[next];
            next = next + 1 == sessions ? 0 : next + 1;
            const Step s = o.session.on_bytes(o.batch, weft::Clock::now());
            benchmark::DoNotOptimize(s);
        }
        for (auto& o : all) {
            o->session.finish();
            if (o->transport.bytes == 0 &&
                st.iterations() >= static_cast<benchmark::IterationCount>(sessions))
                st.SkipWithError("no response was sent");
        }
        ::close(fds[0]);
        ::close(fds[1]);
    });
    st.SetItemsProcessed(st.iterations() * depth);
    st.counters["ns_per_request"] =
        benchmark::Counter(static_cast<double>(st.iterations() * depth),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_PipelinedBatch(benchmark::State& st) {
    run_sessions(st, 1, static_cast<int>(st.range(0)));
}
BENCHMARK(BM_PipelinedBatch)->Arg(1)->Arg(16)->UseRealTime();

// As above, but over many sessions in turn, each with its own copy of the batch: as the server
// runs 256 pipelining connections, where each connection's state and input are cold again by
// the time its next batch comes. The difference to BM_PipelinedBatch/16 is what the per-
// connection footprint costs in cache misses.
void BM_PipelinedManySessions(benchmark::State& st) {
    run_sessions(st, static_cast<std::size_t>(st.range(0)), 16);
}
BENCHMARK(BM_PipelinedManySessions)->Arg(1)->Arg(256)->Arg(1024)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
