// Core runtime micro-benchmarks (run on purpose, in a Release build, never in CI):
// yield round trip (one fiber: no other is ready, so no stack switch), yield ping-pong between
// two fibers (a real A -> B -> A round trip), spawn+join, channel ping-pong, mutex hand-off, TCP
// echo round trip over loopback, each on both backends (arg 0 = io_uring, 1 = epoll) with hub stats
// on (arg 1) or off (arg 0); and memory per parked fiber. A calibration: Boost.Context's bare
// jump_fcontext round trip, called directly and from 3 calls deep (as a yield is), with nothing
// else around it -- the floor any fiber switch built on it pays.
#include <benchmark/benchmark.h>
#include <boost/context/detail/fcontext.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "weft/core/log.hpp"
#include "weft/core/weft.hpp"

namespace {

weft::RuntimeOptions opts(const benchmark::State& st) {
    weft::RuntimeOptions o;
    o.name = "bench";
    o.backend = st.range(0) == 0 ? weft::Backend::io_uring : weft::Backend::epoll;
    o.collect_stats = st.range(1) != 0;
    return o;
}

void label(benchmark::State& st) {
    st.SetLabel(std::string(st.range(0) == 0 ? "io_uring" : "epoll") +
                (st.range(1) ? ",stats" : ",nostats"));
}

void BM_YieldRoundTrip(benchmark::State& st) {
    weft::run(
        [&] {
            for (auto _ : st)
                weft::yield();
        },
        opts(st));
    label(st);
}

namespace bc = boost::context::detail;
bc::fcontext_t raw_peer;

__attribute__((noinline)) void raw_switch(int depth) {
    if (depth > 0) {
        raw_switch(depth - 1);
        benchmark::ClobberMemory();  // keeps the call from becoming a tail call
        return;
    }
    raw_peer = bc::jump_fcontext(raw_peer, &depth).fctx;
}

void raw_peer_entry(bc::transfer_t t) {
    raw_peer = t.fctx;
    for (;;)
        raw_switch(*static_cast<int*>(t.data));
}

void BM_RawFcontextRoundTrip(benchmark::State& st) {
    std::vector<char> stack(64 * 1024);
    int depth = static_cast<int>(st.range(0));
    raw_peer = bc::make_fcontext(stack.data() + stack.size(), stack.size(), &raw_peer_entry);
    raw_peer = bc::jump_fcontext(raw_peer, &depth).fctx;  // the peer starts and comes back
    for (auto _ : st)
        raw_switch(depth);
    // The peer's stack is dropped while it is parked; it owns nothing.
    st.SetLabel("call depth " + std::to_string(depth));
}

// Two fibers alternating through yield: one iteration is a full round trip A -> B -> A
// (two stack switches).
void BM_YieldPingPong(benchmark::State& st) {
    weft::run(
        [&] {
            bool stop = false;
            auto other = weft::spawn("other", [&] {
                while (!stop)
                    weft::yield();
            });
            weft::yield();
            for (auto _ : st)
                weft::yield();
            stop = true;
            other.join();
        },
        opts(st));
    label(st);
}

void BM_SpawnJoin(benchmark::State& st) {
    weft::run(
        [&] {
            for (auto _ : st)
                weft::spawn("b", [] {}).join();
        },
        opts(st));
    label(st);
}

void BM_ChannelPingPong(benchmark::State& st) {
    weft::run(
        [&] {
            weft::Channel<int> ping(1), pong(1);
            auto echo = weft::spawn("echo", [&] {
                for (;;) {
                    auto v = ping.recv();
                    if (!v) return;
                    (void)pong.send(*v);
                }
            });
            for (auto _ : st) {
                (void)ping.send(1);
                benchmark::DoNotOptimize(pong.recv());
            }
            ping.close();
            echo.join();
        },
        opts(st));
    st.SetItemsProcessed(st.iterations() * 2);  // two channel hand-offs per iteration
    label(st);
}

void BM_MutexHandoff(benchmark::State& st) {
    weft::run(
        [&] {
            weft::Mutex m;
            bool stop = false;
            auto other = weft::spawn("other", [&] {
                while (!stop) {
                    (void)m.lock();
                    weft::yield();
                    m.unlock();
                }
            });
            for (auto _ : st) {
                (void)m.lock();  // parks until `other` hands the lock over
                weft::yield();
                m.unlock();
            }
            stop = true;
            other.join();
        },
        opts(st));
    label(st);
}

void BM_EchoRoundTrip(benchmark::State& st) {
    weft::run(
        [&] {
            auto l = weft::TcpListener::bind(*weft::SocketAddress::parse("127.0.0.1:0"));
            auto server = weft::spawn("server", [&] {
                auto s = l->accept();
                if (!s) return;
                char buf[256];
                for (;;) {
                    auto n = s->recv(buf);
                    if (!n || *n == 0 || !s->send(std::string_view(buf, *n))) return;
                }
            });
            auto c = weft::TcpStream::connect(*l->local_address());
            (void)c->set_nodelay(true);
            char msg[64] = {};
            char buf[64];
            for (auto _ : st) {
                (void)c->send(std::string_view(msg, sizeof msg));
                std::size_t got = 0;
                while (got < sizeof msg) {
                    auto n = c->recv(std::span<char>(buf, sizeof buf - got));
                    if (!n || *n == 0) break;
                    got += *n;
                }
            }
            c->close();
            server.join();
        },
        opts(st));
    label(st);
}

long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string k;
    long v = 0;
    while (in >> k) {
        if (k == "VmRSS:") {
            in >> v;
            return v;
        }
    }
    return 0;
}

// Memory per parked fiber: RSS delta over N fibers parked on an event (stacks fresh from the
// kernel, so the delta counts what a parked fiber really touches).
void BM_ParkedFiberMemory(benchmark::State& st) {
    const int n = static_cast<int>(st.range(2));
    double per_fiber = 0;
    for (auto _ : st) {
        weft::run(
            [&] {
                weft::Event go;
                long before = rss_kib();
                std::vector<weft::Fiber<void>> fs;
                fs.reserve(n);
                for (int i = 0; i < n; ++i)
                    fs.push_back(weft::spawn("parked", [&] { (void)go.wait(); }));
                weft::yield();  // let them all run up to their wait
                long after = rss_kib();
                per_fiber = (after - before) * 1024.0 / n;
                go.set();
                for (auto& f : fs)
                    f.join();
            },
            opts(st));
    }
    st.counters["bytes_per_parked_fiber"] = per_fiber;
    label(st);
}

void backends(benchmark::internal::Benchmark* b) {
    for (int backend : {0, 1})
        for (int stats : {1, 0})
            b->Args({backend, stats});
}

BENCHMARK(BM_RawFcontextRoundTrip)->Arg(0)->Arg(3);
BENCHMARK(BM_YieldRoundTrip)->Apply(backends);
BENCHMARK(BM_YieldPingPong)->Apply(backends);
BENCHMARK(BM_SpawnJoin)->Apply(backends);
BENCHMARK(BM_ChannelPingPong)->Apply(backends);
BENCHMARK(BM_MutexHandoff)->Apply(backends);
BENCHMARK(BM_EchoRoundTrip)->Apply(backends);
BENCHMARK(BM_ParkedFiberMemory)->Args({0, 1, 10000})->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::warn);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
