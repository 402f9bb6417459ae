// What the monitor costs the hubs: throughput with the watchdog and hub statistics on (B) versus
// both off (A), on core-level workloads, as a ratio of medians over interleaved runs
// (A B A B ...), so that drift of a shared machine hits both sides alike. Run on purpose, in a
// Release build; prints figures, asserts nothing.
//
// Usage: monitor_overhead_bench [--rounds N] [--seconds S] [--workload yield|channel|echo|all]
//
// The final figure is pipelined wrk against the HTTP server's `/`; until that exists these
// workloads bound it: yield and channel ping-pong are all switches (the worst case for a per-switch
// cost), the loopback echo adds the I/O path.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "weft/core/log.hpp"
#include "weft/core/weft.hpp"
#include "weft/monitor/exposition.hpp"
#include "weft/monitor/standard_metrics.hpp"
#include "weft/monitor/watchdog.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
    bool stats = false;     // RuntimeOptions::collect_stats and the lag probe
    bool watchdog = false;  // the watchdog and a scrape every second
};

// A runtime as configured, with the watchdog (and a scraper, like Prometheus every second) when
// monitored.
struct Setup {
    explicit Setup(const Config& c, unsigned hubs) {
        weft::RuntimeOptions o;
        o.hubs = hubs;
        o.name = "bench";
        o.collect_stats = c.stats;
        o.lag_probe_interval =
            c.stats ? std::chrono::milliseconds(10) : std::chrono::milliseconds(0);
        rt = std::make_unique<weft::Runtime>(o);
        if (c.watchdog) {
            weft::monitor::MonitorSettings s;  // 0.1 s, like the server's default
            wd = std::make_unique<weft::monitor::Watchdog>(*rt, s);
            hub_metrics = weft::monitor::add_hub_metrics(registry, *rt);
            wd_metrics = wd->add_metrics(registry);
            scraper = std::thread([this] {
                while (!stop) {
                    for (int i = 0; i < 100 && !stop; ++i)
                        std::this_thread::sleep_for(std::chrono::milliseconds(10));
                    (void)weft::monitor::scrape(registry, "text/plain");
                }
            });
        }
    }
    ~Setup() {
        stop = true;
        if (scraper.joinable()) scraper.join();
        wd_metrics.reset();
        hub_metrics.reset();
        wd.reset();
        rt.reset();
    }
    std::unique_ptr<weft::Runtime> rt;
    std::unique_ptr<weft::monitor::Watchdog> wd;
    weft::monitor::Registry registry;
    weft::monitor::CollectorHandle hub_metrics, wd_metrics;
    std::atomic<bool> stop{false};
    std::thread scraper;
};

// Runs `body(until)` as a fiber on hub 0 and returns the operations it reports per second.
template <class F>
double run_on_hub0(Setup& s, double seconds, F body) {
    std::atomic<double> rate{-1};
    s.rt->hub(0).post([&] {
        weft::spawn("bench", [&] {
            auto t0 = Clock::now();
            auto until = t0 + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(seconds));
            std::uint64_t ops = body(until);
            double dt = std::chrono::duration<double>(Clock::now() - t0).count();
            rate = static_cast<double>(ops) / dt;
        }).detach();
    });
    while (rate.load() < 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return rate.load();
}

double yield_pingpong(const Config& c, double seconds) {
    Setup s(c, 1);
    return run_on_hub0(s, seconds, [](Clock::time_point until) {
        bool stop = false;
        auto other = weft::spawn("other", [&] {
            while (!stop)
                weft::yield();
        });
        std::uint64_t n = 0;
        while (Clock::now() < until) {
            for (int i = 0; i < 1000; ++i)
                weft::yield();
            n += 1000;
        }
        stop = true;
        other.join();
        return n;  // round trips (two switches each)
    });
}

double channel_pingpong(const Config& c, double seconds) {
    Setup s(c, 1);
    return run_on_hub0(s, seconds, [](Clock::time_point until) {
        weft::Channel<int> ping(1), pong(1);
        auto echo = weft::spawn("echo", [&] {
            for (;;) {
                auto v = ping.recv();
                if (!v) return;
                (void)pong.send(*v);
            }
        });
        std::uint64_t n = 0;
        while (Clock::now() < until) {
            for (int i = 0; i < 1000; ++i) {
                (void)ping.send(i);
                (void)pong.recv();
            }
            n += 1000;
        }
        ping.close();
        echo.join();
        return n;  // round trips
    });
}

// 16 connections over loopback, 64-byte messages echoed; server and clients on one hub.
double tcp_echo(const Config& c, double seconds) {
    Setup s(c, 1);
    return run_on_hub0(s, seconds, [](Clock::time_point until) -> std::uint64_t {
        auto l = weft::TcpListener::bind(*weft::SocketAddress::parse("127.0.0.1:0"));
        if (!l) return 0;
        auto addr = *l->local_address();
        auto server = weft::spawn("server", [&] {
            for (;;) {
                auto st = l->accept();
                if (!st) return;
                weft::spawn("conn", [st = std::move(*st)]() mutable {
                    char buf[4096];
                    for (;;) {
                        auto n = st.recv(buf);
                        if (!n || *n == 0) return;
                        if (!st.send(std::string_view(buf, *n))) return;
                    }
                }).detach();
            }
        });
        std::atomic<std::uint64_t> total{0};
        std::vector<weft::Fiber<void>> clients;
        for (int k = 0; k < 16; ++k) {
            clients.push_back(weft::spawn("client", [&] {
                auto st = weft::TcpStream::connect(addr);
                if (!st) return;
                (void)st->set_nodelay(true);
                char msg[64];
                std::memset(msg, 'x', sizeof msg);
                char buf[64];
                std::uint64_t n = 0;
                while (Clock::now() < until) {
                    if (!st->send(std::string_view(msg, sizeof msg))) break;
                    std::size_t got = 0;
                    while (got < sizeof msg) {
                        auto r = st->recv(std::span<char>(buf + got, sizeof buf - got));
                        if (!r || *r == 0) return;
                        got += *r;
                    }
                    ++n;
                }
                total += n;
            }));
        }
        for (auto& f : clients)
            f.join();
        l->close();
        server.join();
        return total.load();  // round trips
    });
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 7;
    double seconds = 1.0;
    std::string which = "all";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--rounds" && i + 1 < argc)
            rounds = std::atoi(argv[++i]);
        else if (a == "--seconds" && i + 1 < argc)
            seconds = std::atof(argv[++i]);
        else if (a == "--workload" && i + 1 < argc)
            which = argv[++i];
        else {
            std::fprintf(
                stderr,
                "usage: %s [--rounds N] [--seconds S] [--workload yield|channel|echo|all]\n",
                argv[0]);
            return 2;
        }
    }
    spdlog::set_level(spdlog::level::warn);
    struct Workload {
        const char* name;
        const char* unit;
        double (*fn)(const Config&, double);
    };
    const Workload all[] = {{"yield", "round trips/s", &yield_pingpong},
                            {"channel", "round trips/s", &channel_pingpong},
                            {"echo", "round trips/s", &tcp_echo}};
    std::printf(
        "monitor overhead, %d interleaved rounds (A C B A C B ...) of %.1f s each, medians\n"
        "  A = hub statistics off, no watchdog\n"
        "  C = hub statistics on (core's per-switch clock read and histograms), no watchdog\n"
        "  B = hub statistics on + watchdog (0.1 s) + a /metrics scrape every second\n\n",
        rounds, seconds);
    for (const auto& w : all) {
        if (which != "all" && which != w.name) continue;
        std::vector<double> a, b, c;
        for (int r = 0; r < rounds; ++r) {
            a.push_back(w.fn(Config{false, false}, seconds));
            c.push_back(w.fn(Config{true, false}, seconds));
            b.push_back(w.fn(Config{true, true}, seconds));
        }
        double ma = median(a), mb = median(b), mc = median(c);
        std::printf("%-8s A %10.0f  C %10.0f  B %10.0f %s\n", w.name, ma, mc, mb, w.unit);
        std::printf(
            "         B/A = %.4f (all monitoring, cost %+.2f%%)   C/A = %.4f (statistics)   "
            "B/C = %.4f (watchdog alone, cost %+.2f%%)\n",
            mb / ma, (1 - mb / ma) * 100, mc / ma, mb / mc, (1 - mb / mc) * 100);
        std::fflush(stdout);
    }
    return 0;
}
