// Syscall patching's costs (run on purpose, in a Release build, never in CI):
//   * a wrapper where patching does not apply (a thread that is no hub, as the offload pool,
//     the admin thread or main): recv on an empty nonblocking socket (EAGAIN), poll of one
//     descriptor with a zero timeout, nanosleep of 0, an uncontended mutex lock and unlock;
//     libc's own function (found in libc.so.6
//     itself) against the exported wrapper, side by side;
//   * a TCP echo round trip over loopback whose client is a blocking socket driven by libc's
//     send/recv (patched) against the same client written with TcpStream, on both backends;
//   * pthread_cond_signal from a thread on a condition variable nobody waits on, while 0, 1,
//     100 or 1000 fibers wait on condition variables of their own.
// Interleave repetitions and compare medians:
//   build/bench/core/patch_bench --benchmark_repetitions=9
//       --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weft/core/log.hpp"
#include "weft/core/weft.hpp"

namespace {

// libc's own functions, looked up in libc.so.6 itself (the process-wide lookup finds weft's
// wrappers first, which is the point of them).
struct Libc {
    ssize_t (*recv)(int, void*, size_t, int);
    int (*poll)(pollfd*, nfds_t, int);
    int (*nanosleep)(const timespec*, timespec*);
    int (*mutex_lock)(pthread_mutex_t*);
    int (*mutex_unlock)(pthread_mutex_t*);
    Libc() {
        void* h = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        if (!h) {
            std::fprintf(stderr, "cannot open libc.so.6: %s\n", ::dlerror());
            std::abort();
        }
        recv = reinterpret_cast<decltype(recv)>(::dlsym(h, "recv"));
        poll = reinterpret_cast<decltype(poll)>(::dlsym(h, "poll"));
        nanosleep = reinterpret_cast<decltype(nanosleep)>(::dlsym(h, "nanosleep"));
        mutex_lock = reinterpret_cast<decltype(mutex_lock)>(::dlsym(h, "pthread_mutex_lock"));
        mutex_unlock = reinterpret_cast<decltype(mutex_unlock)>(::dlsym(h, "pthread_mutex_unlock"));
        if (reinterpret_cast<void*>(recv) == reinterpret_cast<void*>(&::recv)) {
            std::fprintf(stderr, "recv is libc's own here: weft's wrappers are not in effect\n");
            std::abort();
        }
    }
};
const Libc& libc() {
    static const Libc l;
    return l;
}

struct EmptySocket {
    int fds[2];
    EmptySocket() { ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds); }
    ~EmptySocket() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
};

// Arg 0: libc's function; 1: the exported (patching) wrapper.
void BM_OffHubRecvEagain(benchmark::State& st) {
    EmptySocket s;
    char c;
    auto* fn = st.range(0) ? &::recv : libc().recv;
    for (auto _ : st)
        benchmark::DoNotOptimize(fn(s.fds[0], &c, 1, 0));
    st.SetLabel(st.range(0) ? "wrapper" : "libc");
}

void BM_OffHubPollZero(benchmark::State& st) {
    EmptySocket s;
    pollfd p{s.fds[0], POLLIN, 0};
    auto* fn = st.range(0) ? &::poll : libc().poll;
    for (auto _ : st)
        benchmark::DoNotOptimize(fn(&p, 1, 0));
    st.SetLabel(st.range(0) ? "wrapper" : "libc");
}

void BM_OffHubNanosleepZero(benchmark::State& st) {
    timespec zero{0, 0};
    auto* fn = st.range(0) ? &::nanosleep : libc().nanosleep;
    for (auto _ : st)
        benchmark::DoNotOptimize(fn(&zero, nullptr));
    st.SetLabel(st.range(0) ? "wrapper" : "libc");
}

// An uncontended lock and unlock (every unlock looks for fibers of other hubs waiting).
void BM_OffHubMutexLockUnlock(benchmark::State& st) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    auto* lock = st.range(0) ? &::pthread_mutex_lock : libc().mutex_lock;
    auto* unlock = st.range(0) ? &::pthread_mutex_unlock : libc().mutex_unlock;
    for (auto _ : st) {
        lock(&m);
        unlock(&m);
    }
    st.SetLabel(st.range(0) ? "wrapper" : "libc");
}

// Arg 0: backend (0 io_uring, 1 epoll); arg 1: client (0 TcpStream, 1 libc socket, patched).
void BM_EchoRoundTrip(benchmark::State& st) {
    weft::RuntimeOptions o;
    o.name = "bench";
    o.backend = st.range(0) == 0 ? weft::Backend::io_uring : weft::Backend::epoll;
    o.patch_syscalls = true;
    const bool patched_client = st.range(1) != 0;
    weft::run(
        [&] {
            auto l = weft::TcpListener::bind(*weft::SocketAddress::parse("127.0.0.1:0"));
            auto server = weft::spawn("server", [&] {
                auto s = l->accept();
                if (!s) return;
                (void)s->set_nodelay(true);
                char buf[256];
                for (;;) {
                    auto n = s->recv(buf);
                    if (!n || *n == 0 || !s->send(std::string_view(buf, *n))) return;
                }
            });
            char msg[64] = {};
            char buf[64];
            if (patched_client) {
                const int fd = ::socket(AF_INET, SOCK_STREAM, 0);  // blocking, as libraries do
                sockaddr_in a{};
                a.sin_family = AF_INET;
                a.sin_port = htons(l->local_address()->port());
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
                int one = 1;
                ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                for (auto _ : st) {
                    (void)::send(fd, msg, sizeof msg, 0);
                    std::size_t got = 0;
                    while (got < sizeof msg) {
                        ssize_t n = ::recv(fd, buf, sizeof buf - got, 0);
                        if (n <= 0) break;
                        got += static_cast<std::size_t>(n);
                    }
                }
                ::close(fd);
            } else {
                auto c = weft::TcpStream::connect(*l->local_address());
                (void)c->set_nodelay(true);
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
            }
            server.join();
        },
        o);
    st.SetLabel(std::string(st.range(0) == 0 ? "io_uring" : "epoll") +
                (patched_client ? ",libc-patched" : ",TcpStream"));
}

// pthread_cond_signal from a thread that is no hub, on a condition variable nobody waits on,
// while arg 0 fibers of a hub wait each on a condition variable of their own (0: none wait).
void BM_CondSignalWhileFibersWait(benchmark::State& st) {
    const int waiters = static_cast<int>(st.range(0));
    struct Slot {
        std::mutex mu;
        std::condition_variable cv;
        bool go = false;
    };
    std::vector<std::unique_ptr<Slot>> slots;
    for (int i = 0; i < waiters; ++i)
        slots.push_back(std::make_unique<Slot>());
    std::atomic<int> waiting{0};
    std::atomic<bool> stop{false};
    weft::RuntimeOptions o;
    o.name = "bench";
    o.hubs = 1;
    o.patch_syscalls = true;
    std::thread hub([&] {
        weft::run(
            [&] {
                std::vector<weft::Fiber<void>> fibers;
                for (auto& slot : slots)
                    fibers.push_back(weft::spawn("waiter", [&waiting, s = slot.get()] {
                        std::unique_lock<std::mutex> lock(s->mu);
                        waiting.fetch_add(1);
                        s->cv.wait(lock, [s] { return s->go; });
                    }));
                while (!stop.load())
                    (void)weft::sleep_for(std::chrono::milliseconds(1));
                for (auto& slot : slots) {
                    {
                        std::lock_guard<std::mutex> lock(slot->mu);
                        slot->go = true;
                    }
                    slot->cv.notify_one();
                }
                for (auto& f : fibers)
                    f.join();
            },
            o);
    });
    // Counted before its wait, and listed before it lets go of its mutex: taking each mutex
    // once finds every fiber listed.
    while (waiting.load() < waiters)
        std::this_thread::yield();
    for (auto& slot : slots)
        std::lock_guard<std::mutex>{slot->mu};
    pthread_cond_t nobody = PTHREAD_COND_INITIALIZER;
    for (auto _ : st)
        benchmark::DoNotOptimize(::pthread_cond_signal(&nobody));
    stop = true;
    hub.join();
    st.SetLabel(std::to_string(waiters) + " fibers waiting");
}

BENCHMARK(BM_OffHubRecvEagain)->Arg(0)->Arg(1);
BENCHMARK(BM_OffHubPollZero)->Arg(0)->Arg(1);
BENCHMARK(BM_OffHubNanosleepZero)->Arg(0)->Arg(1);
BENCHMARK(BM_OffHubMutexLockUnlock)->Arg(0)->Arg(1);
BENCHMARK(BM_EchoRoundTrip)->Args({0, 0})->Args({0, 1})->Args({1, 0})->Args({1, 1});
BENCHMARK(BM_CondSignalWhileFibersWait)->Arg(0)->Arg(1)->Arg(100)->Arg(1000);

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::warn);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
